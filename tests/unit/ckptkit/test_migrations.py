"""MigrationRegistry: declaring steps, refusing broken registries, migrating."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

import ckptkit
from ckptkit.testing import assert_same_state, clone_state


def _trainer() -> ckptkit.MigrationRegistry:
    """0.x -> 1.0 -> 1.1 -> 2.0, each step of a different kind."""
    registry = ckptkit.MigrationRegistry(schema="my-trainer", current="2.0")

    @registry.migration("0.x", "1.0")
    def from_legacy(state: dict[str, Any]) -> dict[str, Any]:
        return {"model": state["state_dict"], "epoch": state.get("epoch", 0)}

    @registry.migration("1.0", "1.1")
    def add_ema(state: dict[str, Any]) -> dict[str, Any]:
        state["ema"] = {name: w.clone() for name, w in state["model"].items()}
        return state

    @registry.migration("1.1", "2.0")
    def half_ema(state: dict[str, Any]) -> dict[str, Any]:
        state["ema"] = {k: v.to(torch.float16) for k, v in state["ema"].items()}
        state["weights"] = state.pop("model")
        return state

    return registry


def _state_1_0() -> dict[str, Any]:
    return {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 4}


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- declaring steps ---------------------------------------------------------


def test_decorator_returns_the_function_and_registers_the_step() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")

    def step(state: Any) -> Any:
        return state

    assert registry.migration("1.0", "1.1")(step) is step
    (migration,) = registry.steps
    assert (migration.from_version, migration.to_version) == ("1.0", "1.1")
    assert migration.func is step
    assert migration.name.endswith(
        "test_decorator_returns_the_function_and_registers_the_step.<locals>.step"
    )


def test_current_defaults_to_the_highest_target() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")
    registry.register("1.0", "1.10", lambda s: s)
    registry.register("0.x", "1.0", lambda s: s)
    assert registry.current == "1.10"  # ordered by packaging, not as text


def test_current_without_steps_or_declaration_raises() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")
    with pytest.raises(ckptkit.MigrationError, match="no current"):
        _ = registry.current
    with pytest.raises(ckptkit.MigrationError, match="no migrations and no current"):
        registry.check()


def test_registry_with_only_current_accepts_that_version() -> None:
    registry = ckptkit.MigrationRegistry(schema="s", current="1.0")
    registry.check()
    assert registry.path("1.0") == []


def test_path_lists_the_chain_in_order() -> None:
    registry = _trainer()
    chain = registry.path("0.x", "2.0")
    assert [(m.from_version, m.to_version) for m in chain] == [
        ("0.x", "1.0"),
        ("1.0", "1.1"),
        ("1.1", "2.0"),
    ]
    assert [m.to_version for m in registry.path("1.0", "1.1")] == ["1.1"]
    assert registry.path("1.1", "1.1") == []


def test_versions_compare_by_value_not_by_text() -> None:
    registry = _trainer()
    assert [m.to_version for m in registry.path("1.0.0", "2")] == ["1.1", "2.0"]


def test_path_from_an_unknown_version_raises_missing_migration() -> None:
    with pytest.raises(ckptkit.MissingMigrationError, match=r"from 1\.5 to 2\.0"):
        _trainer().path("1.5")


def test_path_backwards_raises_missing_migration() -> None:
    with pytest.raises(ckptkit.MissingMigrationError, match="only go forward"):
        _trainer().path("1.1", "1.0")


def test_path_from_a_version_above_current_raises_unsupported_version() -> None:
    with pytest.raises(
        ckptkit.UnsupportedVersionError,
        match=r"newer version of my-trainer; upgrade to >= 2\.1",
    ):
        _trainer().path("2.1")


# --- refused registries --------------------------------------------------------


def _refused(steps: list[tuple[str, str]], current: str | None = None) -> str:
    """Register ``steps``; return the refusal (at registration or by check)."""
    registry = ckptkit.MigrationRegistry(schema="s", current=current)

    def build() -> None:
        for source, target in steps:
            registry.register(source, target, lambda s: s)
        registry.check()

    with pytest.raises(ckptkit.MigrationError) as caught:
        build()
    return str(caught.value)


@pytest.mark.parametrize(
    ("steps", "current", "words"),
    [
        ([("1.0", "1.1"), ("1.0", "1.1")], None, ["duplicate", "1.0 -> 1.1"]),
        ([("1.0", "1.0")], None, ["cycle", "1.0 -> 1.0"]),
        ([("1.1", "1.0")], None, ["backwards", "1.1 -> 1.0"]),
        ([("1.0", "1.1"), ("1.1", "1.0")], None, ["cycle 1.0 -> 1.1 -> 1.0"]),
        (
            [("1.0", "1.1"), ("1.1", "2.0"), ("1.0", "2.0")],
            None,
            ["two chains from 1.0 to 2.0", "1.0 -> 1.1 -> 2.0"],
        ),
        (
            [("1.0", "2.0"), ("1.0", "1.1"), ("1.1", "2.0")],
            None,
            ["1.0 already leads to 2.0", "1.0 -> 1.1"],
        ),
        (
            [("1.0", "1.1"), ("1.0", "1.2")],
            None,
            ["1.0 already leads to 1.1", "1.0 -> 1.2"],
        ),
        ([("1.0", "1.1"), ("0.x", "2.0")], None, ["0.x -> 2.0", "skips", "1.0, 1.1"]),
        ([("0.x", "2.0"), ("1.0", "1.1")], None, ["1.0 lies inside step 0.x -> 2.0"]),
        ([("0.x", "1.0"), ("0.9", "1.0")], None, ["0.9 lies inside step 0.x -> 1.0"]),
        ([("1.0", "2.1")], "2.0", ["beyond", "current version 2.0"]),
        (
            [("0.x", "1.0"), ("1.1", "2.0")],
            None,
            ["gap", "no step leaves 1.0", "1.0 -> 1.1"],
        ),
        ([("0.x", "1.0")], "2.0", ["gap", "no step leaves 1.0", "1.0 -> 2.0"]),
        ([("one", "1.0")], None, ["'one' is not a version"]),
    ],
)
def test_broken_registry_is_refused_naming_the_versions(
    steps: list[tuple[str, str]], current: str | None, words: list[str]
) -> None:
    message = _refused(steps, current)
    for word in words:
        assert word in message, message


def test_registration_refuses_without_changing_the_registry() -> None:
    registry = _trainer()
    with pytest.raises(ckptkit.MigrationError):
        registry.register("1.0", "2.0", lambda s: s)
    assert len(registry.steps) == 3
    registry.check()


def test_legacy_current_and_non_callable_steps_are_refused() -> None:
    with pytest.raises(ckptkit.MigrationError, match="legacy"):
        ckptkit.MigrationRegistry(schema="s", current="0.x")
    with pytest.raises(TypeError, match="not callable"):
        ckptkit.MigrationRegistry(schema="s").register("1.0", "1.1", "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema"):
        ckptkit.MigrationRegistry(schema="")


def test_path_on_a_registry_with_a_gap_refuses_even_the_intact_part() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")
    registry.register("0.x", "1.0", lambda s: s)
    registry.register("1.1", "2.0", lambda s: s)
    with pytest.raises(ckptkit.MigrationError, match="gap"):
        registry.path("0.x", "1.0")


# --- migrating in memory ---------------------------------------------------------


def test_migrate_in_memory_runs_the_chain_and_records_each_step() -> None:
    state = _state_1_0()
    new, applied = _trainer().migrate(state, "1.0")
    assert sorted(new) == ["ema", "epoch", "weights"]
    assert new["ema"]["w"].dtype == torch.float16
    assert [(r.from_version, r.to_version) for r in applied] == [
        ("1.0", "1.1"),
        ("1.1", "2.0"),
    ]
    assert applied[0].step.endswith("_trainer.<locals>.add_ema")
    assert applied[0].ckptkit_version == ckptkit.__version__
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", applied[0].applied_at
    )


def test_migrate_leaves_the_callers_state_unchanged() -> None:
    state = _state_1_0()
    before = clone_state(state)
    new, _ = _trainer().migrate(state, "1.0")
    assert_same_state(state, before)
    assert new["weights"]["w"] is state["model"]["w"]  # tensors are shared, not copied


def test_state_at_current_comes_back_itself_with_no_history() -> None:
    state = _state_1_0()
    new, applied = _trainer().migrate(state, "2.0")
    assert new is state
    assert applied == ()


def test_a_step_that_raises_is_reported_with_its_name_and_version() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")

    @registry.migration("1.0", "1.1")
    def needs_key(state: dict[str, Any]) -> dict[str, Any]:
        state["b"] = state["missing"]
        return state

    with pytest.raises(
        ckptkit.MigrationError,
        match=r"needs_key \(1\.0 -> 1\.1\) failed at version 1\.0: KeyError",
    ) as caught:
        registry.migrate({"a": 1}, "1.0")
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_step_that_returns_none_is_refused() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")
    registry.register("1.0", "1.1", lambda state: state.update(x=1))
    with pytest.raises(ckptkit.MigrationError, match="returned None"):
        registry.migrate({"a": 1}, "1.0")


def test_a_step_that_changes_a_tensor_in_place_is_refused() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")

    @registry.migration("1.0", "1.1")
    def scale(state: dict[str, Any]) -> dict[str, Any]:
        state["model"]["w"].mul_(2)
        return state

    with pytest.raises(ckptkit.MigrationError, match=r"'model\.w' in place"):
        registry.migrate({"model": {"w": torch.ones(2)}}, "1.0")


def test_step_name_can_be_given() -> None:
    registry = ckptkit.MigrationRegistry(schema="s")
    registry.migration("1.0", "1.1", name="add-epoch")(lambda s: {**s, "epoch": 0})
    _, (record,) = registry.migrate({}, "1.0")
    assert record.step == "add-epoch"


# --- load(registry=) ---------------------------------------------------------------


def test_load_with_registry_migrates_in_memory_and_leaves_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    before = path.read_bytes()
    checkpoint = ckptkit.load(path, registry=_trainer(), verify="full")
    assert sorted(checkpoint.state) == ["ema", "epoch", "weights"]
    assert [r.to_version for r in checkpoint.applied] == ["1.1", "2.0"]
    assert checkpoint.info.version == "1.0"  # what the file says
    assert path.read_bytes() == before


def test_load_with_registry_to_an_intermediate_version(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    checkpoint = ckptkit.load(path, registry=_trainer(), to_version="1.1")
    assert sorted(checkpoint.state) == ["ema", "epoch", "model"]


def test_load_without_registry_has_no_applied_steps(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    assert ckptkit.load(path).applied == ()


def test_load_refuses_another_schema(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="other-trainer")
    with pytest.raises(
        ckptkit.SchemaMismatchError, match="'other-trainer' is not 'my-trainer'"
    ) as caught:
        ckptkit.load(path, registry=_trainer())
    assert isinstance(caught.value, ckptkit.CheckpointIncompatibleError)
    assert caught.value.path == str(path)


def test_unnamed_checkpoint_needs_accept_unnamed(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0())
    with pytest.raises(ckptkit.SchemaMismatchError, match="accept_unnamed=True"):
        ckptkit.load(path, registry=_trainer())
    lenient = ckptkit.MigrationRegistry(schema="my-trainer", accept_unnamed=True)
    lenient.register("1.0", "1.1", lambda s: {**s, "epoch": 0})
    assert ckptkit.load(path, registry=lenient).state["epoch"] == 0
    ckptkit.migrate(path, lenient)
    assert ckptkit.inspect(path).schema == "my-trainer"


def test_load_refuses_a_checkpoint_newer_than_current(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"x": 1}, schema="my-trainer", version="2.1")
    with pytest.raises(ckptkit.UnsupportedVersionError) as caught:
        ckptkit.load(path, registry=_trainer())
    assert "written by a newer version of my-trainer; upgrade to >= 2.1" in str(
        caught.value
    )
    assert caught.value.path == str(path)


def test_load_refuses_keys_with_registry(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    with pytest.raises(ValueError, match="whole state"):
        ckptkit.load(path, registry=_trainer(), keys=["model"])


def test_load_legacy_files_enter_the_chain_at_their_version(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 1}, plain)
    checkpoint = ckptkit.load(plain, registry=_trainer())
    assert [r.from_version for r in checkpoint.applied] == ["0.x", "1.0", "1.1"]
    versioned = tmp_path / "versioned.pt"
    torch.save({"version": "1.1", "weights": {}, "model": {}, "ema": {}}, versioned)
    checkpoint = ckptkit.load(versioned, registry=_trainer())
    assert [r.from_version for r in checkpoint.applied] == ["1.1"]


def test_load_reports_a_missing_chain_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"w": torch.ones(1)}, path)
    registry = ckptkit.MigrationRegistry(schema="s")
    registry.register("1.0", "1.1", lambda s: s)
    with pytest.raises(
        ckptkit.MissingMigrationError, match=r"from 0\.x to 1\.1"
    ) as caught:
        ckptkit.load(path, registry=registry)
    assert caught.value.path == str(path)


# --- migrate on disk ---------------------------------------------------------------


def test_migrate_in_place_keeps_a_backup_and_records_history(tmp_path: Path) -> None:
    path = tmp_path / "step-10.ckpt"
    ckptkit.save(
        path,
        _state_1_0(),
        schema="my-trainer",
        status="in_progress",
        metadata={"run": "a"},
    )
    original = path.read_bytes()
    result = ckptkit.migrate(path, _trainer())
    assert result.output == path
    assert result.backup == tmp_path / "step-10.ckpt.v1.0.bak"
    assert result.backup.read_bytes() == original
    assert (result.from_version, result.to_version, result.written, result.dry_run) == (
        "1.0",
        "2.0",
        True,
        False,
    )
    info = ckptkit.inspect(path)
    assert (info.version, info.schema, info.status, info.metadata) == (
        "2.0",
        "my-trainer",
        "in_progress",
        {"run": "a"},
    )
    assert [(h.from_version, h.to_version) for h in info.history] == [
        ("1.0", "1.1"),
        ("1.1", "2.0"),
    ]
    assert info.history == result.applied
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step-10.ckpt",
        "step-10.ckpt.v1.0.bak",
    ]


def test_history_accumulates_over_migrations(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    ckptkit.migrate(path, _trainer(), "1.1")
    ckptkit.migrate(path, _trainer())
    history = ckptkit.inspect(path).history
    assert [(h.from_version, h.to_version) for h in history] == [
        ("1.0", "1.1"),
        ("1.1", "2.0"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.ckpt",
        "a.ckpt.v1.0.bak",
        "a.ckpt.v1.1.bak",
    ]


def test_migrate_without_backup_leaves_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    result = ckptkit.migrate(path, _trainer(), backup=False)
    assert result.backup is None
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


def test_migrate_to_output_leaves_the_source_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    before = path.read_bytes()
    result = ckptkit.migrate(path, _trainer(), output=tmp_path / "b.ckpt")
    assert (result.output, result.backup) == (tmp_path / "b.ckpt", None)
    assert path.read_bytes() == before
    assert ckptkit.inspect(tmp_path / "b.ckpt").version == "2.0"


def test_migrate_refuses_an_existing_output_or_backup(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    (tmp_path / "b.ckpt").write_bytes(b"keep me")
    (tmp_path / "a.ckpt.v1.0.bak").write_bytes(b"older backup")
    before = _listing(tmp_path)
    with pytest.raises(FileExistsError, match="output exists"):
        ckptkit.migrate(path, _trainer(), output=tmp_path / "b.ckpt")
    with pytest.raises(FileExistsError, match="backup"):
        ckptkit.migrate(path, _trainer())
    assert _listing(tmp_path) == before


def test_legacy_file_is_never_changed_in_place(tmp_path: Path) -> None:
    legacy = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.ones(3)}, "epoch": 2}, legacy)
    before = legacy.read_bytes()
    with pytest.raises(ckptkit.MigrationError, match="never changed in place"):
        ckptkit.migrate(legacy, _trainer(), output=legacy)
    result = ckptkit.migrate(legacy, _trainer())
    assert result.output == tmp_path / "model.v2.0.ckpt"
    assert result.backup is None
    assert legacy.read_bytes() == before
    info = ckptkit.inspect(result.output)
    assert (info.version, info.schema, info.legacy) == ("2.0", "my-trainer", False)
    assert [h.from_version for h in info.history] == ["0.x", "1.0", "1.1"]


def test_dry_run_writes_nothing_and_summarises_the_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    before = _listing(tmp_path)
    result = ckptkit.migrate(path, _trainer(), dry_run=True)
    assert _listing(tmp_path) == before
    assert (result.dry_run, result.written) == (True, False)
    assert [m.to_version for m in result.chain] == ["1.1", "2.0"]
    assert result.backup == tmp_path / "a.ckpt.v1.0.bak"  # where it would go
    summary = {(c.key, c.kind, c.what) for c in result.changes}
    assert summary == {
        ("model", "removed", ()),
        ("weights", "added", ()),
        ("ema", "added", ()),
    }
    assert (
        str(next(c for c in result.changes if c.key == "ema")) == "+ ema: dict (1 keys)"
    )


def test_dry_run_summary_names_dtype_and_shape_changes(tmp_path: Path) -> None:
    registry = ckptkit.MigrationRegistry(schema="s")

    @registry.migration("1.0", "1.1")
    def reshape(state: dict[str, Any]) -> dict[str, Any]:
        state["w"] = state["w"].reshape(3, 1).to(torch.float16)
        state["b"] = state["b"].reshape(3, 1)
        state["n"] = state["n"] + 1
        return state

    path = tmp_path / "a.ckpt"
    ckptkit.save(
        path,
        {"w": torch.ones(3), "b": torch.ones(3), "n": 1, "same": torch.ones(1)},
        schema="s",
    )
    changes = {c.key: c for c in ckptkit.migrate(path, registry, dry_run=True).changes}
    assert changes["w"].what == ("dtype", "shape")
    assert (
        str(changes["w"])
        == "~ w (dtype, shape): tensor float32 (3,) -> tensor float16 (3, 1)"
    )
    assert changes["b"].what == ("shape",)
    assert changes["n"].what == ("value",)
    assert "same" not in changes


def test_a_failing_step_leaves_the_folder_exactly_as_it_was(tmp_path: Path) -> None:
    registry = ckptkit.MigrationRegistry(schema="my-trainer")
    registry.register("1.0", "1.1", lambda state: {**state, "ema": {}})
    registry.register("1.1", "2.0", lambda state: state["no such key"])
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    before = _listing(tmp_path)
    with pytest.raises(
        ckptkit.MigrationError,
        match=r"\(1\.1 -> 2\.0\) failed at version 1\.1: KeyError",
    ):
        ckptkit.migrate(path, registry)
    assert _listing(tmp_path) == before


def test_a_state_that_cannot_be_saved_removes_the_backup(tmp_path: Path) -> None:
    registry = ckptkit.MigrationRegistry(schema="s")
    registry.register("1.0", "1.1", lambda state: {**state, "bad": object()})
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"w": torch.ones(2)}, schema="s")
    before = _listing(tmp_path)
    with pytest.raises(
        ckptkit.MigrationError, match=r"migrated to 1\.1 cannot be saved"
    ):
        ckptkit.migrate(path, registry)
    assert _listing(tmp_path) == before


def test_a_file_already_at_the_target_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, {"x": 1}, schema="my-trainer", version="2.0")
    before = _listing(tmp_path)
    result = ckptkit.migrate(path, _trainer())
    assert (result.chain, result.applied, result.written, result.backup) == (
        (),
        (),
        False,
        None,
    )
    assert _listing(tmp_path) == before


def test_migrate_refuses_a_damaged_file_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last entry's byte: its checksum sees it
    path.write_bytes(bytes(data))
    before = _listing(tmp_path)
    with pytest.raises(ckptkit.ChecksumMismatchError):
        ckptkit.migrate(path, _trainer())
    assert _listing(tmp_path) == before


def test_migrate_to_legacy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(ckptkit.MigrationError, match="legacy version"):
        ckptkit.migrate(path, _trainer(), "0.x")


# --- results and registry references -------------------------------------------------


def test_result_describes_itself_for_people_and_as_json(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckptkit.save(path, _state_1_0(), schema="my-trainer")
    dry = ckptkit.migrate(path, _trainer(), dry_run=True)
    lines = dry.describe().splitlines()
    assert lines[0] == (
        f"would migrate {path}: 1.0 -> 2.0 (2 steps); would keep the original as "
        f"{path}.v1.0.bak"
    )
    assert lines[1].startswith("  step 1.0 -> 1.1: ")
    assert "  + ema: dict (1 keys)" in lines
    data = ckptkit.migrate(path, _trainer()).to_json()
    assert (data["from_version"], data["to_version"], data["written"]) == (
        "1.0",
        "2.0",
        True,
    )
    assert [c["key"] for c in data["changes"]] == ["ema", "model", "weights"]
    assert data["applied"][0]["from"] == "1.0"
    again = ckptkit.migrate(path, _trainer())
    assert again.is_up_to_date
    assert again.describe() == f"up to date: {path} (version 2.0)"


def test_registry_from_reference_imports_the_named_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_project_ckpt.py").write_text(
        "import ckptkit\n"
        "registry = ckptkit.MigrationRegistry(schema='p', current='1.0')\n"
        "not_a_registry = 3\n"
        "raise_on_import = False\n",
        encoding="utf-8",
    )
    (tmp_path / "broken_project_ckpt.py").write_text(
        "import ckptkit\n"
        "registry = ckptkit.MigrationRegistry(schema='p')\n"
        "registry.register('1.1', '1.0', lambda s: s)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ckptkit.MigrationRegistry.from_reference("my_project_ckpt:registry")
    assert registry.schema == "p"
    for reference, words in [
        ("my_project_ckpt", "must look like"),
        ("my_project_ckpt:missing", "has no 'missing'"),
        ("my_project_ckpt:not_a_registry", "is a int, not a ckptkit"),
        ("no_such_module_here:registry", "ModuleNotFoundError"),
        ("broken_project_ckpt:registry", "MigrationError: p: step 1.1 -> 1.0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            ckptkit.MigrationRegistry.from_reference(reference)
