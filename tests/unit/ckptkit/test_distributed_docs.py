"""Every Python example in docs/ckptkit/distributed.md runs, in order, on one rank."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch.distributed as dist

DOCS = Path(__file__).resolve().parents[3] / "docs"
DOC = DOCS / "ckptkit" / "distributed.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.fixture
def one_rank_group(tmp_path: Path) -> Iterator[None]:
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.usefixtures("one_rank_group")
def test_every_example_in_distributed_md_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    blocks = _BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102
    assert (tmp_path / "work" / "checkpoints" / "run" / "step-000000000002").is_dir()


def test_distributed_md_is_linked_from_the_index_and_the_readme() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert "(ckptkit/distributed.md)" in index
    readme = DOCS.parent / "README.md"
    assert "(docs/ckptkit/distributed.md)" in readme.read_text(encoding="utf-8")
