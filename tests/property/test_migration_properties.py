"""Migration properties over random registries and random states."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ckptkit
from ckptkit.testing import assert_same_state, check_migration_roundtrip, clone_state

from ..support.registries import (
    FIELD_KEYS,
    RegistrySpec,
    StepFailedError,
    registry_specs,
    states_for,
)


@st.composite
def specs_and_states(
    draw: st.DrawFn, *, min_steps: int = 1
) -> tuple[RegistrySpec, dict[str, Any]]:
    spec = draw(registry_specs(min_steps=min_steps))
    state = draw(states_for(legacy=spec.versions[0] == "0.x"))
    return spec, state


def _write_at_start(spec: RegistrySpec, state: Any, folder: Path) -> Path:
    """The state as a file at the chain's first version (a torch.save file for 0.x)."""
    if spec.versions[0] == "0.x":
        path = folder / "legacy.pt"
        torch.save(state, path)
    else:
        path = folder / "start.ckpt"
        ckptkit.save(path, state, version=spec.versions[0], schema="random-trainer")
    return path


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@given(specs_and_states(), st.data())
def test_one_call_equals_any_split_and_the_file_on_disk(
    case: tuple[RegistrySpec, dict[str, Any]], data: st.DataObject
) -> None:
    spec, state = case
    registry = spec.build()
    start = spec.versions[0]
    whole = check_migration_roundtrip(registry, state, start)  # all splits, disk
    middle = data.draw(st.sampled_from(spec.versions))
    part, _ = registry.migrate(state, start, middle)
    rest, _ = registry.migrate(part, middle)
    assert_same_state(rest, whole)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_at_start(spec, state, Path(tmp))
        assert_same_state(ckptkit.load(path, registry=registry).state, whole)
        result = ckptkit.migrate(path, registry)
        migrated = ckptkit.load(result.output, verify="full")
        assert_same_state(migrated.state, whole)
        assert [h.step for h in migrated.info.history] == [
            f"step{i}" for i in range(len(spec.versions) - 1)
        ]


@given(specs_and_states())
def test_a_state_at_current_comes_back_unchanged(
    case: tuple[RegistrySpec, dict[str, Any]],
) -> None:
    spec, state = case
    registry = spec.build()
    same, applied = registry.migrate(state, spec.current)
    assert same is state
    assert applied == ()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "current.ckpt"
        ckptkit.save(path, state, version=spec.current, schema="random-trainer")
        before = _listing(Path(tmp))
        result = ckptkit.migrate(path, registry)
        assert (result.applied, result.written, result.changes) == ((), False, ())
        assert _listing(Path(tmp)) == before


@given(specs_and_states())
def test_untouched_keys_and_tensors_come_back_bit_identical(
    case: tuple[RegistrySpec, dict[str, Any]],
) -> None:
    spec, state = case
    snapshot = clone_state(state)
    new, _ = spec.build().migrate(state, spec.versions[0])
    assert_same_state(new["payload"], snapshot["payload"])
    assert_same_state(state, snapshot)  # the caller's state, too
    for key in set(FIELD_KEYS) - spec.touched_keys():
        assert (key in new["fields"]) == (key in state["fields"])
        if key in state["fields"]:
            assert_same_state(new["fields"][key], snapshot["fields"][key])
            assert new["fields"][key] is state["fields"][key]  # shared, not copied


@given(specs_and_states(min_steps=1), st.data())
def test_a_failing_step_leaves_every_file_as_it_was(
    case: tuple[RegistrySpec, dict[str, Any]], data: st.DataObject
) -> None:
    spec, state = case
    steps = len(spec.versions) - 1
    fail_at = data.draw(st.integers(0, steps - 1), label="fail_at")
    backup = data.draw(st.booleans(), label="backup")
    to_output = data.draw(st.booleans(), label="to_output")
    registry = spec.build(fail_at=fail_at)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _write_at_start(spec, state, folder)
        before = _listing(folder)
        output = folder / "out.ckpt" if to_output else None
        with pytest.raises(ckptkit.MigrationError) as caught:
            ckptkit.migrate(path, registry, output=output, backup=backup)
        message = str(caught.value)
        assert f"step{fail_at} ({spec.versions[fail_at]} -> " in message
        assert f"failed at version {spec.versions[fail_at]}" in message
        assert isinstance(caught.value.__cause__, StepFailedError)
        assert _listing(folder) == before


_BREAKAGES = ("duplicate", "self", "cycle", "two_chains", "gap", "beyond")


def _breakage(
    spec: RegistrySpec, kind: str, data: st.DataObject
) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Registrations (source, target, step index) of ``spec`` with one defect, in a
    random order, and the versions the refusal must name."""
    versions, edges = spec.versions, spec.edges()
    i = data.draw(st.integers(0, len(edges) - 1), label="edge")
    source, target = edges[i]
    extra: tuple[str, str] | None = None
    skip: int | None = None
    if kind == "duplicate":
        extra, named = (source, target), [source, target]
    elif kind == "self":
        extra, named = (source, source), [source]
    elif kind == "cycle":  # the reverse of an existing step
        extra, named = (target, source), [source, target]
    elif kind == "two_chains":
        i = data.draw(st.integers(0, len(versions) - 3), label="start")
        extra, named = (versions[i], versions[i + 2]), [versions[i], versions[i + 2]]
    elif kind == "gap":
        skip = data.draw(st.integers(1, len(edges) - 2), label="skipped")
        named = [versions[skip], versions[skip + 1]]
    else:  # "beyond": a step past the declared current version
        extra, named = (versions[-1], "99.0"), [versions[-1], "99.0"]
    steps = [(*edges[k], k) for k in range(len(edges)) if k != skip]
    if extra is not None:
        steps.append((*extra, 0))
    return data.draw(st.permutations(steps), label="order"), named


def _names(message: str, version: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(version)}(?![\d])", message) is not None


@given(registry_specs(min_steps=3), st.sampled_from(_BREAKAGES), st.data())
def test_every_kind_of_broken_registry_is_refused_naming_its_versions(
    spec: RegistrySpec, kind: str, data: st.DataObject
) -> None:
    steps, named = _breakage(spec, kind, data)
    registry = ckptkit.MigrationRegistry(
        schema="random-trainer", current=spec.versions[-1]
    )

    def build_and_check() -> None:
        for source, target, index in steps:
            registry.register(source, target, spec.step_function(index))
        registry.check()

    with pytest.raises(ckptkit.MigrationError) as caught:
        build_and_check()
    message = str(caught.value)
    assert "random-trainer" in message
    for version in named:
        assert _names(message, version), (kind, version, message)


@given(registry_specs(), st.data())
def test_a_sound_registry_registers_in_any_order(
    spec: RegistrySpec, data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(spec.versions) - 1)))
    registry = spec.build(order=order)
    registry.check()
    assert [m.from_version for m in registry.path(spec.versions[0])] == list(
        spec.versions[:-1]
    )
