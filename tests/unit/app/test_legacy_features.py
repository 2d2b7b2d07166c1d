"""Reading the original's feature files: each departure from the layout says why."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from virnucpro_app.errors import InputError
from virnucpro_app.legacy_features import (
    LegacyFile,
    LegacyFileError,
    find_legacy_files,
    read_legacy_features,
)

from ...support.legacy_features import (
    write_dnabert_features,
    write_esm_features,
    write_merged_features,
)

_IDS = ["c1_chunk_1F1", "c1_chunk_1R2"]
_ROWS = torch.arange(8, dtype=torch.float32).reshape(2, 4)


def _file(path: Path, kind: str) -> LegacyFile:
    return LegacyFile(path, path.name, kind, "xxh3_128:0")


@pytest.mark.parametrize(
    ("writer", "kind"),
    [
        (write_dnabert_features, "dnabert"),
        (write_esm_features, "esm"),
        (write_merged_features, "merged"),
    ],
)
def test_each_layout_reads_back_its_ids_and_rows(
    tmp_path: Path, writer: object, kind: str
) -> None:
    path = writer(tmp_path / "f.pt", _IDS, _ROWS, refactor=kind == "merged")  # type: ignore[operator]
    ids, rows = read_legacy_features(_file(path, kind))
    assert ids == _IDS
    assert torch.equal(rows, _ROWS)


def _refusal(tmp_path: Path, payload: object, kind: str = "esm") -> str:
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(LegacyFileError) as caught:
        read_legacy_features(_file(path, kind))
    return str(caught.value)


def test_files_that_are_not_the_layout_are_refused_as_damaged(tmp_path: Path) -> None:
    assert "not a legacy feature file (list)" in _refusal(tmp_path, [1, 2])
    assert "never finished" in _refusal(
        tmp_path, {"proteins": _IDS, "data": list(_ROWS), "status": "in_progress"}
    )
    assert "2 IDs but 1 feature rows" in _refusal(
        tmp_path, {"proteins": _IDS, "data": [_ROWS[0]]}
    )
    assert "not the legacy dnabert layout" in _refusal(tmp_path, {"x": 1}, "dnabert")
    ragged = {"ids": _IDS, "data": [[1.0, 2.0], [3.0]]}
    assert "not numbers of one width" in _refusal(tmp_path, ragged, "merged")
    for message in (
        _refusal(tmp_path, [1, 2]),
        _refusal(tmp_path, {"x": 1}, "dnabert"),
    ):
        assert message.startswith("damaged file: ")


def test_a_pickle_needing_another_global_is_refused_unread(tmp_path: Path) -> None:
    payload = {"proteins": _IDS, "data": argparse.Namespace(rows=_ROWS)}
    message = _refusal(tmp_path, payload)
    assert message.startswith("damaged file: ")
    assert "allowlist" in message


def test_find_legacy_files_orders_them_and_refuses_an_empty_folder(
    tmp_path: Path,
) -> None:
    for name in ("b/output_2_ESM.pt", "a/output_10_merged.pt", "output_2_DNABERT_S.pt"):
        write_esm_features(tmp_path / name, _IDS, _ROWS)
    (tmp_path / "output_2_DNABERT_S.pt.done").write_text("")
    found = find_legacy_files(tmp_path)
    assert [(f.name, f.kind) for f in found] == [
        ("output_2_DNABERT_S.pt", "dnabert"),
        ("b/output_2_ESM.pt", "esm"),
        ("a/output_10_merged.pt", "merged"),
    ]
    assert all(f.identity.startswith("xxh3_128:") for f in found)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no legacy feature files"):
        find_legacy_files(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        find_legacy_files(tmp_path / "missing")
