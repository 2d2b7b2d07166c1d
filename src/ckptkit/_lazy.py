"""Names a package loads on first use (PEP 562), declared as one table.

``ckptkit`` and ``ckptkit.distributed`` keep ``import`` cheap this way: the
modules behind their names import torch (or torch.distributed) when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_names(
    package: str, table: Mapping[str, str], namespace: dict[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__`` for ``table`` (name -> module).

    A name, once loaded, is stored in ``namespace`` (the package's globals), so
    ``__getattr__`` runs once per name.
    """

    def getattr_(name: str) -> object:
        module_name = table.get(name)
        if module_name is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(import_module(module_name), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(table))

    return getattr_, dir_
