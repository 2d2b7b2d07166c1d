"""docs/ckptkit/cli.md and the ledger section of docs/ckptkit/format.md agree with
the code."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ckptkit.cli import app
from ckptkit.ledger import LedgerEntry, parse_line
from ckptkit.types import ExitCode

DOCS = Path(__file__).resolve().parents[3] / "docs" / "ckptkit"


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of its level or above."""
    start = text.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    following = re.search(
        rf"^#{{1,{level}}} ", text[start + len(heading) :], re.MULTILINE
    )
    end = start + len(heading) + following.start() if following else len(text)
    return text[start:end]


def test_every_command_and_option_is_documented_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert set(commands) >= {"validate", "inspect", "ledger", "cleanup"}
    for name, command in commands.items():
        section = _section(text, f"### ckptkit {name}")
        for param in command.params:
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("-"):
                    assert f"`{flag}" in section, f"{name} {flag}"


def test_exit_code_table_matches_exit_code() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {code.value} | `{code.name}` |" in text


def test_ledger_examples_in_format_md_parse_as_documented() -> None:
    text = (DOCS / "format.md").read_text(encoding="utf-8")
    section = _section(text, "## 8. Failure ledger")
    blocks = re.findall(r"```text\n(.*?)```", section, re.DOTALL)
    examples = blocks[1].splitlines()
    assert parse_line(examples[0]) == LedgerEntry(
        "/runs/a/step-100.ckpt",
        "checksum mismatch in tensor 'model.w': the file is damaged; "
        "restore it from a copy or recompute it",
        "2025-01-31T12:00:00.000000Z",
    )
    assert parse_line(examples[1]) == LedgerEntry(
        "/runs/a/odd|name.ckpt",
        "line one\nline two \\ end",
        "2025-01-31T12:00:01.500000Z",
    )
