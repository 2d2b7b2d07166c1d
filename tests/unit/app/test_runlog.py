"""The run's log files hold every record, from before the folder existed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from virnucpro_app import runlog

LOG = logging.getLogger("virnucpro_app")


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    level = LOG.level
    yield
    runlog.stop()
    LOG.setLevel(level)


def test_records_before_attach_are_written_first_at_debug_level(tmp_path: Path) -> None:
    runlog.start()
    LOG.debug("before the folder")
    runlog.attach(tmp_path / "virnucpro.log")
    LOG.info("after")
    runlog.to_files(logging.ERROR, "the final error")
    lines = (tmp_path / "virnucpro.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "DEBUG before the folder",
        "INFO after",
        "ERROR the final error",
    ]


def test_ranks_prefix_their_lines_in_the_main_log_and_keep_their_own(
    tmp_path: Path,
) -> None:
    main = tmp_path / "virnucpro.log"
    main.write_text("an earlier run\n")
    runlog.start()
    runlog.attach(main, tmp_path / "logs" / "rank-1.log", rank=1)
    LOG.warning("from rank one")
    runlog.stop()
    lines = main.read_text().splitlines()
    assert lines[0] == "an earlier run"  # appended to
    assert lines[1].endswith("WARNING [rank 1] from rank one")
    own = (tmp_path / "logs" / "rank-1.log").read_text()
    assert own.rstrip().endswith("WARNING from rank one")
