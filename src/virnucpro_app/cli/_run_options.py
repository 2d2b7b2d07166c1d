"""What the long-running commands (predict, train) share: logging, demo cache."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from virnucpro_app.config import ENV_DEMO_CACHE


def demo_cache_dir() -> Path:
    """Where ``--demo`` keeps its models (``$VIRNUCPRO_DEMO_CACHE`` or ~/.cache)."""
    configured = os.environ.get(ENV_DEMO_CACHE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "virnucpro-app" / "demo-models"


def _log_warning(  # noqa: PLR0917 - the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    del category, filename, lineno, file, line
    logging.getLogger("virnucpro_app").warning("%s", message)


def setup_logging(*, quiet: bool, verbose: bool, log_file: Path | None) -> None:
    """Log to stderr (and ``log_file``) at the level ``--quiet``/``--verbose`` pick."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    # Demo-model and out-of-memory warnings: one log line each, no source dump.
    warnings.showwarning = _log_warning
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
