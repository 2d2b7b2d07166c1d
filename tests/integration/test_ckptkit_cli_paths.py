"""Wrong paths and wrong files given to the installed ``ckptkit`` script.

Each mistake gets one line on stderr that names the path, says what it is and
what to do, with the documented exit code, and creates nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch

import ckptkit
from ckptkit._file.format import temp_name

from ..support.checkpoint_zoo import DEAD_PID
from ..support.subprocess_runner import run_console_script

REGISTRY = """
import ckptkit

registry = ckptkit.MigrationRegistry(schema="paths", current="1.1")


@registry.migration("1.0", "1.1")
def add_epoch(state):
    return {**state, "epoch": 0}
"""


_REGISTRY_REF = "paths_registry:registry"


def _cli(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_console_script("ckptkit", *args, cwd=cwd)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_validate_of_a_mistyped_path_creates_nothing(tmp_path: Path) -> None:
    """A typo used to leave failed_checkpoints.txt in the folder holding it."""
    (tmp_path / "run").mkdir()
    ckptkit.save(tmp_path / "run" / "a.ckpt", {"w": torch.ones(2)})
    before = _listing(tmp_path)
    result = _cli(tmp_path, "validate", "rnu", "run/b.ckpt", "nowhere/at/all.ckpt")
    assert result.returncode == 3
    assert _listing(tmp_path) == before
    missing = [line for line in result.stdout.splitlines() if line.startswith("MISS")]
    assert len(missing) == 3
    assert "3 missing" in result.stdout


def test_inspect_says_what_a_file_that_is_no_checkpoint_is(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("step 10: loss 0.3\n", encoding="utf-8")
    (tmp_path / "reads.fasta").write_text(">seq1 virus\nACGTACGT\n", encoding="utf-8")
    (tmp_path / "runs").mkdir()
    before = _listing(tmp_path)
    expected = {
        "notes.txt": ("a text file", "'step 10: loss 0.3'"),
        "reads.fasta": ("a FASTA file", "'>seq1 virus'"),
        "runs": ("is a folder", "ckptkit validate"),
    }
    for name, words in expected.items():
        result = _cli(tmp_path, "inspect", name)
        assert result.returncode == 3, name
        line = _one_error_line(result)
        assert line.startswith(f"error: {name}: "), line
        assert all(word in line for word in words), line
        assert "header claims" not in line
        if name != "runs":
            assert "pass a checkpoint file" in line
    assert _listing(tmp_path) == before


def test_inspect_json_of_legacy_files_agrees_with_itself(tmp_path: Path) -> None:
    """tensor_count used to count zip members while tensors stayed empty."""
    state = {"w": torch.ones(2, 3), "b": torch.zeros(4, dtype=torch.int64)}
    torch.save(state, tmp_path / "new.pt")
    torch.save(state, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    for name in ("new.pt", "old.pt"):
        result = _cli(tmp_path, "inspect", "--json", name)
        assert result.returncode == 0, result.stderr
        info = json.loads(result.stdout)
        assert info["tensor_count"] == len(info["tensors"]) == 2, (name, info)
        assert info["nbytes"] == sum(t["nbytes"] for t in info["tensors"]) == 56
        assert sorted(t["dtype"] for t in info["tensors"]) == ["float32", "int64"]


def test_migrate_onto_what_an_earlier_run_wrote_names_it_and_the_option(
    tmp_path: Path,
) -> None:
    (tmp_path / "paths_registry.py").write_text(REGISTRY, encoding="utf-8")
    ckptkit.save(tmp_path / "a.ckpt", {"w": torch.ones(2)}, schema="paths")
    to_b = ("migrate", "a.ckpt", "--registry", _REGISTRY_REF, "--output", "b.ckpt")
    first = _cli(tmp_path, *to_b)
    assert first.returncode == 0, first.stderr
    again = _cli(tmp_path, *to_b)
    assert again.returncode == 1
    line = _one_error_line(again)
    assert line.startswith("error: b.ckpt: output exists"), line
    assert "--output" in line
    assert "ckptkit:" not in line
    assert "permissions" not in line
    # In place, a second time onto a restored original: the backup is in the way.
    (tmp_path / "a.ckpt.v1.0.bak").write_bytes((tmp_path / "a.ckpt").read_bytes())
    backup = _cli(tmp_path, "migrate", "a.ckpt", "--registry", _REGISTRY_REF)
    assert backup.returncode == 1
    line = _one_error_line(backup)
    assert line.startswith("error: a.ckpt.v1.0.bak: "), line
    assert "--no-backup" in line


def test_cleanup_recursive_does_not_follow_a_link_out_of_the_folder(
    tmp_path: Path,
) -> None:
    """`cleanup -r` used to clean a folder outside through a link to it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    theirs = outside / temp_name("x.ckpt", "0123456789ab", DEAD_PID)
    theirs.write_bytes(b"not ours to delete")
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    ours = run / "sub" / temp_name("y.ckpt", "0123456789ab", DEAD_PID)
    ours.write_bytes(b"partial")
    (run / "link").symlink_to(outside)
    result = _cli(tmp_path, "cleanup", "-r", "run")
    assert result.returncode == 0, result.stderr
    assert theirs.exists()
    assert not ours.exists()
    assert "removed 1 temporary files" in result.stdout
