"""Sharded checkpoints in real gloo process groups (FSDP2 + AdamW on CPU).

``distributed_ranks.py`` runs every multi-rank scenario once (forked ranks, one
torch import); these tests check what each rank reported and what is on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ckptkit
import ckptkit.distributed as ckd
from ckptkit.cli import app

SCRIPT = Path(__file__).with_name("distributed_ranks.py")
CONSOLE_SCRIPT = Path(sys.executable).with_name("ckptkit")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("ranks") / "run"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    return out, report


def assert_same(actual: Any, expected: Any, where: str = "state") -> None:
    """Equal values of equal types, tensors bit for bit (dtype and shape too)."""
    assert type(actual) is type(expected), where
    if isinstance(expected, torch.Tensor):
        assert actual.dtype == expected.dtype, where
        assert torch.equal(actual, expected), where
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, where
        assert np.array_equal(actual, expected), where
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{index}]")
    else:
        assert actual == expected, where


def _reference(out: Path) -> dict[str, Any]:
    state: dict[str, Any] = ckptkit.load(out / "ref.ckpt").state
    return state


def test_every_rank_of_every_scenario_finished(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    _, report = ranks
    assert report["codes"] == {"save4": [0] * 4, "load2": [0] * 2, "load1": [0]}
    for name, result in report.items():
        assert "traceback" not in json.dumps(result), (name, result)


def test_state_saved_on_4_ranks_loads_whole_in_one_process(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, report = ranks
    assert [report[f"save4-{r}"]["info"] for r in range(4)] == [[4, 4, "fsdp-demo"]] * 4
    loaded = ckptkit.load(out / "ck4", verify="full")
    assert_same(loaded.state, _reference(out))
    assert loaded.info.metadata == {"epoch": 3}


@pytest.mark.parametrize("world", [4, 2, 1])
def test_fsdp_load_on_any_world_size_gives_the_saved_state(
    ranks: tuple[Path, dict[str, Any]], world: int
) -> None:
    """4 -> 4 (with pickle disabled), 4 -> 2 and 4 -> 1 with a process group."""
    out, _ = ranks
    loaded = ckptkit.load(out / f"loaded{world}.ckpt").state
    reference = _reference(out)
    for part in ("model", "optim", "epoch", "rng"):
        assert_same(loaded[part], reference[part], part)


def test_a_migration_adding_a_tensor_fills_the_dtensor_shards_of_each_rank(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    _, report = ranks
    expected = [1, [float(n) for n in range(16)]]
    assert [report[f"load2-{r}"]["migrated"] for r in range(2)] == [expected] * 2


def test_a_single_file_loads_into_an_fsdp_state_on_2_ranks(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    """The inverse of consolidate: the whole-state file filled into DTensors."""
    out, _ = ranks
    loaded = ckptkit.load(out / "from_single2.ckpt").state
    reference = _reference(out)
    for part in ("model", "optim", "rng"):
        assert_same(loaded[part], reference[part], part)


def test_load_without_a_process_group_into_plain_tensors(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = ranks
    reference = _reference(out)
    target = ckptkit.load(out / "ref.ckpt").state
    for values in [target["model"], *target["optim"]["state"].values()]:
        for key, tensor in values.items():
            values[key] = torch.zeros_like(tensor)
    target["epoch"], target["rng"] = 0, None
    checkpoint = ckd.load(out / "ck4", target)
    assert checkpoint.info.world_size == 4
    assert_same(target, reference)


def test_a_rank_failing_its_write_fails_every_rank_alike_and_keeps_the_old(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, report = ranks
    errors = [report[f"save4-{r}"]["write_failure"] for r in range(4)]
    assert errors == [errors[0]] * 4
    name, message = errors[0]
    assert name == "RankFailedError"
    assert "rank 2" in message
    assert "No space left on device" in message
    assert ckptkit.load(out / "ck4").state["epoch"] == 3
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_flipped_byte_in_one_shard_fails_the_load_on_every_rank(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, report = ranks
    errors = [report[f"save4-{r}"]["corrupt_load"] for r in range(4)]
    assert errors == [errors[0]] * 4
    assert errors[0][0] == "ChecksumMismatchError"
    assert str(out / "ck4bad" / "shard-00002.ckpt") in errors[0][1]


def test_validate_cli_exits_3_naming_the_shard_and_records_it(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = ranks
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "validate", str(out / "ck4"), str(out / "ck4bad")],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"ok           {out / 'ck4'} (ckptkit-sharded")
    assert lines[1].startswith(f"CORRUPTED    {out / 'ck4bad'}: shard-00002.ckpt: ")
    entries = ckptkit.FailureLedger(out).entries()
    assert [e.path for e in entries] == [str(out / "ck4bad")]
    assert entries[0].reason.startswith("shard-00002.ckpt: checksum mismatch")


def test_inspect_shows_the_global_view(ranks: tuple[Path, dict[str, Any]]) -> None:
    out, _ = ranks
    result = CliRunner().invoke(app, ["inspect", "--json", str(out / "ck4")])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["format"] == "ckptkit-sharded"
    assert shown["world_size"] == 4
    assert [s["file"] for s in shown["shards"]] == [
        f"shard-0000{r}.ckpt" for r in range(4)
    ]
    shapes = {t["name"]: t["shape"] for t in shown["tensors"]}
    assert shapes["model.0.weight"] == [16, 8]
    assert shapes["optim.state.2.weight.exp_avg"] == [3, 16]
    assert shown["nbytes"] == sum(t["nbytes"] for t in shown["tensors"])


def test_consolidate_writes_one_file_with_the_whole_state(
    ranks: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = ranks
    single = tmp_path / "single.ckpt"
    result = CliRunner().invoke(app, ["consolidate", str(out / "ck4"), str(single)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {single}: ")
    info = ckptkit.inspect(single)
    assert (info.schema, info.metadata) == ("fsdp-demo", {"epoch": 3})
    assert_same(ckptkit.load(single).state, _reference(out))
    again = CliRunner().invoke(
        app, ["consolidate", str(out / "ck4bad"), str(tmp_path / "x")]
    )
    assert again.exit_code == 3
    assert not (tmp_path / "x").exists()


def test_sharded_manager_retains_and_restores_past_a_damaged_newest_step(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, report = ranks
    seen = [report[f"save4-{r}"]["manager"] for r in range(4)]
    assert seen == [seen[0]] * 4
    assert seen[0] == {
        "steps": [2, 3],
        "restored_step": 2,
        "restored_epoch": 2,
        "warnings": ["CheckpointFallbackWarning"],
    }
    entries = ckptkit.FailureLedger(out / "run").entries()
    assert [e.path for e in entries] == [str(out / "run" / "step-000000000003")]


def _kill_epoch(epoch: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(epoch)
    return {f"w{i}": torch.randn(8, 4) for i in range(60)}


def test_sigkill_mid_save_leaves_the_old_or_the_new_checkpoint_never_a_part(
    ranks: tuple[Path, dict[str, Any]],
) -> None:
    out, report = ranks
    killed_mid_save = 0
    for number, kill in enumerate(report["kills"]):
        folder = out / f"kill{number}"
        survivor = 1 - kill["victim"]
        assert kill["codes"][survivor] == 0, kill  # exited on its own: no hang
        outcome = report[f"kill{number}-{survivor}"]["second_save"]
        if kill["codes"][kill["victim"]] == -9 and outcome is not None:
            killed_mid_save += 1
            assert outcome[0] == "RankFailedError", outcome
        for leftover in (p for p in folder.iterdir() if p.name.startswith(".")):
            with pytest.raises(ckptkit.CheckpointNotFoundError):
                ckptkit.load(leftover)
        state = ckptkit.load(folder / "ck", verify="full").state
        assert state["epoch"] in (1, 2)
        assert_same(state["model"], _kill_epoch(state["epoch"]))
        ckptkit.cleanup(folder)
        assert not [p for p in folder.iterdir() if ".ckptkit-" in p.name]
        assert ckptkit.validate_tree([folder]).ok
    assert killed_mid_save >= 1
