"""What an app needs from ckptkit is public: safe legacy loading, a history on
save, JSON of the result types, and the one error-to-exit-code mapping."""

from __future__ import annotations

import errno
import inspect
import json
import os
from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
import ckptkit.legacy
from ckptkit.types import INTERRUPTED_EXIT_CODE, ExitCode

if TYPE_CHECKING:
    from pathlib import Path


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


# --- ckptkit.legacy --------------------------------------------------------------


def test_legacy_module_declares_its_public_names_with_docstrings() -> None:
    for name in ("is_torch_pickle", "safe_torch_load"):
        assert name in ckptkit.legacy.__all__
        assert inspect.getdoc(getattr(ckptkit.legacy, name)), name
    assert ckptkit.legacy.ZIP_MAGIC == b"PK\x03\x04"


def test_safe_torch_load_reads_allowlisted_and_refuses_unlisted(
    tmp_path: Path,
) -> None:
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    torch.save({"w": torch.arange(3)}, good)
    torch.save({"evil": _RunsCode()}, bad)
    assert ckptkit.legacy.is_torch_pickle(good.read_bytes()[:8])
    assert not ckptkit.legacy.is_torch_pickle(b"not a pickle")
    loaded = ckptkit.legacy.safe_torch_load(good)
    assert torch.equal(loaded["w"], torch.arange(3))
    with pytest.raises(ckptkit.UnsafeCheckpointError, match="allowlist"):
        ckptkit.legacy.safe_torch_load(bad)
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(ckptkit.CheckpointNotFoundError):
        ckptkit.legacy.safe_torch_load(tmp_path / "missing.pt")


def test_safe_torch_load_maps_zip_files_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(4)}, path)
    loaded = ckptkit.legacy.safe_torch_load(path, mmap=True)
    assert torch.equal(loaded["w"], torch.ones(4))


# --- save(history=) --------------------------------------------------------------


def _record(to_version: str) -> ckptkit.MigrationRecord:
    return ckptkit.MigrationRecord(
        from_version="0.x",
        to_version=to_version,
        step="mine.convert",
        applied_at="2025-01-31T12:00:00.000000Z",
        ckptkit_version="0.1.0",
    )


def test_save_writes_the_history_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    info = ckptkit.save(path, {"x": 1}, history=[_record("1.0")])
    assert info.history == (_record("1.0"),)
    assert ckptkit.inspect(path).history == (_record("1.0"),)
    assert ckptkit.load(path, verify="full").info.history == (_record("1.0"),)


def test_save_history_is_keyword_only_and_empty_by_default(tmp_path: Path) -> None:
    parameter = inspect.signature(ckptkit.save).parameters["history"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default == ()
    assert ckptkit.save(tmp_path / "a.ckpt", {"x": 1}).history == ()


def test_save_refuses_a_history_of_plain_dicts(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    with pytest.raises(TypeError, match="MigrationRecord"):
        ckptkit.save(path, {"x": 1}, history=[_record("1.0").to_json()])  # type: ignore[list-item]
    assert not path.exists()


# --- to_json() -------------------------------------------------------------------


def test_checkpoint_info_to_json_is_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    info = ckptkit.save(
        path,
        {"w": torch.zeros(2, 3)},
        schema="demo",
        metadata={"k": [1]},
        history=[_record("1.0")],
    )
    data = info.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["path"] == str(path)
    assert data["format"] == "ckptkit"
    assert data["tensors"] == [
        {"name": "w", "dtype": "float32", "shape": [2, 3], "nbytes": 24}
    ]
    assert data["history"] == [_record("1.0").to_json()]
    assert ckptkit.inspect(path).to_json() == data


def test_legacy_info_to_json_names_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"w": torch.ones(1)}, path)
    data = ckptkit.inspect(path).to_json()
    assert (data["format"], data["legacy"], data["version"]) == ("torch", True, "0.x")


def test_validation_reports_to_json(tmp_path: Path) -> None:
    good = tmp_path / "good.ckpt"
    ckptkit.save(good, {"x": 1}, status="in_progress")
    bad = tmp_path / "bad.ckpt"
    ckptkit.save(bad, {"w": torch.ones(100)})
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated
    tree = ckptkit.validate_tree([tmp_path], ledger=None)
    data = tree.to_json()
    assert json.loads(json.dumps(data)) == data
    by_name = {entry["path"].rsplit("/", 1)[-1]: entry for entry in data["checkpoints"]}
    assert by_name["good.ckpt"] == {
        "path": str(good),
        "ok": True,
        "kind": None,
        "reason": "ok",
        "level": "full",
        "format": "ckptkit",
        "version": "1.0",
        "schema": None,
        "status": "in_progress",
    }
    assert by_name["bad.ckpt"]["kind"] == "corrupted"
    assert by_name["bad.ckpt"]["format"] is None
    assert data["summary"]["exit_code"] == int(tree.exit_code) == 3
    assert data["summary"]["text"] == tree.summary()
    assert [r.to_json() for r in tree.reports] == data["checkpoints"]


def test_ledger_entry_and_migration_result_to_json(tmp_path: Path) -> None:
    entry = ckptkit.FailureLedger(tmp_path).record("a|b.ckpt", "line\nbreak")
    assert entry.to_json() == {
        "path": "a|b.ckpt",
        "reason": "line\nbreak",
        "timestamp": entry.timestamp,
    }
    registry = ckptkit.MigrationRegistry(schema="demo")
    registry.register("1.0", "1.1", lambda state: {**state, "epoch": 0}, name="add")
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"step": 1}, schema="demo")
    data = ckptkit.migrate(path, registry, dry_run=True).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["chain"] == [{"from": "1.0", "to": "1.1", "step": "add"}]
    assert data["changes"][0]["key"] == "epoch"


# --- exit_code_for ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ckptkit.CheckpointNotFoundError("a.ckpt", "gone"), ExitCode.CHECKPOINT),
        (ckptkit.ChecksumMismatchError("a.ckpt", "bad"), ExitCode.CHECKPOINT),
        (ckptkit.UnsafeCheckpointError("a.pt", "global"), ExitCode.CHECKPOINT),
        (ckptkit.MissingMigrationError("no chain"), ExitCode.CHECKPOINT),
        (ckptkit.IncompleteCheckpointError("a.ckpt", "busy"), ExitCode.CHECKPOINT),
        (FileNotFoundError(errno.ENOENT, "x"), ExitCode.FAILURE),
        (OSError(errno.ENOSPC, "full"), ExitCode.FAILURE),
        (PermissionError(errno.EACCES, "no"), ExitCode.FAILURE),
        (ValueError("bad value"), ExitCode.FAILURE),
        (KeyboardInterrupt(), INTERRUPTED_EXIT_CODE),
        (KeyError("bug"), None),
        (ckptkit.SerializationError("leaf"), None),
        (RuntimeError("bug"), None),
    ],
)
def test_exit_code_for_maps_each_documented_error(
    error: BaseException, code: int | None
) -> None:
    assert ckptkit.exit_code_for(error) == code


def test_interrupted_exit_code_is_what_shells_report_for_sigint() -> None:
    assert INTERRUPTED_EXIT_CODE == 128 + 2
