"""Versions: of checkpoints (semantic versions, plus legacy) and of ckptkit itself."""

from __future__ import annotations

from functools import cache, total_ordering
from importlib.metadata import PackageNotFoundError, version

from packaging.version import InvalidVersion, Version

from ckptkit._file.format import LEGACY_VERSION


@cache
def library_version() -> str:
    """The version of the installed distribution that carries ckptkit."""
    try:
        return version("virnucpro-app")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


@total_ordering
class StateVersion:
    """A checkpoint version; ``"0.x"`` (legacy) sorts below every real version."""

    __slots__ = ("_parsed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed: Version | None = None
        if text != LEGACY_VERSION:
            try:
                self._parsed = Version(text)
            except InvalidVersion as error:
                msg = f"{text!r} is not a version (expected e.g. '1.0', or '0.x')"
                raise ValueError(msg) from error

    @property
    def is_legacy(self) -> bool:
        """True for the legacy version ``"0.x"``."""
        return self._parsed is None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateVersion):
            return NotImplemented
        return self._parsed == other._parsed

    def __lt__(self, other: StateVersion) -> bool:
        if self._parsed is None:
            return other._parsed is not None
        if other._parsed is None:
            return False
        return self._parsed < other._parsed

    def __hash__(self) -> int:
        return hash(self._parsed)

    def __repr__(self) -> str:
        return f"StateVersion({self.text!r})"

    def __str__(self) -> str:
        return self.text


#: Parse a version string (``"1.0"``, ``"2.1.3"``, ``"0.x"``); ValueError if it
#: is not one.
parse_version = StateVersion
