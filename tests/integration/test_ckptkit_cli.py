"""The ``ckptkit`` console script, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import ckptkit
from ckptkit._file.format import temp_name
from ckptkit.ledger import FailureLedger

from ..support.checkpoint_zoo import DEAD_PID, build_zoo
from ..support.corrupt import flip_tensor_bit
from ..support.subprocess_runner import run_cli, run_console_script

CONSOLE_SCRIPT = Path(sys.executable).with_name("ckptkit")


def ckptkit_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ckptkit`` console script."""
    return run_console_script("ckptkit", *args)


def _assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.stderr
    assert len(result.stderr.strip().splitlines()) == len(errors)


def test_validate_folder_classifies_every_file_and_exits_3(tmp_path: Path) -> None:
    zoo = build_zoo(tmp_path)
    result = ckptkit_cli("validate", tmp_path)
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    by_path = {line.split()[1].rstrip(":"): line.split()[0] for line in lines[:-1]}
    for name in zoo.valid:
        assert by_path[str(tmp_path / name)] == "ok", name
    for name in zoo.corrupted:
        assert by_path[str(tmp_path / name)] == "CORRUPTED", name
    for name in zoo.incompatible:
        assert by_path[str(tmp_path / name)] == "INCOMPATIBLE", name
    for name in zoo.not_checkpoints + zoo.temporary:
        assert by_path[str(tmp_path / name)] == "skipped", name
    assert lines[-1] == (
        f"{len(zoo.valid)} valid, {len(zoo.corrupted)} corrupted, "
        f"{len(zoo.incompatible)} incompatible, "
        f"{len(zoo.not_checkpoints)} not checkpoints, 1 temporary files skipped"
    )
    # One ledger line per failure, in the failed checkpoints' folder.
    ledger = FailureLedger(tmp_path)
    assert sorted(e.path for e in ledger.entries()) == sorted(
        str(tmp_path / name) for name in zoo.failed
    )
    assert ledger.path.read_text(encoding="utf-8").count("\n") == len(zoo.failed)
    assert f"failures recorded in {ledger.path}" in result.stderr


def test_validate_json_parses_and_matches_the_files(tmp_path: Path) -> None:
    zoo = build_zoo(tmp_path)
    result = ckptkit_cli("validate", "--json", "--no-ledger", tmp_path)
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    kinds = {
        str(Path(c["path"]).relative_to(tmp_path)): c["kind"]
        for c in data["checkpoints"]
    }
    assert kinds == {
        **dict.fromkeys(zoo.valid),
        **dict.fromkeys(zoo.corrupted, "corrupted"),
        **dict.fromkeys(zoo.incompatible, "incompatible"),
    }
    good = next(c for c in data["checkpoints"] if c["path"].endswith("good.ckpt"))
    assert good["ok"] is True
    assert (good["format"], good["version"], good["schema"]) == (
        "ckptkit",
        "1.0",
        "zoo",
    )
    legacy = next(c for c in data["checkpoints"] if c["path"].endswith("legacy.pt"))
    assert (legacy["format"], legacy["version"]) == ("torch", "0.x")
    assert data["summary"] == {
        "valid": len(zoo.valid),
        "corrupted": len(zoo.corrupted),
        "incompatible": len(zoo.incompatible),
        "missing": 0,
        "missing_keys": 0,
        "not_checkpoints": len(zoo.not_checkpoints),
        "temporary": 1,
        "errors": 0,
        "exit_code": 3,
        "text": data["summary"]["text"],
    }
    assert sorted(data["not_checkpoints"]) == sorted(
        str(tmp_path / name) for name in zoo.not_checkpoints
    )
    assert data["ledgers"] == []
    assert not (tmp_path / "failed_checkpoints.txt").exists()


def test_validate_all_valid_exits_0_at_every_level(tmp_path: Path) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"model": {"w": torch.ones(3)}, "step": 1})
    torch.save({"model": {"w": torch.ones(3)}}, tmp_path / "b.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    result = ckptkit_cli(
        "validate", "--level", "quick", "--require", "model.w", tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "2 valid, 0 corrupted, 0 incompatible, 1 not checkpoints"
    )
    assert not (tmp_path / "failed_checkpoints.txt").exists()


def test_validate_missing_required_key_and_missing_file_exit_3(tmp_path: Path) -> None:
    """A missing file is a checkpoint problem (3); a lacking key is not damage."""
    ckptkit.save(tmp_path / "a.ckpt", {"step": 1})
    ledger_dir = tmp_path / "audit"
    result = ckptkit_cli(
        "validate",
        "--require",
        "model",
        "--ledger",
        ledger_dir,
        tmp_path / "a.ckpt",
        tmp_path / "gone.ckpt",
    )
    assert result.returncode == 3
    assert "0 corrupted" in result.stdout
    assert "1 missing, 1 missing keys" in result.stdout
    assert "MISSING_KEYS" in result.stdout
    entries = FailureLedger(ledger_dir).entries()
    assert [Path(e.path).name for e in entries] == ["gone.ckpt"]


def test_validate_require_on_a_healthy_file_without_the_key_exits_4(
    tmp_path: Path,
) -> None:
    """Issue 13 item 1: not 'corrupted', no ledger line, its own exit code."""
    ckptkit.save(tmp_path / "a.ckpt", {"step": 1})
    result = ckptkit_cli("validate", "--require", "model", "--json", tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["checkpoints"][0]["kind"] == "missing_keys"
    assert "model" in data["checkpoints"][0]["reason"]
    assert data["summary"]["missing_keys"] == 1
    assert data["summary"]["corrupted"] == 0
    assert data["ledgers"] == []
    assert not (tmp_path / "failed_checkpoints.txt").exists()


def test_validate_bad_arguments_exit_1_with_one_line(tmp_path: Path) -> None:
    result = ckptkit_cli("validate", "--level", "deep", tmp_path)
    assert result.returncode == 1
    _assert_one_line_error(result)
    assert "--level" in result.stderr
    both = ckptkit_cli("validate", "--ledger", tmp_path, "--no-ledger", tmp_path)
    assert both.returncode == 1
    _assert_one_line_error(both)


def test_validate_unreadable_entry_exits_1_and_names_it(tmp_path: Path) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"step": 1})
    (tmp_path / "latest.ckpt").symlink_to(tmp_path / "deleted.ckpt")
    result = ckptkit_cli("validate", tmp_path)
    assert result.returncode == 1
    _assert_one_line_error(result)
    assert str(tmp_path / "latest.ckpt") in result.stderr
    assert "1 valid" in result.stdout


def test_inspect_json_reports_the_header(tmp_path: Path) -> None:
    target = tmp_path / "a.ckpt"
    ckptkit.save(
        target,
        {"w": torch.zeros(2, 3, dtype=torch.bfloat16), "step": 4},
        schema="demo",
        status="in_progress",
        metadata={"epoch": 2},
    )
    result = ckptkit_cli("inspect", "--json", target)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    info = ckptkit.inspect(target)
    assert data["version"] == info.version == "1.0"
    assert data["schema"] == "demo"
    assert data["status"] == "in_progress"
    assert data["created_at"] == info.created_at
    assert data["metadata"] == {"epoch": 2}
    assert data["file_size"] == target.stat().st_size
    assert data["tensors"] == [
        {"name": "w", "dtype": "bfloat16", "shape": [2, 3], "nbytes": 12}
    ]
    assert data["history"] == []
    text = ckptkit_cli("inspect", target)
    assert "schema:       demo" in text.stdout
    assert "w  bfloat16  [2, 3]" in text.stdout


def test_inspect_damaged_header_exits_3_traceback_only_when_verbose(
    tmp_path: Path,
) -> None:
    target = tmp_path / "a.ckpt"
    target.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    result = ckptkit_cli("inspect", target)
    assert result.returncode == 3
    _assert_one_line_error(result)
    assert str(target) in result.stderr
    verbose = ckptkit_cli("inspect", "--verbose", target)
    assert verbose.returncode == 3
    assert "Traceback" in verbose.stderr


def test_ledger_command_lists_entries_newest_last_and_malformed_lines(
    tmp_path: Path,
) -> None:
    ledger = FailureLedger(tmp_path)
    ledger.record("/ck/a|1.pt", "first\nfailure", timestamp="2025-01-01T00:00:00Z")
    with ledger.path.open("a", encoding="utf-8") as handle:
        handle.write("garbage\n")
    ledger.record("/ck/b.pt", "second", timestamp="2025-01-02T00:00:00Z")
    result = ckptkit_cli("ledger", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2025-01-01T00:00:00.000000Z  /ck/a|1.pt: first\\nfailure",
        "2025-01-02T00:00:00.000000Z  /ck/b.pt: second",
        "malformed line 2: garbage",
        f"2 failures recorded in {ledger.path}, 1 malformed lines",
    ]
    data = json.loads(ckptkit_cli("ledger", "--json", tmp_path).stdout)
    assert [e["path"] for e in data["entries"]] == ["/ck/a|1.pt", "/ck/b.pt"]
    assert data["entries"][0]["reason"] == "first\nfailure"
    assert data["malformed"] == [{"line": 2, "text": "garbage"}]


def test_ledger_of_a_missing_folder_exits_1(tmp_path: Path) -> None:
    result = ckptkit_cli("ledger", tmp_path / "nowhere")
    assert result.returncode == 1
    _assert_one_line_error(result)


def test_cleanup_removes_only_files_of_dead_writers(tmp_path: Path) -> None:
    ckptkit.save(tmp_path / "a.ckpt", {"step": 1})
    dead = tmp_path / temp_name("a.ckpt", "0123456789ab", DEAD_PID)
    alive = tmp_path / temp_name("a.ckpt", "ba9876543210", os.getpid())
    nested = tmp_path / "sub" / temp_name("b.ckpt", "0123456789ab", DEAD_PID)
    nested.parent.mkdir()
    for path in (dead, alive, nested):
        path.write_bytes(b"partial")
    dry = ckptkit_cli("cleanup", "--dry-run", "--recursive", tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {dead}" in dry.stdout
    assert f"would remove {nested}" in dry.stdout
    assert dry.stdout.splitlines()[-1] == "would remove 2 temporary files"
    assert dead.exists()
    assert nested.exists()
    result = ckptkit_cli("cleanup", tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"removed {dead}" in result.stdout
    assert f"kept {alive}" in result.stdout
    assert result.stdout.splitlines()[-1] == "removed 1 temporary files"
    assert not dead.exists()
    assert alive.exists()
    assert nested.exists()  # not recursive by default
    assert (tmp_path / "a.ckpt").exists()


def test_python_dash_m_runs_the_same_cli(tmp_path: Path) -> None:
    target = tmp_path / "a.ckpt"
    ckptkit.save(target, {"w": torch.ones(2)})
    flip_tensor_bit(target)
    result = run_cli("ckptkit", ["validate", "--no-ledger", target])
    assert result.returncode == 3
    assert result.stdout.splitlines()[-1] == "0 valid, 1 corrupted, 0 incompatible"


def test_importing_ckptkit_leaves_the_cli_and_typer_out() -> None:
    code = (
        "import sys, ckptkit; "
        "print(sorted(m for m in ('typer', 'ckptkit.cli') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_validate_prints_and_records_names_that_are_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9 | line\nbreak.ckpt")
    target = tmp_path / name
    ckptkit.save(target, {"w": torch.ones(4)})
    flip_tensor_bit(target)
    result = ckptkit_cli("validate", tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "caf\\udce9 | line\\nbreak.ckpt: checksum mismatch" in result.stdout
    (entry,) = FailureLedger(tmp_path).entries()
    assert entry.path == str(target)
