"""docs/ckptkit/reliability.md's table of fault classes names tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def _table_rows() -> list[str]:
    text = (_ROOT / "docs" / "ckptkit" / "reliability.md").read_text(encoding="utf-8")
    section = text.split("## Fault classes", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")][2:]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_fault_class_row_names_existing_tests() -> None:
    rows = _table_rows()
    assert len(rows) >= 10
    for row in rows:
        references = _REFERENCE.findall(row)
        assert references, f"no test named in: {row}"
        for file_name, test_name in references:
            path = _ROOT / file_name
            assert path.is_file(), file_name
            if test_name:
                assert test_name in _test_names(path), f"{file_name}::{test_name}"
