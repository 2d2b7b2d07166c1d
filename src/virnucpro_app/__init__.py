"""virnucpro-app: a resumable re-implementation of the VirNucPro virus identifier.

The package imports nothing heavy at import time: torch, esm and the models are
loaded inside the stages that need them, so ``virnucpro-app --help`` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("virnucpro-app")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
