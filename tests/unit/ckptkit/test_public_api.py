"""The public surface of ckptkit is declared once and documented."""

from __future__ import annotations

import inspect

import ckptkit


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name in dir(ckptkit)
        if not name.startswith("_")
        and not inspect.ismodule(getattr(ckptkit, name))
        and name not in {"annotations", "TYPE_CHECKING"}
    }
    # Order is kept by ruff's RUF022 (isort-style); here: no duplicates, no gaps.
    assert len(set(ckptkit.__all__)) == len(ckptkit.__all__)
    assert public | {"__version__"} == set(ckptkit.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for name in ckptkit.__all__:
        value = getattr(ckptkit, name)
        if callable(value) and not isinstance(value, type(ckptkit.ExitCode.OK)):
            assert inspect.getdoc(value), name


def test_contract_names_and_signatures() -> None:
    assert ckptkit.CHECKPOINT_VERSION == "1.0"
    save = inspect.signature(ckptkit.save)
    assert list(save.parameters)[:2] == ["path", "state"]
    assert {"version", "schema", "status", "metadata"} <= set(save.parameters)
    assert save.parameters["version"].default == "1.0"
    load = inspect.signature(ckptkit.load)
    assert {"map_location", "verify", "mmap", "keys"} <= set(load.parameters)
    assert load.parameters["verify"].default == "quick"
    validate = inspect.signature(ckptkit.validate)
    assert validate.parameters["level"].default == "full"
    assert issubclass(ckptkit.CheckpointNotFoundError, FileNotFoundError)
    assert issubclass(ckptkit.CheckpointCorruptError, ValueError)
    assert issubclass(ckptkit.CheckpointIncompatibleError, ckptkit.CheckpointError)
    assert [int(c) for c in ckptkit.ExitCode] == [0, 1, 2, 3, 4]
