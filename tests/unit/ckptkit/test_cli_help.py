"""``ckptkit --help`` lists the commands in their documented order."""

from __future__ import annotations

import re
import subprocess
import sys


def test_help_lists_commands_in_the_order_of_cli_md() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ckptkit", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    listed = re.findall(r"^  (\w+)  ", done.stdout, re.MULTILINE)
    assert listed == [
        "validate",
        "inspect",
        "ledger",
        "cleanup",
        "consolidate",
        "migrate",
    ]
