"""Lines of ``src/`` at a git revision: all lines, and code lines, per package.

Run: python bench/src_lines.py [REV ...]   (default HEAD)

Code lines are lines that carry a token other than a comment or a docstring
(module, class, function and attribute docstrings), counted with ``ast`` and
``tokenize``; blank lines do not count.
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize

_SKIPPED_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def code_lines(text: str) -> int:
    """How many lines of ``text`` carry code (not comments or docstrings)."""
    docstrings = _docstring_lines(ast.parse(text))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in _SKIPPED_TOKENS:
            span = range(token.start[0], token.end[0] + 1)
            lines.update(line for line in span if line not in docstrings)
    return len(lines)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=True
    ).stdout


def count(revision: str) -> dict[str, tuple[int, int]]:
    """``{package: (all lines, code lines)}`` of ``src/`` at ``revision``."""
    totals: dict[str, tuple[int, int]] = {}
    for path in _git("ls-tree", "-r", "--name-only", revision, "src").split():
        if path.endswith(".py"):
            text = _git("show", f"{revision}:{path}")
            package = path.split("/")[1]
            lines, code = totals.get(package, (0, 0))
            totals[package] = (lines + text.count("\n"), code + code_lines(text))
    return totals


def main() -> None:
    """Print the counts of every revision given."""
    for revision in sys.argv[1:] or ["HEAD"]:
        totals = count(revision)
        parts = [
            f"{name} {lines} lines / {code} code"
            for name, (lines, code) in sorted(totals.items())
        ]
        all_lines = sum(lines for lines, _ in totals.values())
        all_code = sum(code for _, code in totals.values())
        print(
            f"{revision}: {'; '.join(parts)}; src {all_lines} lines / {all_code} code"
        )


if __name__ == "__main__":
    main()
