"""Any chunking saved, any box read back: resharding gives the saved bytes exactly.

A save on N ranks is reproduced in one process by driving ckptkit's DCP
``StorageWriter`` through the calls DCP makes (each "rank" owning one tile of
the tensor); reads use DCP's own resharding (``create_read_items_for_chunk_list``,
what a DTensor load plans) against ckptkit's ``StorageReader``.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributed._shard._utils import narrow_tensor_by_index
from torch.distributed.checkpoint.default_planner import create_default_global_save_plan
from torch.distributed.checkpoint.metadata import (
    ChunkStorageMetadata,
    MetadataIndex,
    TensorProperties,
)
from torch.distributed.checkpoint.planner import (
    LoadPlan,
    SavePlan,
    TensorWriteData,
    WriteItem,
    WriteItemType,
)
from torch.distributed.checkpoint.planner_helpers import (
    create_read_items_for_chunk_list,
)

import ckptkit
import ckptkit.distributed as ckd
from ckptkit.distributed._tree import SavedTree

from ..support.corrupt import flip_bit

DTYPES = (torch.float32, torch.int16, torch.bfloat16, torch.complex128, torch.bool)
Box = tuple[tuple[int, ...], tuple[int, ...]]


def _cuts(length: int) -> st.SearchStrategy[list[int]]:
    """Cut points of one dimension, empty pieces allowed (uneven FSDP shards)."""
    return st.lists(st.integers(0, length), max_size=3).map(
        lambda points: [0, *sorted(points), length]
    )


@st.composite
def _layouts(draw: st.DrawFn) -> tuple[torch.Tensor, list[Box], Box]:
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    tensor = (torch.randn(shape, dtype=torch.float64) * 50).to(dtype)
    cuts = [draw(_cuts(n)) for n in shape]
    tiles = [
        (tuple(lo for lo, _ in span), tuple(hi - lo for lo, hi in span))
        for span in itertools.product(*[list(itertools.pairwise(c)) for c in cuts])
    ]
    start = tuple(draw(st.integers(0, n - 1)) for n in shape)
    size = tuple(draw(st.integers(1, n - s)) for n, s in zip(shape, start, strict=True))
    return tensor, tiles, (start, size)


def _box(tensor: torch.Tensor, box: Box) -> torch.Tensor:
    return narrow_tensor_by_index(tensor, torch.Size(box[0]), torch.Size(box[1]))


class _TilePlanner:
    """What DCP's planner does on one rank for ``resolve_data``: its own tile."""

    def __init__(self, tensor: torch.Tensor, tile: Box) -> None:
        self.tile = _box(tensor, tile)

    def resolve_data(self, item: WriteItem) -> torch.Tensor:
        del item
        return self.tile


def save_tiled(path: Path, tensor: torch.Tensor, tiles: list[Box]) -> None:
    """Save ``tensor`` as if rank ``r`` held ``tiles[r]`` (DCP's calls, in order)."""
    properties = TensorProperties(dtype=tensor.dtype)
    plans = [
        SavePlan(
            [
                WriteItem(
                    index=MetadataIndex("t", offsets),
                    type=WriteItemType.SHARD,
                    tensor_data=TensorWriteData(
                        ChunkStorageMetadata(torch.Size(offsets), torch.Size(sizes)),
                        properties,
                        tensor.size(),
                    ),
                )
            ]
        )
        for offsets, sizes in tiles
    ]
    plans, metadata = create_default_global_save_plan(plans)
    tree = SavedTree({"dict": [["t", {"tensor": 0}]]}, [{"kind": "tensor", "key": "t"}])
    metadata = replace(metadata, planner_data=tree)
    writers = [ckd.StorageWriter(path) for _ in tiles]
    plans = writers[0].prepare_global_plan(plans)
    results = [
        writer.write_data(plan, _TilePlanner(tensor, tile)).value()  # type: ignore[arg-type]
        for writer, plan, tile in zip(writers, plans, tiles, strict=True)
    ]
    writers[0].finish(metadata, results)


class _BoxPlanner:
    """What DCP's planner does for ``resolve_tensor`` on a rank owning ``target``."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target

    def resolve_tensor(self, item: Any) -> torch.Tensor:
        return narrow_tensor_by_index(self.target, item.dest_offsets, item.lengths)

    def commit_tensor(self, item: Any, tensor: torch.Tensor) -> None:
        del item, tensor


def read_box(path: Path, box: Box, dtype: torch.dtype) -> torch.Tensor:
    """Read one box of ``t`` through the StorageReader, as a DTensor load would."""
    reader = ckd.StorageReader(path)
    metadata = reader.read_metadata()
    reader.set_up_storage_reader(metadata, True)
    local = ChunkStorageMetadata(torch.Size(box[0]), torch.Size(box[1]))
    items = create_read_items_for_chunk_list(
        "t", metadata.state_dict_metadata["t"], [local]
    )
    target = torch.zeros(box[1], dtype=dtype)
    unwrapped = reader.read_data.__wrapped__  # type: ignore[attr-defined]
    unwrapped(reader, LoadPlan(items), _BoxPlanner(target))
    return target


@settings(max_examples=20)
@given(_layouts())
def test_any_saved_chunking_reads_back_whole_and_in_any_box(
    layout: tuple[torch.Tensor, list[Box], Box],
) -> None:
    tensor, tiles, box = layout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ck"
        save_tiled(path, tensor, tiles)
        info = ckptkit.inspect(path)
        assert info.world_size == len(tiles)
        whole = ckptkit.load(path, verify="full").state["t"]
        assert whole.dtype == tensor.dtype
        assert torch.equal(whole, tensor)
        assert torch.equal(read_box(path, box, tensor.dtype), _box(tensor, box))


@settings(max_examples=12)
@given(_layouts(), st.data())
def test_a_flipped_bit_in_any_chunk_a_box_touches_fails_that_read(
    layout: tuple[torch.Tensor, list[Box], Box], data: st.DataObject
) -> None:
    tensor, tiles, box = layout
    touched = [
        rank
        for rank, (offsets, sizes) in enumerate(tiles)
        if math.prod(sizes)
        and all(
            o < s + n and s < o + m
            for o, m, s, n in zip(offsets, sizes, box[0], box[1], strict=True)
        )
    ]
    rank = data.draw(st.sampled_from(touched))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ck"
        save_tiled(path, tensor, tiles)
        shard = path / f"shard-{rank:05d}.ckpt"
        nbytes = math.prod(tiles[rank][1]) * tensor.element_size()
        size = shard.stat().st_size
        flip_bit(shard, data.draw(st.integers((size - nbytes) * 8, size * 8 - 1)))
        with pytest.raises(ckptkit.ChecksumMismatchError) as caught:
            read_box(path, box, tensor.dtype)
        assert caught.value.path == str(shard)
