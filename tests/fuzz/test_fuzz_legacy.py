"""Fuzzing legacy files: torch.save zips, old (non-zip) torch.save files, plain
safetensors, mutated by bytes, and hostile pickles carried in both torch formats.

Every reader returns or raises a ``CheckpointError`` (see harness.py: no other
exception, no hang, no allocation far beyond the file), and no code from a
pickle ever runs: each code-running payload would create a marker file, and the
marker never appears. The first test shows those payloads do run code when
unpickled without ckptkit's safeguards, so their absence means something.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import hostile
from .harness import (
    LEGACY_READERS,
    FuzzFailureError,
    check_cli,
    fuzz_settings,
    one_file,
    run_readers,
)
from .mutations import byte_mutation
from .seeds import legacy_seeds
from .test_fuzz_checkpoints import _counted

LEGACY = sorted(legacy_seeds())
RUNNERS = sorted(hostile.RUNNERS)


def test_code_running_payloads_do_run_code_when_unpickled_unsafely(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    payload = hostile.code_runner("builtins", "exec", str(marker), how="plain")
    pickle.loads(payload)  # noqa: S301 - proving the payload is live, on purpose
    assert marker.exists()


@fuzz_settings(50)
@given(data=st.data())
def _byte_mutated_legacy_files(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(LEGACY), label="seed")
    mutated = data.draw(byte_mutation(legacy_seeds()[seed]), label="file")
    with one_file(mutated, name="legacy.pt") as path:
        run_readers(path, LEGACY_READERS)


def test_byte_mutated_legacy_files_are_read_or_refused(
    record_property: pytest.RecordProperty,
) -> None:
    _counted(_byte_mutated_legacy_files, record_property)


def _payloads(marker: str) -> st.SearchStrategy[bytes]:
    runners = st.builds(
        lambda runner, how: hostile.code_runner(*runner, marker, how=how),
        st.sampled_from(RUNNERS),
        st.sampled_from(hostile.HOW),
    )
    return st.one_of(
        runners,
        st.builds(hostile.deep_nesting, st.sampled_from([10, 2_000, 30_000])),
        st.builds(hostile.shared_lists, st.sampled_from([8, 64, 300])),
        st.builds(hostile.lying_length, st.sampled_from([100, 2**31, 2**32 - 1])),
        st.builds(
            hostile.tensor,
            numel=st.sampled_from([2, 0, 2**20, 2**40, -1]),
            size=st.sampled_from([2, 1, 2**40, 2**62, -5]),
            stride=st.sampled_from([1, 0, 2**40, -1]),
            offset=st.sampled_from([0, 1, 2**40]),
        ),
        st.binary(max_size=64).map(lambda tail: hostile.PROTO + tail),
    )


@fuzz_settings(60)
@given(data=st.data())
def _hostile_pickles(data: st.DataObject) -> None:
    with one_file(b"", name="unused") as scratch:
        marker = scratch.parent / "code-ran"
        payload = data.draw(_payloads(str(marker)), label="pickle")
        carrier = data.draw(st.sampled_from(["zip", "old format"]), label="carrier")
        if carrier == "zip":
            storage = data.draw(st.sampled_from([None, 0, 1 << 16]), label="storage")
            blob = hostile.in_zip(payload, storage_bytes=storage)
        else:
            blob = hostile.in_old_format(payload)
        with one_file(blob, name="hostile.pt") as path:
            run_readers(path, LEGACY_READERS)
            if data.draw(st.booleans(), label="also the command line"):
                check_cli(path)
        if marker.exists():
            msg = "code from a pickle ran"
            raise FuzzFailureError(msg)


def test_hostile_pickles_are_refused_and_never_run(
    record_property: pytest.RecordProperty,
) -> None:
    """Unknown globals (os.system, eval, ...), deep nesting, 2**N shared lists,
    lying lengths, storages and tensor shapes far beyond the file, garbage."""
    _counted(_hostile_pickles, record_property)
