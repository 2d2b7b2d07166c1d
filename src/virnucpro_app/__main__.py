"""``python -m virnucpro_app``: the same as the ``virnucpro-app`` console script."""

from __future__ import annotations

from virnucpro_app.cli import main

if __name__ == "__main__":
    main()
