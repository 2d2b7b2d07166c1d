"""One migration step, the rules a registry's steps must obey, and the walk along them.

A registry is sound when its steps form one linear chain: the registered versions
(every step's ends, plus ``current``) sorted ``v0 < v1 < ... < vn = current``, with
exactly one step ``vi -> vi+1`` for each ``i``. That single rule rules out every
ambiguity at once: a second step out of a version (two chains), a step that goes
backwards (the only way to build a cycle), a duplicate, a step that skips a
registered version (which could then never be reached from below), and a gap.

Registration refuses what no later step could repair; ``check`` also reports the
gaps that remain once every step is registered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ckptkit._file.versions import StateVersion, parse_version
from ckptkit.errors import MigrationError, MissingMigrationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ckptkit.types import StateTree


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


def ends(step: Migration) -> tuple[StateVersion, StateVersion]:
    """The parsed versions a step starts from and leads to."""
    return parse_version(step.from_version), parse_version(step.to_version)


def _label(step: Migration) -> str:
    return f"{step.from_version} -> {step.to_version} ({step.name})"


def _chain_text(versions: Iterable[StateVersion]) -> str:
    return " -> ".join(v.text for v in versions)


def follow(
    steps: Mapping[StateVersion, Migration], start: StateVersion, stop: StateVersion
) -> list[StateVersion] | None:
    """Versions visited from ``start`` until ``stop`` (inclusive), or None."""
    visited = [start]
    while visited[-1] != stop:
        step = steps.get(visited[-1])
        if step is None:
            return None
        visited.append(ends(step)[1])
        if visited[-1] > stop:
            return None
    return visited


def registered_versions(
    steps: Mapping[StateVersion, Migration], current: StateVersion | None
) -> list[StateVersion]:
    """Every version a step names, plus ``current``, sorted."""
    versions = {v for step in steps.values() for v in ends(step)}
    if current is not None:
        versions.add(current)
    return sorted(versions)


def _backwards_problem(
    steps: Mapping[StateVersion, Migration], new: Migration
) -> str | None:
    source, target = ends(new)
    if target == source:
        return (
            f"step {_label(new)} goes nowhere: a step to its own version is a cycle; "
            "a step must lead to a higher version"
        )
    if target > source:
        return None
    loop = follow(steps, target, source)
    if loop is not None:
        return (
            f"step {_label(new)} goes backwards and would close the cycle "
            f"{_chain_text([*loop, target])}; a step must lead to a higher version"
        )
    return f"step {_label(new)} goes backwards: a step must lead to a higher version"


def _second_step_problem(
    steps: Mapping[StateVersion, Migration], new: Migration
) -> str | None:
    source, target = ends(new)
    old = steps.get(source)
    if old is None:
        return None
    old_target = ends(old)[1]
    if old_target == target:
        return (
            f"duplicate step {new.from_version} -> {new.to_version}: already "
            f"registered as {old.name}; each step is declared once"
        )
    low, high = sorted((old_target, target))
    rest = follow(steps, low, high)
    if rest is not None:
        return (
            f"ambiguous registry: two chains from {source} to {high}: "
            f"{_chain_text([source, *rest])} and {source} -> {high} ({new.name}); "
            f"each version has one next step"
        )
    return (
        f"ambiguous registry: {source} already leads to {old_target} ({old.name}); "
        f"a second step {_label(new)} would fork the chain; "
        "each version has one next step"
    )


def _skip_problem(
    steps: Mapping[StateVersion, Migration],
    new: Migration,
    current: StateVersion | None,
) -> str | None:
    source, target = ends(new)
    inside = [v for v in registered_versions(steps, current) if source < v < target]
    if inside:
        names = ", ".join(v.text for v in inside)
        return (
            f"step {_label(new)} skips registered version(s) {names}: they could "
            f"never be reached from {source}; chain the steps through them instead"
        )
    for old in steps.values():
        low, high = ends(old)
        for version in (source, target):
            if low < version < high:
                return (
                    f"step {_label(new)}: {version} lies inside step {_label(old)}, "
                    f"so it could never be reached from {low}; split that step at "
                    f"{version} instead"
                )
    return None


def registration_problem(
    steps: Mapping[StateVersion, Migration],
    new: Migration,
    current: StateVersion | None,
) -> str | None:
    """Why ``new`` can never belong to a sound registry, or None."""
    problem = _backwards_problem(steps, new) or _second_step_problem(steps, new)
    if problem:
        return problem
    target = ends(new)[1]
    if current is not None and target > current:
        return (
            f"step {_label(new)} goes beyond the registry's current version "
            f"{current}; raise current or drop the step"
        )
    return _skip_problem(steps, new, current)


def registry_problems(
    steps: Mapping[StateVersion, Migration], current: StateVersion | None
) -> list[str]:
    """Every way the registry differs from one complete chain up to ``current``."""
    if current is None:
        return ["the registry has no migrations and no current version"]
    versions = registered_versions(steps, current)
    problems = []
    for low, high in itertools.pairwise(versions):
        step = steps.get(low)
        if step is None:
            problems.append(
                f"gap: no step leaves {low}, so {high} and every version above it "
                f"can never be reached from {low} or below; register a step "
                f"{low} -> {high}"
            )
        elif ends(step)[1] != high:
            problems.append(
                f"step {_label(step)} does not lead to the next registered "
                f"version {high}"
            )
    top = steps.get(versions[-1])
    if top is not None:
        problems.append(f"step {_label(top)} goes beyond current version {current}")
    return problems


def walk(
    steps: Mapping[StateVersion, Migration],
    start: StateVersion,
    stop: StateVersion,
    schema: str,
) -> list[Migration]:
    """The steps leading from ``start`` to ``stop`` on a sound registry.

    Raises:
        MissingMigrationError: No chain leads there.
    """
    if stop < start:
        raise MissingMigrationError(
            f"cannot migrate {schema} from {start} down to {stop}: "
            "migrations only go forward"
        )
    visited = follow(steps, start, stop)
    if visited is None:
        known = ", ".join(v.text for v in registered_versions(steps, None))
        raise MissingMigrationError(
            f"no chain of migrations of {schema} leads from {start} to {stop} "
            f"(registered versions: {known or 'none'})"
        )
    return [steps[version] for version in visited[:-1]]


def parse_step_version(text: str, role: str) -> StateVersion:
    """Parse a version named by a registration, as a MigrationError if invalid."""
    try:
        return parse_version(text)
    except (ValueError, TypeError) as error:
        raise MigrationError(
            f"{role} {text!r} is not a version (expected e.g. '1.0', or '0.x')"
        ) from error
