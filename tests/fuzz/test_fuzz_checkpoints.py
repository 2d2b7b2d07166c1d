"""Fuzzing ckptkit files: every reader, on files mutated by structure and by bytes.

On every mutated file each public reader (load at every verify level and with
mmap, inspect, validate, validate_tree on the file and on its folder) returns or
raises a ``CheckpointError``: never another exception, never a hang, never an
allocation far beyond the file (see harness.py for the limits). Readers of the
same bytes agree; a file damaged by bytes (checksums untouched) loads exactly
as saved or not at all; the command line exits 3 with one line naming the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..faults.scenarios import same_state
from .harness import (
    FuzzFailureError,
    check_agreement,
    check_cli,
    fuzz_settings,
    one_file,
    run_readers,
)
from .mutations import byte_mutation, structure_mutation
from .seeds import ckptkit_seeds, states

if TYPE_CHECKING:
    from collections.abc import Callable

SEEDS = sorted(ckptkit_seeds())


def _counted(test: Callable[..., None], record: pytest.RecordProperty) -> None:
    """Run a hypothesis test and record how many examples it ran."""
    calls = 0
    inner = test.hypothesis.inner_test  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        inner(*args, **kwargs)

    test.hypothesis.inner_test = counting  # type: ignore[attr-defined]
    try:
        test()
    finally:
        test.hypothesis.inner_test = inner  # type: ignore[attr-defined]
    record("cases:fuzz", calls)


def _mutated(data: st.DataObject, mutation: Any) -> tuple[str, bytes]:
    """A seed's name and the seed's file after ``mutation``."""
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    return seed, data.draw(mutation(ckptkit_seeds()[seed]), label="file")


@fuzz_settings(60)
@given(data=st.data())
def _structure_mutations_are_refused_or_loaded(data: st.DataObject) -> None:
    with one_file(_mutated(data, structure_mutation)[1]) as path:
        check_agreement(run_readers(path))


def test_structure_mutations_are_refused_or_loaded(
    record_property: pytest.RecordProperty,
) -> None:
    """JSON values replaced, nesting deepened, numbers, offsets, shapes, strides,
    dtypes altered, entries dropped or duplicated; checksums recomputed."""
    _counted(_structure_mutations_are_refused_or_loaded, record_property)


@fuzz_settings(60)
@given(data=st.data())
def _byte_mutations_load_exactly_or_not_at_all(data: st.DataObject) -> None:
    seed, mutated = _mutated(data, byte_mutation)
    with one_file(mutated) as path:
        outcomes = run_readers(path)
        check_agreement(outcomes)
        loaded = outcomes["load(verify=full)"]
        if loaded.kind == "ok" and not same_state(loaded.value.state, states()[seed]):
            msg = "a damaged file loads without error as another state"
            raise FuzzFailureError(msg)


def test_byte_mutations_load_exactly_or_not_at_all(
    record_property: pytest.RecordProperty,
) -> None:
    """Bit flips, truncation, insertion, overwrites (checksums not recomputed)."""
    _counted(_byte_mutations_load_exactly_or_not_at_all, record_property)


@fuzz_settings(25)
@given(data=st.data())
def _command_line_on_mutated_files(data: st.DataObject) -> None:
    mutation = data.draw(st.sampled_from([structure_mutation, byte_mutation]))
    with one_file(_mutated(data, mutation)[1]) as path:
        check_cli(path)


def test_command_line_on_mutated_files_exits_3_with_one_line(
    record_property: pytest.RecordProperty,
) -> None:
    """``ckptkit inspect`` and ``validate``: 0, or 3 with one line naming the file."""
    _counted(_command_line_on_mutated_files, record_property)
