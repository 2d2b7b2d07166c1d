"""The installed ckptkit release."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def library_version() -> str:
    """The version of the installed distribution that carries ckptkit."""
    try:
        return version("virnucpro-app")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"
