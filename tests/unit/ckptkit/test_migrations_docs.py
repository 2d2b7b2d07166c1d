"""Every example in docs/ckptkit/migrations.md runs, in order, in one fresh folder.

A Python block whose first line is ``# NAME.py`` is written to that file (test
files among them are imported and their ``test_*`` functions run); other Python
blocks are executed. ``ckptkit ...`` lines of bash blocks run through the console
script's entry point, with shell globs expanded, and must exit 0.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest

from ckptkit.cli import main

DOC = Path(__file__).resolve().parents[3] / "docs" / "ckptkit" / "migrations.md"
_BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return [(m[1], m[2]) for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def _run_command(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    words = shlex.split(line)
    args = [
        match
        for word in words[1:]
        for match in (
            sorted(str(p) for p in Path().glob(word)) if "*" in word else [word]
        )
    ]
    monkeypatch.setattr(sys, "argv", ["ckptkit", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    assert not stop.value.code, line


def _run_python(code: str) -> None:
    first = code.splitlines()[0]
    named = re.fullmatch(r"# (\w+)\.py", first)
    if named is None:
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})  # noqa: S102
        return
    Path(f"{named[1]}.py").write_text(code, encoding="utf-8")
    if named[1].startswith("test_"):
        module = importlib.import_module(named[1])
        tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
        assert tests
        for test in tests:
            test()


def test_every_example_in_migrations_md_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    for name in ("my_trainer_ckpt", "test_my_trainer_ckpt"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    blocks = _blocks()
    assert [kind for kind, _ in blocks].count("bash") >= 1
    try:
        for kind, code in blocks:
            if kind == "python":
                _run_python(code)
                continue
            for line in code.splitlines():
                if line.startswith("ckptkit "):
                    _run_command(line, monkeypatch)
    finally:
        for name in ("my_trainer_ckpt", "test_my_trainer_ckpt"):
            sys.modules.pop(name, None)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "step-100.ckpt",
        "step-100.ckpt.v1.0.bak",
        "step-200.ckpt",
        "step-200.ckpt.v1.1.bak",
    ]
