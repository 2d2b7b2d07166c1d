"""Import layering: ckptkit never imports the app, the app only ckptkit's public
modules; the CLI stays light."""

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


def _private_ckptkit_imports(path: Path) -> list[str]:
    """ckptkit modules with a leading underscore anywhere in their dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found.extend(
            name
            for name in names
            if name.split(".")[0] == "ckptkit"
            and any(part.startswith("_") for part in name.split(".")[1:])
        )
    return found


def test_app_imports_no_private_ckptkit_module() -> None:
    """ckptkit's public API is enough for its own app (``ckptkit._x`` is internal)."""
    offenders = [
        f"{path.relative_to(_SRC)}: {name}"
        for path in sorted((_SRC / "virnucpro_app").rglob("*.py"))
        for name in _private_ckptkit_imports(path)
    ]
    assert offenders == []


def test_private_import_check_sees_private_modules(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import ckptkit._file.fs\n"
        "from ckptkit._file.writer import write_checkpoint\n"
        "from ckptkit.migrations import _chain\n"
        "from ckptkit import legacy, save\n"
        "def late():\n    from ckptkit.manager._steps import StepFolder\n",
        encoding="utf-8",
    )
    assert _private_ckptkit_imports(sample) == [
        "ckptkit._file.fs",
        "ckptkit._file.writer",
        "ckptkit._file.writer.write_checkpoint",
        "ckptkit.migrations._chain",
        "ckptkit.manager._steps",
        "ckptkit.manager._steps.StepFolder",
    ]


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
