"""Import layering: ckptkit never imports the app; the CLI stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[2] / "src"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_ckptkit_never_imports_the_app() -> None:
    offenders = [
        str(path)
        for path in (_SRC / "ckptkit").rglob("*.py")
        if any(name.split(".")[0] == "virnucpro_app" for name in _imports(path))
    ]
    assert offenders == []


def test_ckptkit_package_does_not_import_typer() -> None:
    code = "import sys, ckptkit; print('typer' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_app_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from virnucpro_app.cli import app, _mount_commands\n"
        "_mount_commands()\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_importing_ckptkit_does_not_import_torch() -> None:
    code = "import sys, ckptkit; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_app_usage_errors_exit_1_not_the_partial_code() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "virnucpro_app", "predict", "--no-such-flag"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: No such option: --no-such-flag")
