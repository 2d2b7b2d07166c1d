"""Import layering: ckptkit never imports the app, the app only ckptkit's public
modules; the app's layers; a light CLI.

Inside the app, each top-level part has a rank and a module imports only its own
part or a lower rank (imports inside functions included)::

    __main__ -> cli -> (predict, training) -> stages -> everything else -> ckptkit

so ``training`` never imports ``predict`` (same rank, other part) and nothing but
the entry point imports ``cli``.
"""

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


#: Rank of each top-level part of the app; parts not named here rank 0 (models,
#: prepare, fasta, report, records, layout, device, config, errors, ...).
_APP_RANKS = {"__main__": 4, "cli": 3, "predict": 2, "training": 2, "stages": 1}


def _app_imports(package: Path, path: Path) -> set[str]:
    """The app modules ``path`` imports (relative imports resolved)."""
    # The package a module sits in: for ``stages/runner.py`` and for
    # ``stages/__init__.py`` alike, ``virnucpro_app.stages``.
    here = path.relative_to(package.parent).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else ()
            dotted = ".".join([*base, *([node.module] if node.module else [])])
            if dotted == package.name:  # ``from virnucpro_app import cli``
                names.update(f"{dotted}.{alias.name}" for alias in node.names)
            else:
                names.add(dotted)
    return {name for name in names if name.split(".")[0] == package.name}


def _part(dotted: str) -> str:
    """The top-level part of the app a module belongs to (``stages``, ``config``)."""
    return dotted.split(".")[1] if "." in dotted else ""


def _layer_violations(package: Path) -> list[str]:
    """``importer -> imported`` for every import that goes up or sideways."""
    parts = {path.stem for path in package.iterdir() if path.suffix == ".py"}
    parts |= {path.name for path in package.iterdir() if path.is_dir()}
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        source = relative.parts[0].removesuffix(".py")
        for imported in sorted(_app_imports(package, path)):
            target = _part(imported)
            if target == source or target not in parts:
                continue  # its own part, or a name of the package root
            source_rank = _APP_RANKS.get(source, 0)
            target_rank = _APP_RANKS.get(target, 0)
            if target_rank > source_rank or target_rank == source_rank > 0:
                problems.append(f"{relative.as_posix()} -> {imported}")
    return problems


def test_app_layers_only_import_downwards() -> None:
    assert _layer_violations(_SRC / "virnucpro_app") == []


def test_training_never_imports_predict_and_nothing_imports_cli() -> None:
    package = _SRC / "virnucpro_app"
    for path in package.rglob("*.py"):
        source = path.relative_to(package).parts[0].removesuffix(".py")
        imported = _app_imports(package, path)
        if source == "training":
            assert not any(".predict" in name for name in imported), path
        if source not in ("cli", "__main__"):
            assert not any(name.startswith("virnucpro_app.cli") for name in imported)


def test_layer_check_catches_upward_and_sideways_imports(tmp_path: Path) -> None:
    """The checker itself: imports inside functions and relative ones count."""
    package = tmp_path / "virnucpro_app"
    for folder in ("cli", "predict", "training", "stages", "models"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "layout.py").write_text("from virnucpro_app import __version__\n")
    (package / "models" / "enc.py").write_text(
        "def load():\n    from virnucpro_app.stages import runner\n"
    )
    (package / "stages" / "runner.py").write_text(
        "from virnucpro_app.models import enc\nfrom ..layout import x\n"
    )
    (package / "training" / "run.py").write_text("from ..predict import launch\n")
    (package / "predict" / "run.py").write_text(
        "from virnucpro_app.stages.runner import ShardRunner\n"
    )
    assert _layer_violations(package) == [
        "models/enc.py -> virnucpro_app.stages",
        "training/run.py -> virnucpro_app.predict",
    ]


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
