"""``ckptkit migrate`` and ``ckptkit inspect``: the console script in subprocesses,
and the same entry point (``ckptkit.cli.main``) in-process for the many cases.

Each test works in a folder holding a user's registry module, as a training
project would: ``--registry trainer_ckpt:registry`` is imported from there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
from ckptkit.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator

CONSOLE_SCRIPT = Path(sys.executable).with_name("ckptkit")

REGISTRY_MODULE = '''
import torch
import ckptkit

registry = ckptkit.MigrationRegistry(schema="my-trainer", current="2.0")


@registry.migration("0.x", "1.0")
def from_legacy(state):
    """0.x -> 1.0: legacy dicts held the weights under "state_dict"."""
    return {"model": state["state_dict"], "epoch": state.get("epoch", 0)}


@registry.migration("1.0", "1.1")
def add_ema(state):
    """1.0 -> 1.1: an EMA copy of the weights."""
    state["ema"] = {k: v.clone() for k, v in state["model"].items()}
    return state


@registry.migration("1.1", "2.0")
def half_ema(state):
    """2.0: the EMA is kept in float16."""
    state["ema"] = {k: v.to(torch.float16) for k, v in state["ema"].items()}
    return state


failing = ckptkit.MigrationRegistry(schema="my-trainer", current="1.1")


@failing.migration("1.0", "1.1")
def explode(state):
    raise RuntimeError("boom")


gap = ckptkit.MigrationRegistry(schema="my-trainer")
gap.register("0.x", "1.0", from_legacy)
gap.register("1.1", "2.0", half_ema)
'''


def _write_project(root: Path) -> Path:
    (root / "trainer_ckpt.py").write_text(REGISTRY_MODULE, encoding="utf-8")
    runs = root / "runs"
    runs.mkdir()
    return runs


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder as the current folder; sys.path and sys.modules restored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    sys.modules.pop("trainer_ckpt", None)
    yield _write_project(tmp_path)
    sys.modules.pop("trainer_ckpt", None)


def _cli(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, for real."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *[str(a) for a in args]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _main(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    """The console script's entry point in this process: (exit code, out, err)."""
    monkeypatch.setattr(sys, "argv", ["ckptkit", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    captured = capsys.readouterr()
    return int(stop.value.code or 0), captured.out, captured.err


def _save_1_0(path: Path, schema: str = "my-trainer") -> None:
    ckptkit.save(path, {"model": {"w": torch.ones(2, 2)}, "epoch": 3}, schema=schema)


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- the console script, in subprocesses ----------------------------------------


def test_console_script_migrates_every_file_and_exits_3_on_a_bad_one(
    tmp_path: Path,
) -> None:
    runs = _write_project(tmp_path)
    _save_1_0(runs / "other.ckpt", schema="someone-else")
    _save_1_0(runs / "step-1.ckpt")
    result = _cli(
        tmp_path,
        "migrate",
        "runs/other.ckpt",
        "runs/step-1.ckpt",
        "--registry",
        "trainer_ckpt:registry",
    )
    assert result.returncode == 3
    line = _one_line_error(result.stderr)
    assert (
        "runs/other.ckpt: checkpoint schema 'someone-else' is not 'my-trainer'" in line
    )
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "migrated runs/step-1.ckpt: 1.0 -> 2.0 (2 steps); kept the original as "
        "runs/step-1.ckpt.v1.0.bak"
    )
    assert "  step 1.0 -> 1.1: trainer_ckpt.add_ema" in lines
    assert "  + ema: dict (1 keys)" in lines
    shown = _cli(tmp_path, "inspect", "runs/step-1.ckpt")
    assert shown.returncode == 0, shown.stderr
    for text in (
        "version:      2.0",
        "schema:       my-trainer",
        "status:       complete",
        "history:      2 migration steps",
        "  1.0 -> 1.1  trainer_ckpt.add_ema  at ",
        "  1.1 -> 2.0  trainer_ckpt.half_ema  at ",
    ):
        assert text in shown.stdout, shown.stdout


def test_console_script_exits_1_with_one_line_for_a_missing_registry(
    tmp_path: Path,
) -> None:
    runs = _write_project(tmp_path)
    _save_1_0(runs / "a.ckpt")
    result = _cli(tmp_path, "migrate", "runs/a.ckpt", "--registry", "nope_mod:registry")
    assert result.returncode == 1
    assert "ModuleNotFoundError" in _one_line_error(result.stderr)


# --- the same entry point, in-process ---------------------------------------------


def test_inspect_json_lists_the_history(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save_1_0(runs / "a.ckpt")
    assert (
        _main(
            capsys,
            monkeypatch,
            "migrate",
            "runs/a.ckpt",
            "--registry",
            "trainer_ckpt:registry",
        )[0]
        == 0
    )
    code, out, _ = _main(capsys, monkeypatch, "inspect", "--json", "runs/a.ckpt")
    assert code == 0
    history = json.loads(out)["history"]
    assert [(h["from"], h["to"]) for h in history] == [("1.0", "1.1"), ("1.1", "2.0")]
    assert history[0]["step"] == "trainer_ckpt.add_ema"


def test_dry_run_writes_nothing_and_lists_steps_and_changes(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save_1_0(runs / "a.ckpt")
    before = _listing(runs)
    args = ["migrate", "runs/a.ckpt", "--registry", "trainer_ckpt:registry"]
    code, out, err = _main(capsys, monkeypatch, *args, "--dry-run", "--json")
    assert code == 0, err
    assert _listing(runs) == before
    (report,) = json.loads(out)
    assert (report["dry_run"], report["written"]) == (True, False)
    assert [step["to"] for step in report["chain"]] == ["1.1", "2.0"]
    assert {(c["key"], c["kind"]) for c in report["changes"]} == {("ema", "added")}
    code, out, _ = _main(capsys, monkeypatch, *args, "--dry-run")
    assert out.splitlines()[0].startswith("would migrate runs/a.ckpt: 1.0 -> 2.0")
    assert _listing(runs) == before


def test_legacy_file_to_output_and_in_place_without_backup_to_a_version(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.save({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, runs / "old.pth")
    legacy_bytes = (runs / "old.pth").read_bytes()
    _save_1_0(runs / "b.ckpt")
    registry = ["--registry", "trainer_ckpt:registry"]
    first = _main(
        capsys,
        monkeypatch,
        "migrate",
        "runs/old.pth",
        *registry,
        "--output",
        "runs/new.ckpt",
    )
    assert first[0] == 0, first[2]
    assert first[1].splitlines()[0] == (
        "migrated runs/old.pth: 0.x -> 2.0 (3 steps) into runs/new.ckpt"
    )
    second = _main(
        capsys,
        monkeypatch,
        "migrate",
        "runs/b.ckpt",
        *registry,
        "--to",
        "1.1",
        "--no-backup",
    )
    assert second[0] == 0, second[2]
    assert (runs / "old.pth").read_bytes() == legacy_bytes
    assert ckptkit.inspect(runs / "new.ckpt").version == "2.0"
    assert ckptkit.inspect(runs / "b.ckpt").version == "1.1"
    assert sorted(p.name for p in runs.iterdir()) == ["b.ckpt", "new.ckpt", "old.pth"]


def test_checkpoint_problems_are_one_line_exit_3_and_change_nothing(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save_1_0(runs / "a.ckpt")
    ckptkit.save(runs / "future.ckpt", {"x": 1}, schema="my-trainer", version="3.0")
    before = _listing(runs)
    cases = [
        (
            ["runs/a.ckpt", "--registry", "trainer_ckpt:failing"],
            "explode (1.0 -> 1.1) failed at version 1.0: RuntimeError: boom",
        ),
        (
            ["runs/future.ckpt", "--registry", "trainer_ckpt:registry"],
            "written by a newer version of my-trainer; upgrade to >= 3.0",
        ),
        (
            ["runs/a.ckpt", "--registry", "trainer_ckpt:registry", "--to", "1.5"],
            "no chain of migrations of my-trainer leads from 1.0 to 1.5",
        ),
    ]
    for args, words in cases:
        code, _, err = _main(capsys, monkeypatch, "migrate", *args)
        assert code == 3, (args, err)
        assert words in _one_line_error(err), (args, err)
    assert _listing(runs) == before


def test_problems_that_are_not_the_checkpoints_exit_1(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save_1_0(runs / "a.ckpt")
    _save_1_0(runs / "b.ckpt")
    before = _listing(runs)
    good = ["--registry", "trainer_ckpt:registry"]
    cases = [
        (["runs/a.ckpt", "--registry", "trainer_ckpt:gap"], "gap: no step leaves 1.0"),
        (["runs/a.ckpt", "--registry", "trainer_ckpt"], "module:attribute"),
        (["runs", *good], "is a folder"),
        (["runs/a.ckpt", "--to", "one", *good], "'one' is not a version"),
        (
            ["runs/a.ckpt", "runs/b.ckpt", "--output", "x.ckpt", *good],
            "--output takes exactly one PATH",
        ),
        (["runs/a.ckpt"], "--registry"),
    ]
    for args, words in cases:
        code, _, err = _main(capsys, monkeypatch, "migrate", *args)
        assert code == 1, (args, err)
        assert words in _one_line_error(err), (args, err)
    assert _listing(runs) == before
