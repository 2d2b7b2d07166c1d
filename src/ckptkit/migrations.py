"""Migration registries: declared steps between versions of a checkpoint schema.

A training project declares how each version of its checkpoint state becomes the
next; ckptkit finds the one chain between two versions, applies it in memory on
``load(..., registry=...)``, or rewrites files with ``migrate``. The steps must
form one linear chain up to ``current`` (see ``_migration_chain`` for why); a
registry that does not is refused, at registration where possible, else by
``check()``, which every migration runs first. docs/migrations.md is the guide.

Example:
    >>> import ckptkit
    >>> registry = ckptkit.MigrationRegistry(schema="demo", current="1.1")
    >>> @registry.migration("1.0", "1.1")
    ... def add_epoch(state):
    ...     '''1.0 -> 1.1: states record the epoch (0 for older ones).'''
    ...     state["epoch"] = 0
    ...     return state
    >>> new_state, applied = registry.migrate({"step": 5}, "1.0")
    >>> new_state, [record.to_version for record in applied]
    ({'step': 5, 'epoch': 0}, ['1.1'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from ckptkit._load import inspect, load
from ckptkit._migrate_file import (
    plan_output,
    planned_backup,
    refuse_overwrite,
    write_migrated,
)
from ckptkit._migration_chain import (
    ends,
    parse_step_version,
    registration_problem,
    registry_problems,
    walk,
)
from ckptkit._migration_run import refuse_incompatible, run_chain
from ckptkit._state_diff import StateChange, diff_states
from ckptkit.errors import MigrationError, UnsupportedVersionError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ckptkit._versions import StateVersion
    from ckptkit.info import MigrationRecord
    from ckptkit.types import PathLike, StateTree

StepFunction = TypeVar("StepFunction", bound="Callable[[StateTree], StateTree]")


@dataclass(frozen=True)
class Migration:
    """One declared step: ``func`` turns a state at ``from_version`` into the next.

    Attributes:
        from_version: Version of the states the step accepts (``"0.x"``: legacy).
        to_version: Version of the states it returns.
        func: The step. It receives a copy of the state's containers that it may
            change, must not change tensors in place, and returns the new state.
        name: Recorded in each migrated checkpoint's history (by default the
            function's module and qualified name).
    """

    from_version: str
    to_version: str
    func: Callable[[StateTree], StateTree]
    name: str


@dataclass(frozen=True)
class MigrationResult:
    """What ``ckptkit.migrate`` did (or, with ``dry_run``, would do) to one file.

    Attributes:
        path: The checkpoint that was read.
        output: The migrated checkpoint (``path`` itself when migrated in place; a
            derived name next to a legacy file when no output was given).
        backup: Where the original was kept (None without a backup).
        from_version: Version of the file that was read.
        to_version: Version of the migrated state.
        chain: The steps, in order (empty when the file was already there).
        applied: History records of the steps run (written to ``output``'s
            header, after the file's earlier history).
        changes: Keys added, removed, or changed in type, dtype, shape or value.
        dry_run: True when nothing was written.
        written: True when ``output`` (and ``backup``) were written.
    """

    path: Path
    output: Path
    backup: Path | None
    from_version: str
    to_version: str
    chain: tuple[Migration, ...]
    applied: tuple[MigrationRecord, ...]
    changes: tuple[StateChange, ...]
    dry_run: bool
    written: bool


def _qualified_name(func: Callable[..., object]) -> str:
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}"


class MigrationRegistry:
    """The declared migrations of one checkpoint schema.

    Args:
        schema: Name of the state's format, as given to ``ckptkit.save(...,
            schema=...)``; checkpoints of another schema are refused.
        current: The version this code writes and reads; defaults to the highest
            version a step leads to. Newer checkpoints are refused.
        accept_unnamed: Also take ckptkit files saved without a schema (they are
            written back with this schema when migrated on disk).

    Raises:
        MigrationError: ``current`` is not a version, or is the legacy ``"0.x"``.
        ValueError: An empty schema name.
    """

    def __init__(
        self, schema: str, current: str | None = None, *, accept_unnamed: bool = False
    ) -> None:
        if not schema:
            msg = "schema must be a non-empty name, e.g. 'my-trainer'"
            raise ValueError(msg)
        self._schema = schema
        self._current: StateVersion | None = None
        if current is not None:
            self._current = parse_step_version(current, "current version")
            if self._current.is_legacy:
                msg = f"{schema}: current version cannot be the legacy '0.x'"
                raise MigrationError(msg)
        self._accept_unnamed = accept_unnamed
        self._steps: dict[StateVersion, Migration] = {}

    def __repr__(self) -> str:
        return (
            f"MigrationRegistry(schema={self._schema!r}, "
            f"current={self._current_text()!r}, steps={len(self._steps)})"
        )

    @property
    def schema(self) -> str:
        """Name of the checkpoint schema this registry migrates."""
        return self._schema

    @property
    def accept_unnamed(self) -> bool:
        """Whether ckptkit files saved without a schema are taken as this one."""
        return self._accept_unnamed

    @property
    def current(self) -> str:
        """The version states are migrated to by default.

        Raises:
            MigrationError: Neither given nor implied by any step.
        """
        text = self._current_text()
        if text is None:
            msg = f"{self._schema}: the registry has no migrations and no current"
            raise MigrationError(msg)
        return text

    @property
    def steps(self) -> tuple[Migration, ...]:
        """Every registered step, oldest version first."""
        return tuple(self._steps[v] for v in sorted(self._steps))

    def _current_version(self) -> StateVersion | None:
        if self._current is not None or not self._steps:
            return self._current
        return max(ends(step)[1] for step in self._steps.values())

    def _current_text(self) -> str | None:
        if self._current is not None or not self._steps:
            return None if self._current is None else self._current.text
        return max((ends(s)[1], s.to_version) for s in self._steps.values())[1]

    def migration(
        self, from_version: str, to_version: str, *, name: str | None = None
    ) -> Callable[[StepFunction], StepFunction]:
        """Decorator declaring a step from ``from_version`` to ``to_version``.

        The decorated function is returned unchanged (so it stays testable).

        Args:
            from_version: Version the step accepts (``"0.x"`` for legacy files).
            to_version: Version it produces (higher than ``from_version``).
            name: Name recorded in the history (default: module.qualname).

        Returns:
            The decorator.

        Raises:
            MigrationError: The step would break the registry (see ``register``).

        Example:
            >>> import ckptkit
            >>> registry = ckptkit.MigrationRegistry(schema="demo")
            >>> @registry.migration("0.x", "1.0")
            ... def from_legacy(state):
            ...     return {"model": state}
            >>> [step.to_version for step in registry.path("0.x", "1.0")]
            ['1.0']
        """

        def declare(func: StepFunction) -> StepFunction:
            self.register(from_version, to_version, func, name=name)
            return func

        return declare

    def register(
        self,
        from_version: str,
        to_version: str,
        func: Callable[[StateTree], StateTree],
        *,
        name: str | None = None,
    ) -> Migration:
        """Declare a step (the decorator's engine, for steps built as data).

        Args:
            from_version: Version the step accepts (``"0.x"`` for legacy files).
            to_version: Version it produces.
            func: The step function.
            name: Name recorded in the history (default: module.qualname).

        Returns:
            The registered step.

        Raises:
            MigrationError: An invalid version, or a step no sound registry can
                hold: a duplicate, a backwards step or cycle, a second step out of
                a version (two chains), a step beyond ``current``, or one that
                skips a registered version. The message names the versions.
            TypeError: ``func`` is not callable.
        """
        source = parse_step_version(from_version, "from_version")
        parse_step_version(to_version, "to_version")
        if not callable(cast("object", func)):  # untyped callers pass anything
            msg = f"migration {from_version} -> {to_version}: {func!r} is not callable"
            raise TypeError(msg)
        step = Migration(from_version, to_version, func, name or _qualified_name(func))
        problem = registration_problem(self._steps, step, self._current)
        if problem is not None:
            raise MigrationError(f"{self._schema}: {problem}")
        self._steps[source] = step
        return step

    def check(self) -> None:
        """Verify that the steps form one complete chain up to ``current``.

        Raises:
            MigrationError: Every problem found (gaps, a missing current), each
                naming its versions.
        """
        problems = registry_problems(self._steps, self._current_version())
        if problems:
            msg = f"migration registry {self._schema!r} is broken: " + "; ".join(
                problems
            )
            raise MigrationError(msg)

    def path(self, from_version: str, to_version: str | None = None) -> list[Migration]:
        """The chain of steps that migrates ``from_version`` to ``to_version``.

        Args:
            from_version: Version of the state (``"0.x"`` for legacy).
            to_version: Target version; defaults to ``current``.

        Returns:
            The steps in order (empty when the versions are equal).

        Raises:
            MigrationError: The registry is broken (``check``).
            MissingMigrationError: No chain leads there.
            UnsupportedVersionError: ``from_version`` is newer than ``current``.
        """
        self.check()
        current = parse_step_version(self.current, "current version")
        start = parse_step_version(from_version, "from_version")
        stop = current if to_version is None else parse_step_version(to_version, "to")
        if start > current:
            raise UnsupportedVersionError(
                None,
                f"state version {from_version} was written by a newer version of "
                f"{self._schema}; upgrade to >= {from_version} (this code reads "
                f"{self._schema} up to {current})",
            )
        return walk(self._steps, start, stop, self._schema)

    def migrate(
        self, state: StateTree, from_version: str, to_version: str | None = None
    ) -> tuple[StateTree, tuple[MigrationRecord, ...]]:
        """Migrate a state in memory; the caller's state is never changed.

        Args:
            state: The state, at ``from_version``.
            from_version: Its version.
            to_version: Target version; defaults to ``current``.

        Returns:
            The migrated state and one history record per step run. With no step
            to run, ``state`` itself and an empty tuple.

        Raises:
            MigrationError: As ``path``; or a step raised, returned None or changed
                a tensor in place (the message names the step and its version).
            UnsupportedVersionError: ``from_version`` is newer than ``current``.
        """
        return run_chain(state, self.path(from_version, to_version))


def migrate(  # noqa: PLR0913 - the documented public signature
    path: PathLike,
    registry: MigrationRegistry,
    to_version: str | None = None,
    *,
    output: PathLike | None = None,
    backup: bool = True,
    dry_run: bool = False,
) -> MigrationResult:
    """Upgrade a checkpoint file on disk with ``registry``'s chain.

    The file is read and fully verified, every step runs in memory, and only then
    is the result written atomically (same durability as ``save``) with the steps
    appended to the header's history. Migrated in place with ``backup``, the
    original is kept next to it as ``NAME.v<old version>.bak``. Legacy 0.x files
    are never changed: the result goes to ``output``, or to ``STEM.v<version>.ckpt``
    next to them. A failing step leaves every file as it was.

    Args:
        path: The checkpoint to upgrade.
        registry: The schema's migrations.
        to_version: Target version; defaults to ``registry.current``.
        output: Write the result there instead of in place (must not exist).
        backup: Keep the original when migrating in place.
        dry_run: Run the steps in memory, report the chain and changes, write
            nothing.

    Returns:
        What was (or would be) done; ``result.output`` names the migrated file.

    Raises:
        CheckpointError: The file is missing, damaged or of another schema
            (``SchemaMismatchError``), or newer than ``current``
            (``UnsupportedVersionError``).
        MigrationError: No chain, a broken registry, or a failing step.
        FileExistsError: ``output`` or the backup name already exists.

    Example:
        >>> import ckptkit, tempfile, pathlib
        >>> registry = ckptkit.MigrationRegistry(schema="demo")
        >>> @registry.migration("1.0", "1.1")
        ... def add_epoch(state):
        ...     return {**state, "epoch": 0}
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> _ = ckptkit.save(target, {"step": 5}, schema="demo")
        >>> result = ckptkit.migrate(target, registry)
        >>> ckptkit.inspect(target).version, result.backup.name
        ('1.1', 'a.ckpt.v1.0.bak')
    """
    source = Path(path)
    header = inspect(source)
    if not header.legacy:  # refuse before reading any tensor bytes
        refuse_incompatible(header, registry, to_version)
    final = registry.current if to_version is None else to_version
    if parse_step_version(final, "to_version").is_legacy:
        msg = "cannot migrate to the legacy version 0.x: files are written at 1.0 or up"
        raise MigrationError(msg, source)
    target = plan_output(header, output, final)
    checkpoint = load(source, verify="full")
    info = checkpoint.info
    chain = refuse_incompatible(info, registry, to_version)
    backup_path = (
        planned_backup(source, info.version)
        if backup and target == source and chain
        else None
    )
    refuse_overwrite(source, target, backup_path)
    state, applied = run_chain(checkpoint.state, chain, path=source)
    written = not dry_run and (bool(chain) or target != source)
    if written:
        write_migrated(
            info,
            target,
            state,
            version=chain[-1].to_version if chain else info.version,
            schema=registry.schema,
            history=(*info.history, *applied),
            backup=backup_path,
        )
    return MigrationResult(
        path=source,
        output=target,
        backup=backup_path,
        from_version=info.version,
        to_version=chain[-1].to_version if chain else info.version,
        chain=tuple(chain),
        applied=applied,
        changes=diff_states(checkpoint.state, state),
        dry_run=dry_run,
        written=written,
    )


__all__ = [
    "Migration",
    "MigrationRegistry",
    "MigrationResult",
    "StateChange",
    "migrate",
]
