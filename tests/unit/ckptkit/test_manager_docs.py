"""Every Python example in docs/ckptkit/manager.md runs, in order, in one folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "ckptkit" / "manager.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_example_in_manager_md_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = _BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102
    assert (tmp_path / "run" / "failed_checkpoints.txt").is_file()


def test_manager_md_is_linked_from_the_index() -> None:
    index = (DOC.parents[1] / "index.md").read_text(encoding="utf-8")
    assert "(ckptkit/manager.md)" in index
