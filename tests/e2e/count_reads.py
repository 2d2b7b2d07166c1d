"""Run the ``virnucpro-app`` entry point with ckptkit's readers counted per file.

Usage: ``python count_reads.py COUNTS.json ARGS...`` runs ``virnucpro-app ARGS...``
in this process after wrapping ``ckptkit.load`` and ``ckptkit.validate`` (the two
calls that read a checkpoint's tensors), and at exit writes ``{path: reads}``
to COUNTS.json. Header-only ``ckptkit.inspect`` calls are not reads.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import sys
from pathlib import Path
from typing import Any

import ckptkit

COUNTS: collections.Counter[str] = collections.Counter()


def _counted(function: Any) -> Any:
    def wrapper(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        COUNTS[str(Path(path))] += 1
        return function(path, *args, **kwargs)

    return wrapper


def main() -> None:
    counts_path = Path(sys.argv[1])
    ckptkit.load = _counted(ckptkit.load)  # type: ignore[assignment]
    ckptkit.validate = _counted(ckptkit.validate)  # type: ignore[assignment]
    atexit.register(lambda: counts_path.write_text(json.dumps(dict(COUNTS))))
    sys.argv = ["virnucpro-app", *sys.argv[2:]]
    from virnucpro_app.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
