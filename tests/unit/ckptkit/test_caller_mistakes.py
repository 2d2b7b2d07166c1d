"""Issue 13 item 1: a caller's mistake is never reported as damage to a file.

Argument errors raise at once, naming the argument; resource errors (out of
memory, permissions) raise as what they are; a missing required key is its own
outcome. None of them marks a step damaged or writes a ledger line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import torch

import ckptkit
from ckptkit._file import fs

from ...support.corrupt import flip_tensor_bit

if TYPE_CHECKING:
    from pathlib import Path


def _run(tmp_path: Path) -> ckptkit.CheckpointManager:
    manager = ckptkit.CheckpointManager(tmp_path, keep_last=3)
    for step in range(2):
        manager.save(step, {"w": torch.full((4,), float(step)), "step": step})
    return manager


def _ledger_lines(folder: Path) -> list[str]:
    ledger = folder / "failed_checkpoints.txt"
    return ledger.read_text().splitlines() if ledger.exists() else []


@pytest.mark.parametrize(
    ("map_location", "error", "words"),
    [
        ({"cuda:1": "cuda:0"}, TypeError, "torch.load-style dict"),
        (lambda storage, _location: storage, TypeError, "torch.load-style function"),
        ("cuda0", ValueError, "map_location='cuda0'"),
        (torch.float16, TypeError, "pass dtype=torch.float16"),
        (3.5, TypeError, "not float"),
    ],
)
def test_restore_with_a_bad_map_location_raises_and_marks_nothing(
    tmp_path: Path, map_location: Any, error: type[Exception], words: str
) -> None:
    manager = _run(tmp_path)
    with pytest.raises(error, match="map_location") as caught:
        manager.restore(map_location=map_location)
    assert words in str(caught.value)
    assert not isinstance(caught.value, ckptkit.CheckpointError)
    assert _ledger_lines(tmp_path) == []
    assert manager.steps() == [0, 1]
    assert manager.restore().state["step"] == 1
    manager.close()


def test_load_with_a_bad_map_location_raises_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"w": torch.ones(2)})
    with pytest.raises(ValueError, match=r"map_location='cuda0'.*'cuda:0'"):
        ckptkit.load(path, map_location="cuda0")
    with pytest.raises(ValueError, match="map_location='cuda0'"):
        ckptkit.load(tmp_path / "absent.ckpt", map_location="cuda0")


def test_restore_out_of_memory_while_moving_raises_it_and_marks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The move to the device fails like a full GPU; the steps stay good."""
    manager = _run(tmp_path)
    real_to = torch.Tensor.to

    def out_of_memory(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        device = args[0] if args else kwargs.get("device")
        if device is not None and torch.device(device).type == "meta":
            msg = "CUDA out of memory. Tried to allocate 2.00 GiB"
            raise torch.OutOfMemoryError(msg)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        manager.restore(map_location="meta")
    monkeypatch.undo()
    assert _ledger_lines(tmp_path) == []
    assert manager.steps() == [0, 1]
    assert manager.restore(map_location="meta").state["w"].device.type == "meta"
    manager.close()


def test_validate_missing_required_key_is_its_own_outcome_never_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"model": {"w": torch.ones(1)}, "step": 3})
    ledger = ckptkit.FailureLedger(tmp_path)
    report = ckptkit.validate(path, required_keys=["model.w", "optim"], ledger=ledger)
    assert (report.ok, report.kind) == (False, "missing_keys")
    assert "optim" in report.reason
    assert "intact" in report.reason
    tree = ckptkit.validate_tree([tmp_path], required_keys=["optim"], ledger="folder")
    assert (tree.num_missing_keys, tree.num_corrupted) == (1, 0)
    assert tree.exit_code is ckptkit.ExitCode.MISSING_KEYS
    assert tree.ledger_paths == ()
    assert _ledger_lines(tmp_path) == []


def test_damage_still_outranks_a_missing_key(tmp_path: Path) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"step": 1})
    ckptkit.save(tmp_path / "b.ckpt", {"model": torch.ones(4)})
    flip_tensor_bit(tmp_path / "b.ckpt")
    tree = ckptkit.validate_tree([tmp_path], required_keys=["model"], ledger="folder")
    assert (tree.num_missing_keys, tree.num_corrupted) == (1, 1)
    assert tree.exit_code is ckptkit.ExitCode.CHECKPOINT
    assert [line.split("|")[0] for line in _ledger_lines(tmp_path)] == [
        str((tmp_path / "b.ckpt").absolute())
    ]


@pytest.mark.parametrize("keys", ["model", b"model", 5, [5], [{"a": 1}]])
def test_required_keys_of_the_wrong_kind_raise_naming_the_argument(
    tmp_path: Path, keys: Any
) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"model": 1})
    with pytest.raises(TypeError, match="required_keys"):
        ckptkit.validate(path, required_keys=keys)
    with pytest.raises(TypeError, match="keys"):
        ckptkit.load(path, keys=keys)


def test_unreadable_checkpoint_raises_permission_error_not_corrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked through the I/O seam: the suite runs as root, where chmod is moot."""
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"step": 1})

    def refused(target: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(fs, "open_read", refused)
    with pytest.raises(PermissionError):
        ckptkit.validate(path, ledger=ckptkit.FailureLedger(tmp_path))
    tree = ckptkit.validate_tree([path], ledger="folder")
    monkeypatch.undo()
    assert tree.reports == ()
    assert tree.exit_code is ckptkit.ExitCode.FAILURE
    assert "cannot read it (Permission denied)" in tree.errors[0]
    assert _ledger_lines(tmp_path) == []
