"""``python -m ckptkit``: the ``ckptkit`` command line."""

from __future__ import annotations

from ckptkit.cli import main

if __name__ == "__main__":
    main()
