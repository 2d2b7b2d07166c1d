"""Issue 13 items 5 and 9: the types trainers hold come back exactly, or are
refused with the path inside the state and what to store instead."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import fractions
import pathlib
import sys
import zoneinfo
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ckptkit

if TYPE_CHECKING:
    from collections.abc import Iterator


class Phase(enum.Enum):
    """A plain enum at module level: found by name on load."""

    WARMUP = "warmup"
    TRAIN = "train"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Split(enum.StrEnum):
    TRAIN = "train"


Pair = collections.namedtuple("Pair", "first second")  # noqa: PYI024 - the old kind


class Window(NamedTuple):
    start: int
    stop: float = 1.5


def _roundtrip(tmp_path: Path, state: Any, **load: Any) -> Any:
    path = tmp_path / "state.ckpt"
    ckptkit.save(path, state)
    return ckptkit.load(path, verify="full", **load).state


def test_generator_comes_back_with_its_state_and_device(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1234)
    torch.rand(3, generator=generator)  # advance it past its seed
    loaded = _roundtrip(tmp_path, {"sampler": generator, "again": generator})
    assert type(loaded["sampler"]) is torch.Generator
    assert loaded["again"] is loaded["sampler"]
    assert loaded["sampler"].device == generator.device
    assert loaded["sampler"].initial_seed() == 1234
    assert torch.equal(
        torch.rand(5, generator=loaded["sampler"]), torch.rand(5, generator=generator)
    )


def test_generator_state_stays_on_the_host_with_map_location(tmp_path: Path) -> None:
    loaded = _roundtrip(tmp_path, {"g": torch.Generator()}, map_location="meta")
    assert loaded["g"].device.type == "cpu"


EXACT_VALUES: dict[str, Any] = {
    "device": torch.device("cuda:1"),
    "cpu": torch.device("cpu"),
    "dtype": torch.bfloat16,
    "size": torch.Size([2, 0, 3]),
    "path": pathlib.Path("/runs/exp1/last.ckpt"),
    "relative": pathlib.PurePosixPath("a/b"),
    "windows": pathlib.PureWindowsPath(r"C:\data\train.fa"),
    "aware": dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
    "naive": dt.datetime(2021, 11, 7, 1, 30, fold=1),  # noqa: DTZ001 - kept naive
    "zoned": dt.datetime(2024, 3, 31, 2, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
    "offset": dt.datetime(
        2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")
    ),
    "date": dt.date(1, 1, 1),
    "time": dt.time(23, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(minutes=90))),
    "timedelta": dt.timedelta(days=-2, seconds=3, microseconds=4),
    "timezone": dt.UTC,
    "enum": Phase.TRAIN,
    "int_enum": Level.HIGH,
    "str_enum": Split.TRAIN,
    "set": {1, "a", (2, 3), None},
    "frozenset": frozenset({1.5, "b"}),
    "namedtuple": Pair(1, (2, "x")),
    "typed_namedtuple": Window(3),
    "tuple_keys": {(1, "train"): 0.5, (2, "val"): 0.25},
    "enum_keys": {Phase.WARMUP: 1, Level.LOW: 2},
    "complex": complex(-0.0, float("inf")),
    "huge_int": -(7**5000),
    "beyond_uint64": 2**64,
    "int64_min": -(2**63),
}


@pytest.mark.parametrize("name", sorted(EXACT_VALUES))
def test_value_comes_back_exactly_with_its_type(tmp_path: Path, name: str) -> None:
    value = EXACT_VALUES[name]
    loaded = _roundtrip(tmp_path, {"x": value, "nested": [value]})
    for got in (loaded["x"], loaded["nested"][0]):
        assert type(got) is type(value)
        assert got == value or (name == "complex" and repr(got) == repr(value))
    if isinstance(value, dt.datetime):
        assert (loaded["x"].fold, loaded["x"].tzinfo) == (value.fold, value.tzinfo)
        assert type(loaded["x"].tzinfo) is type(value.tzinfo)


def test_timezone_name_and_zone_key_are_kept(tmp_path: Path) -> None:
    loaded = _roundtrip(tmp_path, {k: EXACT_VALUES[k] for k in ("offset", "zoned")})
    assert loaded["offset"].tzname() == "BRT"
    assert loaded["zoned"].tzinfo.key == "Europe/Berlin"


def test_namedtuple_items_hold_tensors(tmp_path: Path) -> None:
    weight = torch.arange(4.0)
    loaded = _roundtrip(tmp_path, {"p": Pair(weight, weight[1:])})
    assert type(loaded["p"]) is Pair
    assert torch.equal(loaded["p"].second, weight[1:])
    assert (
        loaded["p"].first.untyped_storage().data_ptr()
        == loaded["p"].second.untyped_storage().data_ptr()
    )


def _enum_in(module_name: str) -> type[enum.Enum]:
    module = type(sys)(module_name)
    sys.modules[module_name] = module
    color = enum.Enum("Color", "RED GREEN", module=module_name)
    module.Color = color  # type: ignore[attr-defined]
    return color


def test_enum_of_a_module_not_imported_is_incompatible_not_imported(
    tmp_path: Path,
) -> None:
    """load never imports a module a file names; validation needs no import."""
    color = _enum_in("ckptkit_test_colors")
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"c": color.GREEN})
    del sys.modules["ckptkit_test_colors"]
    with pytest.raises(
        ckptkit.CheckpointIncompatibleError, match="import ckptkit_test_colors"
    ):
        ckptkit.load(path)
    assert "ckptkit_test_colors" not in sys.modules
    assert ckptkit.validate(path).ok
    sys.modules["ckptkit_test_colors"] = type(sys)("ckptkit_test_colors")
    sys.modules["ckptkit_test_colors"].Color = color  # type: ignore[attr-defined]
    try:
        assert ckptkit.load(path).state["c"] is color.GREEN
    finally:
        del sys.modules["ckptkit_test_colors"]


@dataclasses.dataclass
class Config:
    lr: float
    layers: list[int]


def _local_enum() -> enum.Enum:
    class Hidden(enum.Enum):
        A = 1

    return Hidden.A


def _local_namedtuple() -> tuple[int]:
    return collections.namedtuple("Local", "a")(1)  # noqa: PYI024


REFUSED: dict[str, tuple[Any, str]] = {
    "dataclass": (Config(0.1, [2]), "dataclasses.asdict(value)"),
    "module": (torch.nn.Linear(2, 2), "value.state_dict()"),
    "optimizer": (
        torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1),
        "value.state_dict()",
    ),
    "bytearray": (bytearray(b"ab"), "bytes(value)"),
    "memoryview": (memoryview(b"ab"), "bytes(value)"),
    "defaultdict": (collections.defaultdict(list), "dict(value)"),
    "counter": (collections.Counter("aab"), "dict(value)"),
    "list_subclass": (type("Steps", (list,), {})([1]), "list(value)"),
    "function": (len, "data, not code"),
    "local_enum": (_local_enum(), "store its .value"),
    "local_namedtuple": (_local_namedtuple(), "value._asdict()"),
    "tzinfo": (
        dt.datetime(2024, 1, 1, tzinfo=type("TZ", (dt.tzinfo,), {})()),
        "astimezone",
    ),
    "object": (object(), "register_leaf_type"),
    "sparse": (torch.ones(2).to_sparse(), "value.to_dense()"),
    "nested_tensor": (
        torch.nested.as_nested_tensor(
            [torch.ones(2), torch.ones(3)], layout=torch.jagged
        ),
        "value.unbind()",
    ),
    "meta_tensor": (torch.empty(2, device="meta"), "shape and dtype"),
    "subclass": (
        torch.ones(2).as_subclass(type("Tagged", (torch.Tensor,), {})),
        "value.as_subclass(torch.Tensor)",
    ),
    "unsupported_dtype": (torch.empty(2, dtype=torch.bits8), "value.to(...)"),
    "numpy_strings": (np.array(["a", "b"]), "value.tolist()"),
    "numpy_big_endian": (np.arange(3, dtype=">i4"), "newbyteorder"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusal_names_the_path_and_what_to_store(tmp_path: Path, name: str) -> None:
    value, fix = REFUSED[name]
    state = {"run": {"history": [0, value]}}
    with pytest.raises(ckptkit.SerializationError) as caught:
        ckptkit.save(tmp_path / "a.ckpt", state)
    message = str(caught.value)
    assert message.startswith("state['run']['history'][1] "), message
    assert fix in message
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def fraction_type() -> Iterator[None]:
    ckptkit.register_leaf_type(
        fractions.Fraction,
        name="test.Fraction",
        encode=lambda f: (f.numerator, f.denominator),
        decode=lambda pair: fractions.Fraction(*pair),
    )
    yield
    ckptkit.unregister_leaf_type(fractions.Fraction)


@pytest.mark.usefixtures("fraction_type")
@given(values=st.lists(st.fractions(max_denominator=10**30), min_size=1, max_size=5))
def test_registered_type_round_trips_exactly(values: list[fractions.Fraction]) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        state = {"fractions": values, "keyed": {values[0]: "first"}}
        loaded = _roundtrip(Path(folder), state)
    assert loaded == state
    assert all(type(v) is fractions.Fraction for v in loaded["fractions"])


@dataclasses.dataclass
class WithTensor:
    weight: torch.Tensor
    name: str


def test_registered_type_may_hold_tensors_and_validate_needs_no_converter(
    tmp_path: Path,
) -> None:
    ckptkit.register_leaf_type(
        WithTensor,
        name="test.WithTensor",
        # not dataclasses.asdict: it deep-copies, so the tensor would be a copy
        encode=lambda value: {"weight": value.weight, "name": value.name},
        decode=lambda fields: WithTensor(**fields),
    )
    path = tmp_path / "a.ckpt"
    weight = torch.arange(3.0)
    try:
        ckptkit.save(path, {"a": WithTensor(weight, "a"), "w": weight})
        loaded = ckptkit.load(path).state
    finally:
        ckptkit.unregister_leaf_type(WithTensor)
    assert type(loaded["a"]) is WithTensor
    assert loaded["a"].weight is loaded["w"]
    assert torch.equal(loaded["w"], weight)
    assert ckptkit.validate(path).ok  # nothing registered now: still intact
    with pytest.raises(
        ckptkit.CheckpointIncompatibleError, match=r"'test\.WithTensor'.*register"
    ):
        ckptkit.load(path)


def test_registration_refuses_builtin_types_and_taken_names() -> None:
    with pytest.raises(ValueError, match="stored by ckptkit itself"):
        ckptkit.register_leaf_type(dict, name="x", encode=dict, decode=dict)
    ckptkit.register_leaf_type(Config, name="test.Config", encode=str, decode=str)
    try:
        with pytest.raises(ValueError, match="already registered"):
            ckptkit.register_leaf_type(
                WithTensor, name="test.Config", encode=str, decode=str
            )
    finally:
        ckptkit.unregister_leaf_type(Config)
    with pytest.raises(TypeError, match="callable"):
        ckptkit.register_leaf_type(Config, name="c", encode=1, decode=str)  # type: ignore[arg-type]


def test_failing_converter_is_a_serialization_error_naming_the_path(
    tmp_path: Path,
) -> None:
    def broken(_value: object) -> object:
        msg = "no"
        raise RuntimeError(msg)

    ckptkit.register_leaf_type(Config, name="test.Config", encode=broken, decode=str)
    try:
        with pytest.raises(ckptkit.SerializationError, match=r"state\['c'\].*no"):
            ckptkit.save(tmp_path / "a.ckpt", {"c": Config(1.0, [])})
    finally:
        ckptkit.unregister_leaf_type(Config)


if TYPE_CHECKING:
    from pathlib import Path
