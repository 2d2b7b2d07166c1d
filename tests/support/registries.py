"""Random migration registries described as data, and states for them.

A ``RegistrySpec`` is a chain of versions with a list of operations per step
(rename, add, drop, transform) on the ``fields`` dict of a state; ``build()``
turns it into a real ``ckptkit.MigrationRegistry``. States carry a ``payload``
that no step ever touches, to check preservation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import strategies as st

import ckptkit
from ckptkit.testing import tensors

FIELD_KEYS = ("a", "b", "c", "d", "e")
OP_KINDS = ("rename", "add", "drop", "transform")
TRANSFORMS = ("double", "half", "flat", "unsqueeze")
REAL_DTYPES = (torch.bool, torch.int64, torch.float32, torch.float64)


@dataclass(frozen=True)
class Op:
    """One change to ``state["fields"]``."""

    kind: str
    key: str
    arg: str  # rename: new key; add: value seed; transform: how

    def apply(self, fields: dict[str, Any]) -> None:
        if self.kind == "rename" and self.key in fields:
            fields[self.arg] = fields.pop(self.key)
        elif self.kind == "add":
            seed = int(self.arg)
            fields[self.key] = torch.arange(seed + 1, dtype=torch.float32) * seed
        elif self.kind == "drop":
            fields.pop(self.key, None)
        elif self.kind == "transform" and self.key in fields:
            fields[self.key] = _transform(fields[self.key], self.arg)


def _transform(value: Any, how: str) -> Any:
    if not isinstance(value, torch.Tensor):
        return value + 1 if isinstance(value, int) else value
    if how == "double":
        return value * 2
    if how == "half":
        return value.to(torch.float16)
    if how == "flat":
        return value.reshape(-1)
    return value.unsqueeze(0)


class StepFailedError(RuntimeError):
    """Raised by the step a test makes fail on purpose."""


@dataclass(frozen=True)
class RegistrySpec:
    """A chain ``versions[0] -> versions[1] -> ...`` with the ops of each step."""

    versions: tuple[str, ...]
    ops: tuple[tuple[Op, ...], ...]
    styles: tuple[bool, ...]  # per step: True changes the given copy, False builds new

    @property
    def current(self) -> str:
        return self.versions[-1]

    def step_function(self, index: int, *, fail: bool = False) -> Any:
        ops, in_place = self.ops[index], self.styles[index]

        def step(state: dict[str, Any]) -> dict[str, Any]:
            if fail:
                msg = f"step {index} fails on purpose"
                raise StepFailedError(msg)
            if in_place:
                for op in ops:
                    op.apply(state["fields"])
                return state
            fields = dict(state["fields"])
            for op in ops:
                op.apply(fields)
            return {**state, "fields": fields}

        return step

    def edges(self) -> list[tuple[str, str]]:
        return list(zip(self.versions, self.versions[1:], strict=False))

    def build(
        self, *, fail_at: int | None = None, order: list[int] | None = None
    ) -> ckptkit.MigrationRegistry:
        registry = ckptkit.MigrationRegistry(schema="random-trainer")
        edges = self.edges()
        for index in order if order is not None else range(len(edges)):
            source, target = edges[index]
            registry.register(
                source,
                target,
                self.step_function(index, fail=index == fail_at),
                name=f"step{index}",
            )
        return registry

    def touched_keys(self) -> set[str]:
        return {k for ops in self.ops for op in ops for k in (op.key, op.arg)}


def _version_text(pair: tuple[int, int]) -> str:
    return f"{pair[0] + 1}.{pair[1]}"


@st.composite
def registry_specs(draw: st.DrawFn, *, min_steps: int = 1) -> RegistrySpec:
    """A random sound registry: 1-4 steps, maybe entered from legacy 0.x."""
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 11)),
            min_size=min_steps + 1,
            max_size=5,
            unique=True,
        )
    )
    versions = [_version_text(p) for p in sorted(pairs)]
    if draw(st.booleans()):
        versions[0] = "0.x"
    op = st.builds(
        Op,
        kind=st.sampled_from(OP_KINDS),
        key=st.sampled_from(FIELD_KEYS),
        arg=st.one_of(
            st.sampled_from(FIELD_KEYS), st.sampled_from(TRANSFORMS), st.just("3")
        ),
    ).map(_fix_arg)
    steps = len(versions) - 1
    ops = draw(
        st.lists(st.lists(op, max_size=3).map(tuple), min_size=steps, max_size=steps)
    )
    styles = draw(st.lists(st.booleans(), min_size=steps, max_size=steps))
    return RegistrySpec(tuple(versions), tuple(ops), tuple(styles))


def _fix_arg(op: Op) -> Op:
    """Make ``arg`` fit the kind (a key to rename to, a seed, a transform)."""
    if op.kind == "rename":
        return Op(op.kind, op.key, op.arg if op.arg in FIELD_KEYS else "e")
    if op.kind == "add":
        return Op(op.kind, op.key, str(len(op.arg) % 4))
    if op.kind == "transform":
        return Op(op.kind, op.key, op.arg if op.arg in TRANSFORMS else "double")
    return Op(op.kind, op.key, op.key)


def field_values() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(-5, 5), tensors(dtypes=REAL_DTYPES, max_dims=2))


def legacy_payloads() -> st.SearchStrategy[Any]:
    """Payloads a weights-only ``torch.load`` reads back: no bytes, no numpy."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**62), 2**62),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        tensors(dtypes=REAL_DTYPES),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=4), children, max_size=3),
        ),
        max_leaves=6,
    )


def states_for(*, legacy: bool) -> st.SearchStrategy[dict[str, Any]]:
    """States with ``fields`` the steps change and a ``payload`` they never touch."""
    from ckptkit.testing import states

    return st.fixed_dictionaries(
        {
            "fields": st.dictionaries(
                st.sampled_from(FIELD_KEYS), field_values(), max_size=4
            ),
            "payload": legacy_payloads() if legacy else states(max_leaves=8),
        }
    )
