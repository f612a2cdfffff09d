"""Dagster's SQLite event log, written without an fsync per event, over kept-open connections.

A run of the full job writes ~2,500 events (684 planned checks, their evaluations and outputs, 108
materializations). Dagster's SQLite storage opens a connection per event, commits, and closes it;
in WAL mode each commit fsyncs the log and each close checkpoints it into the database file with
another fsync. On this machine's disk that was ~30 s of a demo run's ~150 s, and 31 s before the
run's first step (the planned events alone); `synchronous=off` took that phase to 4.7 s.

`synchronous` is SQLite's own durability setting (https://sqlite.org/pragma.html#pragma_synchronous):
with `off`, a killed process loses nothing (the data is handed to the OS), but a power loss or an
OS crash can lose or corrupt this run history - never the warehouse, which DuckDB writes itself.
That is the right trade for the project-local instance `make dagster` and `make demo` use;
`synchronous: full` in dagster.yaml restores Dagster's default, and a production deployment
uses Postgres storage anyway.

Dagster's storage also opens, commits and closes a connection for every write (three for a check
event): 6.0 ms per planned check event with `off`; a connection kept open per shard takes it to
2.3 ms (a run of the full job stores ~2,500 events).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import Enum, EnumValue, Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

SYNCHRONOUS_MODES = ("off", "normal", "full")
MAX_OPEN_SHARDS = 4


def default_base_dir() -> str:
    """Where Dagster's default storage keeps run event logs: $DAGSTER_HOME/history/runs."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("DAGSTER_HOME is not set: the event log storage needs a base_dir")
    return os.path.join(os.path.abspath(home), "history", "runs")


class UnsyncedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with `pragma synchronous` (default `off`) and one kept-open
    connection per shard (the index and the MAX_OPEN_SHARDS most recent runs).

    dagster.yaml:

        event_log_storage:
          module: orchestration.event_log_storage
          class: UnsyncedSqliteEventLogStorage
          config:
            synchronous: "off"     # off | normal | full (Dagster's default)
            base_dir: ...          # optional; default $DAGSTER_HOME/history/runs
    """

    def __init__(
        self,
        base_dir: str,
        synchronous: str = "off",
        inst_data: ConfigurableClassData | None = None,
    ):
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self._synchronous = synchronous
        self._engines: dict[str, Engine] = {}
        self._present_tables: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "synchronous": Field(
                Enum("synchronous", [EnumValue(mode) for mode in SYNCHRONOUS_MODES]),
                is_required=False,
                default_value="off",
            ),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> UnsyncedSqliteEventLogStorage:
        return cls(
            base_dir=config_value.get("base_dir") or default_base_dir(),
            synchronous=config_value.get("synchronous", "off"),
            inst_data=inst_data,
        )

    @property
    def synchronous(self) -> str:
        return self._synchronous

    # SqliteEventLogStorage._connect (dagster 1.13) with a kept-open connection per shard and
    # the pragma on connect. After a write to a run's shard the log is checkpointed into its .db
    # file, which is what the UI's live run view watches (Dagster's own storage got that from
    # closing the connection, which checkpoints when it is the last one).
    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                sqlite = conn.connection.dbapi_connection
                changes = sqlite.total_changes
                with conn.begin():
                    yield conn
                # After writes only: a reader (the UI) must not checkpoint, or each checkpoint
                # would wake its own watcher.
                if shard != INDEX_SHARD_NAME and sqlite.total_changes != changes:
                    conn.exec_driver_sql("pragma wal_checkpoint(passive)")

    def _engine(self, shard: str) -> Engine:
        """The shard's engine (one connection), kept for the most recent MAX_OPEN_SHARDS runs:
        a long-lived UI process reads many runs and must not keep a file open for each."""
        engines = self._engines
        engine = engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,
                # One connection, used under self._db_lock by whichever thread holds it.
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", self._set_pragmas)
        engines[shard] = engine  # most recent last
        run_shards = [name for name in engines if name != INDEX_SHARD_NAME]
        for name in run_shards[:-MAX_OPEN_SHARDS]:
            engines.pop(name).dispose()
        return engine

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def open_shards(self) -> list[str]:
        return list(self._engines)

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before every asset check event whether the checks table exists, each
        time through a new engine (1,178 times in a 1M-event day run: ~0.8 s). A table that
        exists stays until wipe()."""
        if table_name in self._present_tables:
            return True
        present = super().has_table(table_name)
        if present:
            self._present_tables.add(table_name)
        return present

    def wipe(self) -> None:
        self._present_tables.clear()
        self._dispose_engines()  # the files are deleted: no connection may keep them open
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()

    def _set_pragmas(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"pragma synchronous={self._synchronous}")
