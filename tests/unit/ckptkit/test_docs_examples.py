"""The examples of docs/ckptkit/quickstart.md, reliability.md and the exit-code
section of cli.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs" / "ckptkit"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(page: str) -> list[tuple[str, str]]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return [(match[1], match[2]) for match in _FENCE.finditer(text)]


def _run(code: str, page: str, namespace: dict[str, object]) -> None:
    exec(compile(code, str(DOCS / page), "exec"), namespace)  # noqa: S102


def test_every_block_of_quickstart_md_runs_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = _blocks("quickstart.md")
    # Every block is Python, so none is left untested.
    assert [language for language, _ in blocks] == ["python"] * len(blocks)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for _, code in blocks:
        _run(code, "quickstart.md", namespace)
    assert (tmp_path / "run" / "step-100.ckpt").is_file()
    assert (tmp_path / "run" / "weights.pt").is_file()


def test_the_fault_injection_example_of_reliability_md_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = [code for language, code in _blocks("reliability.md") if language]
    namespace: dict[str, object] = {"__name__": "docs_example"}
    _run(block, "reliability.md", namespace)
    test = namespace["test_full_disk_keeps_the_old_checkpoint"]
    assert callable(test)
    test(tmp_path, monkeypatch)


def test_the_exit_code_example_of_cli_md_exits_3_for_a_missing_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    block = next(code for language, code in _blocks("cli.md") if language == "python")
    assert "exit_code_for" in block
    with pytest.raises(SystemExit) as stopped:
        _run(block, "cli.md", {"__name__": "docs_example"})
    assert stopped.value.code == 3
    assert capsys.readouterr().err.startswith("error: run/step-100.ckpt: ")
