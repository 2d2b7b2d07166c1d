"""``MigrationRegistry``: the declared steps between versions of one checkpoint schema.

The steps must form one linear chain up to ``current`` (see ``_chain`` for why); a
registry that does not is refused, at registration where possible, else by
``check()``, which every migration runs first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar, cast

from ckptkit.errors import MigrationError, UnsupportedVersionError
from ckptkit.migrations._chain import (
    Migration,
    ends,
    parse_step_version,
    registration_problem,
    registry_problems,
    walk,
)
from ckptkit.migrations._run import run_chain

if TYPE_CHECKING:
    from collections.abc import Callable

    from ckptkit._file.versions import StateVersion
    from ckptkit.info import MigrationRecord
    from ckptkit.types import StateTree

StepFunction = TypeVar("StepFunction", bound="Callable[[StateTree], StateTree]")


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

    @classmethod
    def from_reference(cls, reference: str) -> MigrationRegistry:
        """Import a registry named as ``"package.module:attribute"``.

        This imports (runs) that module: name only your own code.

        Args:
            reference: Module path and attribute, separated by a colon.

        Returns:
            The registry.

        Raises:
            ValueError: A malformed reference, a module that cannot be imported
                (or raises while importing, e.g. a step refused at registration),
                a missing attribute, or an object that is not a registry. The
                message is one line and names the reference.
        """
        module_name, colon, attribute = reference.partition(":")
        if not colon or not module_name or not attribute:
            msg = f"registry {reference!r} must look like 'package.module:attribute'"
            raise ValueError(msg)
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            first = str(error).splitlines()[0] if str(error) else ""
            msg = (
                f"registry {reference!r}: importing {module_name} failed: "
                f"{type(error).__name__}: {first}"
            )
            raise ValueError(msg) from error
        found: object = module
        for part in attribute.split("."):
            if not hasattr(found, part):
                msg = f"registry {reference!r}: {module_name} has no {attribute!r}"
                raise ValueError(msg)
            found = getattr(found, part)
        if not isinstance(found, cls):
            msg = (
                f"registry {reference!r} is a {type(found).__name__}, "
                "not a ckptkit.MigrationRegistry"
            )
            raise ValueError(msg)  # noqa: TRY004 - a bad value given by a person
        return found

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
        version = self._current_version()
        return None if version is None else version.text

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
