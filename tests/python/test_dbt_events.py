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
