"""The public surface of ckptkit.distributed: declared once, named as issue 16 says."""

from __future__ import annotations

import inspect
import subprocess
import sys

import ckptkit
import ckptkit.distributed as ckd


def test_all_is_complete_and_documented() -> None:
    assert sorted(ckd.__all__) == sorted(set(ckd.__all__))
    assert set(ckd.__all__) == {
        "RankFailedError",
        "ShardInfo",
        "ShardedCheckpointInfo",
        "StorageReader",
        "StorageWriter",
        "consolidate",
        "load",
        "save",
    }
    for name in ckd.__all__:
        assert inspect.getdoc(getattr(ckd, name)), name


def test_contract_signatures() -> None:
    save = inspect.signature(ckd.save)
    assert list(save.parameters)[:2] == ["path", "state"]
    for name, default in {
        "process_group": None,
        "version": "1.0",
        "schema": None,
        "status": "complete",
        "metadata": None,
    }.items():
        assert save.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert save.parameters[name].default == default
    load = inspect.signature(ckd.load)
    assert list(load.parameters)[:2] == ["path", "state"]
    assert load.parameters["verify"].default == "full"
    assert load.parameters["registry"].default is None
    manager = inspect.signature(ckptkit.CheckpointManager)
    assert manager.parameters["sharded"].default is False
    assert manager.parameters["process_group"].default is None
    assert issubclass(ckd.ShardedCheckpointInfo, ckptkit.CheckpointInfo)
    assert issubclass(ckd.RankFailedError, RuntimeError)


def test_importing_ckptkit_distributed_does_not_import_torch() -> None:
    code = "import sys, ckptkit.distributed; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
