"""The project's Dagster instance: dagster.yaml as `make dagster-home` writes it, and the
SQLite event log without an fsync per event (orchestration/event_log_storage.py)."""

import threading
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

from orchestration.event_log_storage import UnsyncedSqliteEventLogStorage
from orchestration.instance import DAGSTER_YAML, EARLIER_VERSIONS, write_dagster_yaml


def planned(asset: str) -> DagsterEvent:
    return DagsterEvent.build_asset_materialization_planned_event(
        "job", "step", AssetMaterializationPlannedData(AssetKey([asset]), partition=None)
    )


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    write_dagster_yaml(tmp_path)
    return tmp_path


def test_dagster_yaml_is_written_updated_from_earlier_versions_and_kept_when_edited(
    tmp_path: Path,
) -> None:
    assert write_dagster_yaml(tmp_path / "new") == "written"
    assert (tmp_path / "new" / "dagster.yaml").read_text() == DAGSTER_YAML
    assert write_dagster_yaml(tmp_path / "new") == "current"
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "dagster.yaml").write_text(EARLIER_VERSIONS[0])
    assert write_dagster_yaml(earlier) == "updated"
    assert (earlier / "dagster.yaml").read_text() == DAGSTER_YAML
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "dagster.yaml").write_text("telemetry:\n  enabled: false\nrun_retries: {}\n")
    assert write_dagster_yaml(edited) == "kept"
    assert "run_retries" in (edited / "dagster.yaml").read_text()


def test_events_are_stored_in_the_default_folder_without_fsync(home: Path) -> None:
    instance = DagsterInstance.get()
    storage = instance.event_log_storage
    # By name: test_orchestration re-imports the orchestration modules (a new class object).
    assert type(storage).__name__ == UnsyncedSqliteEventLogStorage.__name__
    instance.report_dagster_event(planned("users"), "run-1")
    # Dagster's default place for run event logs, so existing history stays visible.
    assert (home / "history" / "runs" / "run-1.db").exists()
    with storage.run_connection("run-1") as connection:
        assert connection.exec_driver_sql("pragma synchronous").scalar() == 0  # off
        assert connection.exec_driver_sql("pragma journal_mode").scalar() == "wal"
    records = instance.get_records_for_run("run-1").records
    assert [r.event_log_entry.dagster_event_type for r in records] == [
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ]


def test_full_restores_dagsters_default(home: Path) -> None:
    (home / "dagster.yaml").write_text(DAGSTER_YAML.replace('"off"', "full"))
    storage = DagsterInstance.get().event_log_storage
    with storage.run_connection("run-2") as connection:
        assert connection.exec_driver_sql("pragma synchronous").scalar() == 2  # full


def test_a_watcher_sees_each_event_as_it_is_stored(home: Path) -> None:
    """The UI's live run view watches the run's .db file: each event must reach it then, not
    at the end of the run."""
    instance = DagsterInstance.get()
    instance.report_dagster_event(planned("first"), "run-3")
    seen: list[str] = []
    arrived = threading.Event()

    def callback(entry, _cursor):  # noqa: ANN001
        seen.append(entry.dagster_event.asset_key.to_user_string())
        arrived.set()

    instance.event_log_storage.watch("run-3", None, callback)
    try:
        for asset in ("second", "third"):
            arrived.clear()
            instance.report_dagster_event(planned(asset), "run-3")
            assert arrived.wait(10), f"no watch callback for {asset}; seen {seen}"
        assert seen[-1] == "third"
    finally:
        instance.event_log_storage.end_watch("run-3", callback)
        instance.event_log_storage.dispose()


def test_threads_share_a_runs_connection_and_another_process_reads_every_event(
    home: Path,
) -> None:
    instance = DagsterInstance.get()

    def store(prefix: str) -> None:
        for number in range(40):
            instance.report_dagster_event(planned(f"{prefix}{number}"), "run-4")

    threads = [threading.Thread(target=store, args=(prefix,)) for prefix in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A second instance on the same files, as the UI process is, while the first keeps its
    # connections open.
    reader = DagsterInstance.get()
    assert reader.event_log_storage is not instance.event_log_storage
    assert len(reader.get_records_for_run("run-4", limit=1000).records) == 80
    instance.event_log_storage.dispose()


def test_only_the_most_recent_runs_keep_a_connection(home: Path) -> None:
    instance = DagsterInstance.get()
    storage = instance.event_log_storage
    for number in range(7):
        instance.report_dagster_event(planned("users"), f"run-{number}")
    assert sorted(storage.open_shards()) == ["index", "run-3", "run-4", "run-5", "run-6"]
    storage.wipe()  # deletes the run files: their connections are closed first
    assert storage.open_shards() == ["index"]
    assert not list((home / "history" / "runs").glob("run-*.db"))


def test_the_asset_checks_table_is_looked_up_once_it_exists(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster asks whether the checks table exists before every asset check event; the
    storage answers from memory once it does, and asks again after a wipe."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    storage = DagsterInstance.get().event_log_storage
    lookups: list[str] = []
    dagsters = SqliteEventLogStorage.has_table

    def counted(self, table_name: str) -> bool:
        lookups.append(table_name)
        return dagsters(self, table_name)

    monkeypatch.setattr(SqliteEventLogStorage, "has_table", counted)
    assert not storage.has_table("no_such_table")
    assert not storage.has_table("no_such_table")  # a missing table is asked for each time
    assert all(storage.supports_asset_checks for _ in range(50))
    assert lookups == ["no_such_table", "no_such_table", "asset_check_executions"]
    del lookups[:]
    storage.wipe()  # the tables are dropped and made again: asked for again
    assert "asset_check_executions" in lookups
    asked = len(lookups)
    assert storage.supports_asset_checks
    assert len(lookups) == asked
