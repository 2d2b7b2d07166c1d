"""Golden files of every released container format load, validate and migrate.

``tests/fixtures/ckptkit/format-<N>/`` holds checkpoints written by a ckptkit
release (and deliberately damaged copies); ``expected.json`` there says what
each must give. A change that breaks old files fails here. The files are only
ever copied before migrating: the committed bytes never change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import ckptkit
from ckptkit.testing import assert_same_state

from ..fixtures.ckptkit import golden_states
from ..fixtures.ckptkit.registry_v1 import registry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ckptkit"
FORMAT_DIRS = sorted(FIXTURES.glob("format-*"))


def _cases() -> list[tuple[Path, str, dict[str, Any]]]:
    cases = []
    for folder in FORMAT_DIRS:
        manifest = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
        cases.extend(
            (folder, name, expected) for name, expected in manifest["files"].items()
        )
    return cases


CASES = _cases()


def _expected_state(expected: dict[str, Any], version: str) -> Any:
    """The state the file holds: its builder's, migrated to the file's version."""
    spec = expected["state"]
    state = golden_states.BUILDERS[spec["builder"]]()
    if spec["version"] == version:
        return state
    return registry.migrate(state, spec["version"], version)[0]


def test_every_released_format_has_golden_files() -> None:
    assert [f.name for f in FORMAT_DIRS] == [
        f"format-{n}" for n in range(1, len(FORMAT_DIRS) + 1)
    ]
    assert len(CASES) >= 13


@pytest.mark.parametrize("folder", FORMAT_DIRS, ids=lambda f: f.name)
def test_manifest_lists_exactly_the_files(folder: Path) -> None:
    manifest = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    on_disk = {p.name for p in folder.iterdir()} - {"expected.json"}
    assert on_disk == set(manifest["files"])


@pytest.mark.parametrize(
    ("folder", "name", "expected"), CASES, ids=[f"{c[0].name}/{c[1]}" for c in CASES]
)
def test_golden_file_validates_and_loads_as_expected(
    folder: Path, name: str, expected: dict[str, Any]
) -> None:
    path = folder / name
    report = ckptkit.validate(path, level="full")
    assert (report.kind or "ok") == expected["validate"], report.reason
    if expected["load"] != "ok":
        with pytest.raises(getattr(ckptkit, expected["load"])):
            ckptkit.load(path, verify="full")
        return
    checkpoint = ckptkit.load(path, verify="full")
    header = expected["header"]
    info = checkpoint.info
    assert (info.version, info.schema, info.status, len(info.history)) == (
        header["version"],
        header["schema"],
        header["status"],
        header["history"],
    )
    assert ckptkit.inspect(path).history == info.history
    assert_same_state(checkpoint.state, _expected_state(expected, info.version), name)


@pytest.mark.parametrize(
    ("folder", "name", "expected"), CASES, ids=[f"{c[0].name}/{c[1]}" for c in CASES]
)
def test_golden_file_migrates_as_expected(
    folder: Path, name: str, expected: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / name
    shutil.copyfile(folder / name, path)
    before = path.read_bytes()
    outcome = expected["migrate"]
    if isinstance(outcome, str):
        with pytest.raises(getattr(ckptkit, outcome)):
            ckptkit.migrate(path, registry)
        assert [p.name for p in tmp_path.iterdir()] == [name]
        assert path.read_bytes() == before
        return
    source = ckptkit.load(path, verify="full")
    in_memory = ckptkit.load(path, verify="full", registry=registry)
    result = ckptkit.migrate(path, registry)
    assert (result.to_version, len(result.chain)) == (outcome["to"], outcome["steps"])
    migrated = ckptkit.load(result.output, verify="full")
    want = registry.migrate(source.state, source.info.version)[0]
    assert_same_state(migrated.state, want, f"{name} migrated on disk")
    assert_same_state(in_memory.state, want, f"{name} migrated by load")
    assert migrated.info.version == outcome["to"]
    assert migrated.info.history == (*source.info.history, *result.applied)
    if source.info.legacy:
        assert path.read_bytes() == before  # never changed in place


def test_golden_state_keeps_tied_tensors_shared() -> None:
    state = ckptkit.load(FORMAT_DIRS[0] / "v1.0-complete.ckpt").state
    first, second = state["extras"]["tied"]
    assert first.data_ptr() == second.data_ptr()
    left, right = state["extras"]["overlapping_views"]
    assert left.untyped_storage().data_ptr() == right.untyped_storage().data_ptr()
