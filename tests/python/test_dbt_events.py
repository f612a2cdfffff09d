"""How dbt's in-process events reach Dagster when the code location's manifest is stale, and
what a block does when its step fails mid-stream (orchestration/dbt_assets.py, dbt_blocks.py)."""

from types import SimpleNamespace

import pytest

from orchestration import dbt_assets, dbt_blocks


class Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def node_event(unique_id: str, name: str = "NodeFinished") -> dict:
    return {"info": {"name": name}, "data": {"node_info": {"unique_id": unique_id}}}


def test_a_node_added_after_the_code_location_loaded_is_skipped_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dbt_assets, "load_manifest", lambda: {"nodes": {}})
    context = SimpleNamespace(log=Log())
    new_test = "test.userops.assert_something_new"
    events = [node_event(new_test, "NodeStart"), node_event(new_test)]
    converted = list(dbt_assets.dagster_events(context, iter(events)))
    assert converted == []  # before: KeyError in dagster-dbt failed the whole block
    assert len(context.log.warnings) == 1
    assert new_test in context.log.warnings[0]
    assert "make dagster-manifest" in context.log.warnings[0]


def test_drain_runs_the_blocks_dbt_stream_to_its_end() -> None:
    pulled: list[int] = []

    def stream():
        for number in range(5):
            pulled.append(number)
            yield node_event(f"model.userops.m{number}")

    build = dbt_blocks.BlockBuild(invocation=None, stream=stream(), owners={}, ops=["a", "b"])
    first = next(build.events_for("a"))
    assert first["data"]["node_info"]["unique_id"] == "model.userops.m0"
    build.drain()
    assert pulled == [0, 1, 2, 3, 4]
    assert build.exhausted
    assert build.finished == {f"model.userops.m{number}" for number in range(5)}


def test_a_code_location_parse_with_the_runs_environment_is_the_runs_parse(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orchestration.materialize parses the project once, with the environment its run's dbt
    steps have: those steps then find that manifest and parse nothing more."""
    from datetime import date

    from orchestration import dbt_runner
    from orchestration.dbt_assets import scoped_environ, step_env
    from orchestration.resources import Warehouse

    (tmp_path / "landing").mkdir()
    monkeypatch.setenv("USEROPS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("USEROPS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    manifest_json = tmp_path / "target" / "manifest.json"
    window = (date(2026, 6, 30), date(2026, 7, 1))
    with scoped_environ(step_env(Warehouse(), window)):
        dbt_runner.parse_code_location(manifest_json)
        assert manifest_json.exists() and (manifest_json.parent / "partial_parse.msgpack").exists()
        parsed = dbt_runner.parsed_manifest(manifest_json, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # no second parse
    # The window is rendered into the incremental models' delete hooks at parse time.
    hooks = [
        hook.sql
        for node in parsed.nodes.values()
        if node.resource_type == "model"
        for hook in node.config.pre_hook
    ]
    assert any("2026-06-30" in sql for sql in hooks)


def test_a_step_of_a_dbt_only_run_returns_when_its_own_nodes_have_finished() -> None:
    """With until_own_nodes_finish, a step stops pulling dbt's stream once each of its nodes
    has finished; the next step gets what was kept for it and reads on; a node dbt never runs
    keeps its step to dbt's exit, as before."""
    pulled: list[str] = []
    order = ["model.userops.a1", "model.userops.b1", "test.userops.a1_test", "model.userops.b2"]

    def stream():
        for unique_id in order:
            pulled.append(unique_id)
            yield node_event(unique_id, "NodeStart")
            yield node_event(unique_id)

    owners = {
        "model.userops.a1": "a",
        "test.userops.a1_test": "a",
        "model.userops.b1": "b",
        "model.userops.b2": "b",
    }
    reported = {
        "a": {"model.userops.a1", "test.userops.a1_test"},
        "b": {"model.userops.b1", "model.userops.b2", "model.userops.never_run"},
    }
    build = dbt_blocks.BlockBuild(
        invocation=None, stream=stream(), owners=owners, ops=["a", "b"], reported=reported
    )
    step_a = [event["data"]["node_info"]["unique_id"] for event in build.events_for("a", True)]
    assert step_a == ["model.userops.a1"] * 2 + ["test.userops.a1_test"] * 2
    assert pulled == order[:3]  # b2 is not pulled yet: dbt goes on building it
    assert not build.exhausted
    step_b = [event["data"]["node_info"]["unique_id"] for event in build.events_for("b", True)]
    assert step_b == ["model.userops.b1"] * 2 + ["model.userops.b2"] * 2
    assert build.exhausted  # never_run: b waited for dbt's exit
    assert not build.has_reported("b")


def test_without_the_flag_a_step_reads_dbts_stream_to_its_end() -> None:
    build = dbt_blocks.BlockBuild(
        invocation=None,
        stream=iter([node_event("model.userops.a1"), node_event("model.userops.b1")]),
        owners={"model.userops.a1": "a", "model.userops.b1": "b"},
        ops=["a", "b"],
        reported={"a": {"model.userops.a1"}},
    )
    assert len(list(build.events_for("a"))) == 1
    assert build.exhausted
    assert build.buffered["b"] == [node_event("model.userops.b1")]
