"""The I/O seam (``ckptkit._file.fs``): every file operation goes through it, and a
short or failing write never replaces a good checkpoint.

Regression: on a full disk, ``save`` took ``write``'s return value on trust; a
short write left a truncated file that then replaced the good checkpoint.
"""

from __future__ import annotations

import ast
import errno
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

import ckptkit
from ckptkit._file import fs

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Buffer

_SRC = Path(__file__).resolve().parents[3] / "src" / "ckptkit"


def _state(fill: float) -> dict[str, object]:
    # One tensor above the writer's threaded-hash threshold (1 MiB), some below.
    return {
        "big": torch.full((600_000,), fill),
        "small": torch.arange(10) * fill,
        "step": int(fill),
    }


def _old_checkpoint(folder: Path) -> tuple[Path, bytes]:
    path = folder / "model.ckpt"
    ckptkit.save(path, _state(1.0))
    return path, path.read_bytes()


def _real_write() -> Callable[[object, Buffer], int | None]:
    return fs.write


def _patch_writes(
    monkeypatch: pytest.MonkeyPatch, fake: Callable[[object, memoryview, int], object]
) -> list[int]:
    """Replace ``fs.write``; ``fake(handle, data, call_number)`` decides each call."""
    calls: list[int] = []

    def write(handle: object, data: Buffer) -> object:
        calls.append(len(memoryview(data)))
        return fake(handle, memoryview(data).cast("B"), len(calls))

    monkeypatch.setattr(fs, "write", write)
    return calls


def _assert_untouched(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert ckptkit.validate(path).ok


def test_save_completes_through_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _old_checkpoint(tmp_path)
    real = _real_write()
    calls = _patch_writes(
        monkeypatch, lambda handle, data, _n: real(handle, data[:100_003])
    )
    ckptkit.save(path, _state(2.0))
    monkeypatch.undo()
    assert len(calls) > 20  # the loop went on after every short write
    loaded = ckptkit.load(path, verify="full").state
    assert torch.equal(loaded["big"], torch.full((600_000,), 2.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_save_keeps_old_file_when_a_write_makes_no_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write, then nothing (a disk that just filled up)."""
    path, before = _old_checkpoint(tmp_path)
    real = _real_write()

    def short_then_zero(handle: object, data: memoryview, call: int) -> object:
        return real(handle, data[: len(data) // 2]) if call < 3 else 0

    _patch_writes(monkeypatch, short_then_zero)
    with pytest.raises(OSError, match="no progress") as raised:
        ckptkit.save(path, _state(2.0))
    assert raised.value.errno == errno.EIO
    monkeypatch.undo()
    _assert_untouched(path, before)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EDQUOT])
# Calls: 1 the placeholder header, 2 and 3 the tensors, 4 the final header.
@pytest.mark.parametrize("failing_call", [1, 2, 4])
def test_save_keeps_old_file_when_a_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, failing_call: int
) -> None:
    path, before = _old_checkpoint(tmp_path)
    real = _real_write()

    def failing(handle: object, data: memoryview, call: int) -> object:
        if call == failing_call:
            raise OSError(code, "injected")
        return real(handle, data)

    _patch_writes(monkeypatch, failing)
    with pytest.raises(OSError, match="injected") as raised:
        ckptkit.save(path, _state(2.0))
    assert raised.value.errno == code
    monkeypatch.undo()
    _assert_untouched(path, before)


def test_save_retries_a_write_interrupted_by_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _old_checkpoint(tmp_path)
    real = _real_write()

    def interrupted_once(handle: object, data: memoryview, call: int) -> object:
        if call == 2:
            raise InterruptedError(errno.EINTR, "injected")
        return real(handle, data)

    _patch_writes(monkeypatch, interrupted_once)
    ckptkit.save(path, _state(3.0))
    monkeypatch.undo()
    assert ckptkit.load(path, verify="full").state["step"] == 3


def test_save_refuses_a_file_shorter_than_its_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that claims more than it wrote is caught by the size check."""
    path, before = _old_checkpoint(tmp_path)
    real = _real_write()

    def lying(handle: object, data: memoryview, _call: int) -> object:
        real(handle, data[: len(data) // 2])
        return len(data)

    _patch_writes(monkeypatch, lying)
    with pytest.raises(OSError, match=r"wrote \d+ of \d+ bytes"):
        ckptkit.save(path, _state(2.0))
    monkeypatch.undo()
    _assert_untouched(path, before)


@pytest.mark.parametrize("operation", ["fsync", "close", "replace"])
def test_save_keeps_old_file_when_commit_step_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    path, before = _old_checkpoint(tmp_path)

    def failing(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EIO, f"injected {operation}")

    monkeypatch.setattr(fs, operation, failing)
    with pytest.raises(OSError, match=f"injected {operation}"):
        ckptkit.save(path, _state(2.0))
    monkeypatch.undo()
    _assert_untouched(path, before)


def test_manager_resave_keeps_its_only_copy_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ckptkit.CheckpointManager(tmp_path) as manager:
        manager.save(1, _state(1.0))
        step_file = tmp_path / "step-000000000001.ckpt"
        before = step_file.read_bytes()
        real = _real_write()
        _patch_writes(
            monkeypatch,
            lambda handle, data, call: real(handle, data[:1000]) if call < 4 else 0,
        )
        with pytest.raises(OSError, match="no progress"):
            manager.save(1, _state(2.0))
        monkeypatch.undo()
        assert step_file.read_bytes() == before
        assert manager.steps() == [1]
        assert manager.restore().state["step"] == 1


def test_ledger_line_stays_whole_through_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = ckptkit.FailureLedger(tmp_path)
    ledger.record("a.ckpt", "first")
    real = _real_write()
    calls = _patch_writes(monkeypatch, lambda handle, data, _n: real(handle, data[:7]))
    ledger.record("b.ckpt", "a reason longer than seven bytes")
    monkeypatch.undo()
    assert len(calls) > 1
    assert [(e.path, e.reason) for e in ledger.entries()] == [
        ("a.ckpt", "first"),
        ("b.ckpt", "a reason longer than seven bytes"),
    ]
    assert ledger.malformed == []


def test_every_listed_operation_is_a_function_of_the_seam() -> None:
    names = [name for group in fs.OPERATIONS.values() for name in group]
    assert len(names) == len(set(names))
    for name in names:
        assert callable(getattr(fs, name)), name
        assert name in (fs.__doc__ or ""), f"{name} is not documented"


# Method names that only file objects and paths have: called anywhere but in the
# seam, they are file I/O that bypasses it.
_FILE_METHODS = frozenset(
    {
        "open",
        "read",
        "readinto",
        "write",
        "seek",
        "fileno",
        "flush",
        "truncate",
        "unlink",
        "mkdir",
        "rmdir",
        "iterdir",
        "glob",
        "rglob",
        "stat",
        "lstat",
        "exists",
        "is_dir",
        "is_file",
        "is_symlink",
        "readlink",
        "samefile",
        "resolve",
        "rename",
        "touch",
        "read_bytes",
        "read_text",
        "write_bytes",
        "write_text",
    }
)
_OS_FILE_CALLS = frozenset(
    {
        "open",
        "read",
        "write",
        "fsync",
        "fdatasync",
        "close",
        "replace",
        "rename",
        "link",
        "unlink",
        "remove",
        "scandir",
        "listdir",
        "walk",
        "stat",
        "lstat",
        "fstat",
        "lseek",
        "mkdir",
        "makedirs",
        "fdopen",
        "dup",
    }
)
_BANNED_MODULES = frozenset({"shutil", "mmap", "fcntl", "tempfile"})
# (module, what): deliberate exceptions, each with its reason in the code.
_ALLOWED = {
    ("testing.py", "tempfile"),  # test helpers' own scratch folders
    # ZipFile.open of a member: its bytes come through bounded.BoundedReader.
    ("_file/torch_pickle.py", "open"),
}


def _bypasses(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names.append(getattr(node, "module", None) or "")
            found.extend(n for n in names if n.split(".")[0] in _BANNED_MODULES)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append("open")
            elif isinstance(func, ast.Attribute):
                owner = func.value
                if isinstance(owner, ast.Name) and owner.id == "fs":
                    continue  # through the seam
                if isinstance(owner, ast.Name) and owner.id == "os":
                    if func.attr in _OS_FILE_CALLS:
                        found.append(f"os.{func.attr}")
                elif func.attr in _FILE_METHODS:
                    found.append(func.attr)
    return found


def test_no_module_but_the_seam_touches_files() -> None:
    offenders = []
    for path in sorted(_SRC.rglob("*.py")):
        relative = path.relative_to(_SRC).as_posix()
        if relative != "_file/fs.py":
            offenders.extend(
                f"{relative}: {what}"
                for what in _bypasses(path)
                if (relative, what) not in _ALLOWED
            )
    assert offenders == []
