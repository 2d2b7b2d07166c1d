"""UTC timestamps in the one format ckptkit writes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now_iso() -> str:
    """The current UTC time as ISO-8601 with microseconds and a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_iso_from_timestamp(seconds: float) -> str:
    """A POSIX timestamp as UTC ISO-8601."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
