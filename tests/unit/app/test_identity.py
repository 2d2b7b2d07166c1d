"""Content identity of model files and folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import xxhash

from virnucpro_app.identity import file_identity, files_identity


def test_file_identity_is_xxh3_128_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc" * 10_000_000)
    assert (
        file_identity(path)
        == "xxh3_128:" + xxhash.xxh3_128(b"abc" * 10_000_000).hexdigest()
    )


def test_folder_identity_ignores_location_but_not_content(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "w").write_bytes(b"123")
    names = ["config.json", "w"]
    assert files_identity(tmp_path / "a", names) == files_identity(
        tmp_path / "b", names
    )
    (tmp_path / "b" / "w").write_bytes(b"124")
    assert files_identity(tmp_path / "a", names) != files_identity(
        tmp_path / "b", names
    )


def test_folder_identity_keeps_file_boundaries(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("ab")
    (tmp_path / "y").write_text("c")
    first = files_identity(tmp_path, ["x", "y"])
    (tmp_path / "x").write_text("a")
    (tmp_path / "y").write_text("bc")
    assert files_identity(tmp_path, ["x", "y"]) != first


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_identity(tmp_path / "nope")
