"""validate_tree: every checkpoint in files and folders, verdicts and ledger lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
from ckptkit.ledger import FailureLedger
from ckptkit.types import ExitCode

from ...support.checkpoint_zoo import build_zoo
from ...support.corrupt import flip_tensor_bit

if TYPE_CHECKING:
    from pathlib import Path


def _by_name(report: ckptkit.TreeReport, folder: Path) -> dict[str, str | None]:
    return {str(r.path.relative_to(folder)): r.kind for r in report.reports}


def test_zoo_is_classified_and_counted(tmp_path: Path) -> None:
    zoo = build_zoo(tmp_path)
    report = ckptkit.validate_tree([tmp_path])
    kinds = _by_name(report, tmp_path)
    assert {n for n, k in kinds.items() if k is None} == set(zoo.valid)
    assert {n for n, k in kinds.items() if k == "corrupted"} == set(zoo.corrupted)
    assert {n for n, k in kinds.items() if k == "incompatible"} == set(zoo.incompatible)
    assert report.num_valid == len(zoo.valid)
    assert report.num_corrupted == len(zoo.corrupted)
    assert report.num_incompatible == len(zoo.incompatible)
    assert len(report.not_checkpoints) == len(zoo.not_checkpoints)
    assert len(report.temporary) == len(zoo.temporary)
    assert report.exit_code is ExitCode.CHECKPOINT
    assert report.summary() == (
        f"{len(zoo.valid)} valid, {len(zoo.corrupted)} corrupted, "
        f"{len(zoo.incompatible)} incompatible, "
        f"{len(zoo.not_checkpoints)} not checkpoints, 1 temporary files skipped"
    )


def test_all_valid_folder_exits_ok_whatever_else_it_holds(tmp_path: Path) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"w": torch.ones(2)})
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    report = ckptkit.validate_tree([tmp_path])
    assert report.ok
    assert report.exit_code is ExitCode.OK
    assert report.summary() == "1 valid, 0 corrupted, 0 incompatible, 1 not checkpoints"


def test_unreadable_place_without_failed_checkpoints_exits_failure(
    tmp_path: Path,
) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"w": torch.ones(2)})
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    report = ckptkit.validate_tree([tmp_path])
    assert report.exit_code is ExitCode.FAILURE
    assert not report.ok


def test_named_missing_file_is_missing_and_exits_checkpoint(tmp_path: Path) -> None:
    """Reported, but not recorded next to it: a typo leaves no ledger behind."""
    report = ckptkit.validate_tree([tmp_path / "gone.ckpt"], ledger="folder")
    (only,) = report.reports
    assert only.kind == "missing"
    assert report.num_missing == 1
    assert report.exit_code is ExitCode.CHECKPOINT
    assert "1 missing" in report.summary()
    assert list(tmp_path.iterdir()) == []
    assert report.ledger_paths == ()


def test_named_missing_file_is_recorded_in_a_ledger_the_caller_names(
    tmp_path: Path,
) -> None:
    ledger = FailureLedger(tmp_path / "audit")
    ckptkit.validate_tree([tmp_path / "gone.ckpt"], ledger=ledger)
    assert [e.path for e in ledger.entries()] == [str(tmp_path / "gone.ckpt")]


def test_missing_folder_gets_no_ledger_created(tmp_path: Path) -> None:
    report = ckptkit.validate_tree([tmp_path / "no" / "gone.ckpt"], ledger="folder")
    assert report.num_missing == 1
    assert not (tmp_path / "no").exists()


def test_folder_ledgers_get_one_absolute_line_per_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo = build_zoo(tmp_path / "run")
    ckptkit.save(tmp_path / "run" / "sub" / "bad.ckpt", {"w": torch.ones(4)})
    flip_tensor_bit(tmp_path / "run" / "sub" / "bad.ckpt")
    monkeypatch.chdir(tmp_path)
    report = ckptkit.validate_tree(["run"], ledger="folder")
    top = FailureLedger(tmp_path / "run").entries()
    sub = FailureLedger(tmp_path / "run" / "sub").entries()
    assert sorted(e.path for e in top) == sorted(
        str(tmp_path / "run" / name) for name in zoo.failed
    )
    assert [e.path for e in sub] == [str(tmp_path / "run" / "sub" / "bad.ckpt")]
    assert report.ledger_paths == (
        tmp_path / "run" / "failed_checkpoints.txt",
        tmp_path / "run" / "sub" / "failed_checkpoints.txt",
    )
    reasons = {r.path.name: r.reason for r in report.reports}
    assert all(e.reason == reasons[e.path.rsplit("/", 1)[1]] for e in top + sub)


def test_one_given_ledger_receives_every_failure(tmp_path: Path) -> None:
    zoo = build_zoo(tmp_path / "run")
    ledger = FailureLedger(tmp_path / "audit")
    ckptkit.validate_tree([tmp_path / "run"], ledger=ledger)
    assert len(ledger.entries()) == len(zoo.failed)
    assert not (tmp_path / "run" / "failed_checkpoints.txt").exists()


def test_without_ledger_nothing_is_written(tmp_path: Path) -> None:
    build_zoo(tmp_path)
    ckptkit.validate_tree([tmp_path])
    assert not (tmp_path / "failed_checkpoints.txt").exists()
    assert ckptkit.validate_tree([tmp_path]).ledger_paths == ()


def test_a_ledger_that_cannot_be_written_is_an_error_not_a_crash(
    tmp_path: Path,
) -> None:
    target = tmp_path / "a.ckpt"
    ckptkit.save(target, {"w": torch.ones(4)})
    flip_tensor_bit(target)
    (tmp_path / "audit").write_text("a file where the ledger folder should be")
    report = ckptkit.validate_tree([target], ledger=FailureLedger(tmp_path / "audit"))
    assert report.num_corrupted == 1
    assert len(report.errors) == 1
    assert "cannot record the failure" in report.errors[0]


def test_required_keys_and_level_are_applied_to_every_checkpoint(
    tmp_path: Path,
) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"model": {"w": torch.ones(2)}, "step": 1})
    ckptkit.save(tmp_path / "b.ckpt", {"model": {"w": torch.ones(2)}})
    flip_tensor_bit(tmp_path / "b.ckpt")
    quick = ckptkit.validate_tree([tmp_path], level="quick", required_keys=["step"])
    assert {r.path.name: r.ok for r in quick.reports} == {
        "a.ckpt": True,
        "b.ckpt": False,
    }
    assert all(r.level == "quick" for r in quick.reports)
    assert "step" in next(r.reason for r in quick.reports if not r.ok)


def test_progress_is_called_with_done_and_total(tmp_path: Path) -> None:
    for index in range(3):
        ckptkit.save(tmp_path / f"{index}.ckpt", {"i": index})
    calls: list[tuple[int, int]] = []
    ckptkit.validate_tree(
        [tmp_path], progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_unknown_level_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="level"):
        ckptkit.validate_tree([tmp_path], level="deep")  # type: ignore[arg-type]
