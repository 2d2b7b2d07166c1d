"""The run manifest: what a refused resume says changed, old -> new."""

from __future__ import annotations

from dataclasses import replace

from virnucpro_app.stages.manifest import RunManifest

_BASE = RunManifest(
    inputs=(("a.fa", "xxh3_128:aaaaaaaaaaaa"), ("b.fa", "xxh3_128:bbbbbbbbbbbb")),
    dnabert="xxh3_128:dddddddddddd",
    esm="xxh3_128:eeeeeeeeeeee",
    classifier="xxh3_128:cccccccccccc",
    chunk_size=300,
    precision="fp32",
    shard_size=10_000,
    input_sizes=(1_000, 2_000),
)


def test_same_manifest_has_no_differences() -> None:
    assert _BASE.differences(replace(_BASE, input_sizes=())) == []


def test_changed_inputs_show_names_and_sizes() -> None:
    changed = replace(
        _BASE,
        inputs=(("a.fa", "xxh3_128:ffffffffffff"), ("c.fa", "xxh3_128:cccc")),
        input_sizes=(1_234, 5),
    )
    assert changed.differences(_BASE) == [
        "input b.fa removed",
        "input c.fa added",
        "input a.fa changed (1,000 -> 1,234 bytes)",
    ]


def test_same_size_shows_content_hashes_and_settings_read_old_to_new() -> None:
    changed = replace(
        _BASE,
        inputs=(("a.fa", "xxh3_128:ffffffffffff"), _BASE.inputs[1]),
        esm="xxh3_128:999999999999",
        chunk_size=500,
        precision="bf16",
    )
    assert changed.differences(_BASE) == [
        "input a.fa changed (content xxh3_128:aaaaaaaa -> xxh3_128:ffffffff)",
        "ESM-2 model changed (xxh3_128:eeeeeeee -> xxh3_128:99999999)",
        "chunk size (--model-type) 300 -> 500",
        "precision fp32 -> bf16",
    ]


def test_reordered_inputs_and_adopt_files_are_named() -> None:
    swapped = replace(
        _BASE,
        inputs=(_BASE.inputs[1], _BASE.inputs[0]),
        input_sizes=(2_000, 1_000),
        adopted=(("output_1_ESM.pt", "xxh3_128:1"),),
    )
    assert swapped.differences(_BASE) == [
        "input order a.fa, b.fa -> b.fa, a.fa",
        "--adopt files none -> 1 file",
    ]
    assert _BASE.differences(swapped)[-1] == (
        "--adopt files 1 file -> none (pass the same --adopt again)"
    )


def test_json_round_trip_and_manifests_of_earlier_versions() -> None:
    assert RunManifest.from_json(_BASE.to_json()) == _BASE
    older = _BASE.to_json()
    del older["adopted"], older["input_sizes"]
    assert RunManifest.from_json(older) == replace(_BASE, input_sizes=())
