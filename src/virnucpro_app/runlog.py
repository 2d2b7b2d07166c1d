"""The run's own log files: every record, whatever the console shows.

A long command logs to the console at the level ``--quiet``/``--verbose`` pick
and, once its output folder is settled, to files there at DEBUG level: the main
log ``DIR/virnucpro.log`` and, under torchrun, one ``DIR/logs/rank-N.log`` per
rank. Records logged before the folder exists (device, precision, demo
models) are held in memory and written first, so a file holds the whole run.
Every rank appends to the main log, each line prefixed with its rank and
written under an exclusive lock, so lines of several ranks never mix.
"""

from __future__ import annotations

import logging
import logging.handlers
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

LOGGER = "virnucpro_app"
#: Line format of the log files (the console's is the same).
FORMAT = "%(asctime)s %(levelname)s %(message)s"
# Enough for everything logged before the folder is settled, many times over.
_BUFFERED_RECORDS = 10_000


class _EarlyRecords(logging.handlers.BufferingHandler):
    """Holds records until the log files exist (never flushes on its own)."""

    def shouldFlush(self, record: logging.LogRecord) -> bool:  # noqa: N802 - logging's name
        del record
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.buffer) < _BUFFERED_RECORDS:
            self.buffer.append(record)


class _LockedFileHandler(logging.FileHandler):
    """Appends each record under an exclusive lock (several ranks share the file)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX: no lock
            super().emit(record)
            return
        stream = self.stream if self.stream is not None else self._open()
        self.stream = stream
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        try:
            stream.seek(0, 2)  # another rank may have written since
            super().emit(record)
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


_state: dict[str, list[logging.Handler]] = {"early": [], "files": []}


def start() -> None:
    """Hold every record of the ``virnucpro_app`` logger from now on (DEBUG)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    stop()
    early = _EarlyRecords(_BUFFERED_RECORDS)
    logger.addHandler(early)
    _state["early"] = [early]


def attach(
    main_log: Path, rank_log: Path | None = None, *, rank: int | None = None
) -> None:
    """Write the held records and every later one to the run's log files.

    Args:
        main_log: ``DIR/virnucpro.log`` (appended to: a resumed run continues it).
        rank_log: This rank's own log (torchrun), if any.
        rank: This rank's number, prefixed to its lines of the main log.
    """
    logger = logging.getLogger(LOGGER)
    prefix = "" if rank is None else f"[rank {rank}] "
    main_log.parent.mkdir(parents=True, exist_ok=True)
    main = _LockedFileHandler(main_log, encoding="utf-8")
    main.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(message)s")
    )
    handlers: list[logging.Handler] = [main]
    if rank_log is not None:
        rank_log.parent.mkdir(parents=True, exist_ok=True)
        own = logging.FileHandler(rank_log, encoding="utf-8")
        own.setFormatter(logging.Formatter(FORMAT))
        handlers.append(own)
    for early in _state["early"]:
        for record in early.buffer:  # type: ignore[attr-defined]
            for handler in handlers:
                handler.handle(record)
        logger.removeHandler(early)
    _state["early"] = []
    for handler in handlers:
        handler.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    _state["files"].extend(handlers)


def to_files(level: int, message: str) -> None:
    """Log ``message`` to the run's log files only (the console already shows it)."""
    record = logging.getLogger(LOGGER).makeRecord(
        LOGGER, level, __file__, 0, "%s", (message,), None
    )
    for handler in _state["files"]:
        handler.handle(record)


def stop() -> None:
    """Close the log files and drop held records (tests run several commands)."""
    logger = logging.getLogger(LOGGER)
    for handler in [*_state["early"], *_state["files"]]:
        logger.removeHandler(handler)
        handler.close()
    _state["early"], _state["files"] = [], []
