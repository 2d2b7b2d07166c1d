"""Your own leaf types in a state: a converter to supported values and back.

ckptkit stores only data it can rebuild without running code from the file
(docs/ckptkit/format.md, "Supported values"). A type of your own joins them when
you register a converter for it::

    ckptkit.register_leaf_type(
        RunConfig,
        name="mytrainer.RunConfig",
        encode=dataclasses.asdict,
        decode=lambda fields: RunConfig(**fields),
    )

``save`` then stores a ``RunConfig`` as ``encode(value)`` (any supported state,
tensors included) under the name, and ``load`` gives ``decode(stored)`` back.
The name, not the class, is written into the file, so the class may move or be
renamed; loading a file that holds a name nobody registered raises
``CheckpointIncompatibleError`` naming it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class LeafType:
    """A registered converter (see :func:`register_leaf_type`).

    Attributes:
        cls: The exact class converted (subclasses need their own registration).
        name: The stable name written into files.
        encode: ``value -> supported state``.
        decode: ``stored state -> value``.
    """

    cls: type
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_lock = threading.Lock()
_by_class: dict[type, LeafType] = {}
_by_name: dict[str, LeafType] = {}
# Types ckptkit itself stores or refuses on purpose: a converter for them would
# change what existing states mean.
_RESERVED_NAMES = frozenset(
    {
        "builtins.NoneType",
        "builtins.bool",
        "builtins.int",
        "builtins.float",
        "builtins.complex",
        "builtins.str",
        "builtins.bytes",
        "builtins.list",
        "builtins.tuple",
        "builtins.dict",
        "builtins.set",
        "builtins.frozenset",
        "collections.OrderedDict",
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
        "numpy.ndarray",
    }
)


def register_leaf_type(
    cls: type,
    *,
    name: str,
    encode: Callable[[Any], Any],
    decode: Callable[[Any], Any],
) -> None:
    """Let ``save``/``load`` keep values of ``cls`` exactly, through a converter.

    Args:
        cls: The exact class (``type(value) is cls``); subclasses are not covered.
        name: A stable, unique name for the type in files (``"myproj.Config"``).
            Keep it when the class moves: it is how ``load`` finds the converter.
        encode: Turns a value into a supported state (dicts, lists, tensors, ...,
            other registered types); called once per value on ``save``.
        decode: Turns that state, as loaded, back into a value of ``cls``.

    Raises:
        TypeError: ``cls`` is not a class, or ``encode``/``decode`` not callable.
        ValueError: ``cls`` is a type ckptkit stores itself, or ``name`` is empty
            or already taken by another class.

    Example:
        >>> import ckptkit, fractions, tempfile, pathlib
        >>> ckptkit.register_leaf_type(
        ...     fractions.Fraction,
        ...     name="fractions.Fraction",
        ...     encode=lambda f: (f.numerator, f.denominator),
        ...     decode=lambda pair: fractions.Fraction(*pair),
        ... )
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> _ = ckptkit.save(path, {"ratio": fractions.Fraction(1, 3)})
        >>> ckptkit.load(path).state["ratio"]
        Fraction(1, 3)
        >>> ckptkit.unregister_leaf_type(fractions.Fraction)
    """
    given: tuple[object, ...] = (cls, name, encode, decode)  # untyped callers
    if not isinstance(given[0], type):
        msg = f"register_leaf_type needs a class, not {cls!r}"
        raise TypeError(msg)
    if not callable(given[2]) or not callable(given[3]):
        msg = "register_leaf_type needs callable encode= and decode= converters"
        raise TypeError(msg)
    qualified = f"{cls.__module__}.{cls.__qualname__}"
    if qualified in _RESERVED_NAMES:
        msg = f"{qualified} is stored by ckptkit itself; it cannot be registered"
        raise ValueError(msg)
    if not isinstance(given[1], str) or not name:
        msg = f"name must be a non-empty str, not {name!r}"
        raise ValueError(msg)
    with _lock:
        taken = _by_name.get(name)
        if taken is not None and taken.cls is not cls:
            msg = (
                f"name {name!r} is already registered for "
                f"{taken.cls.__module__}.{taken.cls.__qualname__}; choose another"
            )
            raise ValueError(msg)
        previous = _by_class.pop(cls, None)
        if previous is not None:
            _by_name.pop(previous.name, None)
        entry = LeafType(cls, name, encode, decode)
        _by_class[cls] = entry
        _by_name[name] = entry


def unregister_leaf_type(cls: type) -> None:
    """Forget the converter registered for ``cls`` (nothing happens if none is).

    Args:
        cls: The class given to :func:`register_leaf_type`.
    """
    with _lock:
        entry = _by_class.pop(cls, None)
        if entry is not None:
            _by_name.pop(entry.name, None)


def leaf_type_for(cls: type) -> LeafType | None:
    """The converter registered for exactly ``cls``, if any."""
    return _by_class.get(cls)


def leaf_type_named(name: str) -> LeafType | None:
    """The converter registered under ``name``, if any."""
    return _by_name.get(name)


__all__ = [
    "LeafType",
    "leaf_type_for",
    "leaf_type_named",
    "register_leaf_type",
    "unregister_leaf_type",
]
