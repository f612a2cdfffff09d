"""A day-partitioned run after a new load day arrives gives exactly the tables a full build of
the same files gives: the incremental models (base and staged events by load day, the user-day
aggregates by business day) recompute only their window and lose or double nothing, including
when an old day's file is delivered again inside the window."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import SAMPLE_END_DATE, Build

from userops.dbt import run_dbt

LAST_DAY = SAMPLE_END_DATE.isoformat()
DAY_VARS = {"start_date": LAST_DAY, "end_date": "2026-07-01"}
TABLES = ("users", "events", "orders", "order_items", "marketing_spend")
# Set from the wall clock at build time, so never equal between two builds; a hash of the file
# path (compared through source_file instead).
SKIPPED_COLUMNS = {"quarantined_at", "quarantined_row_key"}
# Columns holding landing file paths: the two builds read copies in different folders.
PATH_COLUMNS = {"source_file", "raw_record"}
# Tables that hold quarantined raw rows: a replayed file adds to them on purpose.
QUARANTINE_TABLES = {"base_landing__events", "quarantined_rows", "landing_row_accounting"}


def _tables(path: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(
            "select schema_name, table_name from duckdb_tables()"
            " where schema_name in ('staging', 'intermediate', 'marts') order by all"
        ).fetchall()


def differing_tables(
    left: tuple[Path, Path], right: tuple[Path, Path], skip: set[str] = frozenset()
) -> dict[str, int]:
    """Tables whose rows differ (as multisets), with the number of rows in either but not both.
    `left` and `right` are (warehouse, landing folder it was built from)."""
    connection = duckdb.connect()
    connection.execute(f"attach '{left[0]}' as left_db (read_only)")
    connection.execute(f"attach '{right[0]}' as right_db (read_only)")
    landing = {"left_db": str(left[1]), "right_db": str(right[1])}
    differences = {}
    for schema, table in _tables(left[0]):
        if table in skip:
            continue
        columns = [
            name
            for (name,) in connection.execute(
                "select column_name from duckdb_columns() where database_name = 'left_db'"
                " and schema_name = ? and table_name = ? order by column_index",
                [schema, table],
            ).fetchall()
            if name not in SKIPPED_COLUMNS
        ]

        def listed(database: str, columns: list[str] = columns) -> str:
            return ", ".join(
                f"replace(\"{name}\", '{landing[database]}', '<landing>')"
                if name in PATH_COLUMNS
                else f'"{name}"'
                for name in columns
            )

        count = 0
        for first, second in (("left_db", "right_db"), ("right_db", "left_db")):
            count += connection.execute(
                f"select count(*) from (select {listed(first)} from {first}.{schema}.{table}"
                f" except all select {listed(second)} from {second}.{schema}.{table})"
            ).fetchone()[0]
        if count:
            differences[f"{schema}.{table}"] = count
    return differences


@pytest.fixture(scope="module")
def incremental(sample_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's files without their last load day, built in full; then that day arrives and
    the day's partitioned run builds it."""
    root = tmp_path_factory.mktemp("incremental")
    landing = root / "landing"
    shutil.copytree(sample_build.landing_dir, landing)
    held = root / "held"
    for table in TABLES:
        day = landing / table / f"dt={LAST_DAY}"
        if day.exists():
            shutil.move(day, held / table / day.name)
    warehouse = root / "warehouse.duckdb"
    paths = {
        "landing_dir": landing,
        "warehouse_path": warehouse,
        "capture": True,
        "target_path": root / "target",
    }
    full = run_dbt(["build", "--full-refresh"], **paths)
    assert full.returncode == 0, full.stdout[-3000:]
    for folder in held.glob("*/dt=*"):
        shutil.move(folder, landing / folder.parent.name / folder.name)
    day_run = run_dbt(["build"], dbt_vars=DAY_VARS, **paths)
    assert day_run.returncode == 0, day_run.stdout[-3000:]
    return root


def test_partitioned_run_after_a_new_day_equals_a_full_build(
    sample_build: Build, incremental: Path
) -> None:
    tables = _tables(incremental / "warehouse.duckdb")
    assert ("staging", "base_landing__events") in tables
    assert ("intermediate", "int_user_days_aggregated") in tables
    assert len(tables) > 30
    assert differing_tables(*_pair(incremental, sample_build)) == {}


def test_partitioned_run_reads_only_the_new_days_files(incremental: Path) -> None:
    """The window's earlier files (load days from start_date - lookback (3) on) were loaded
    before and are unchanged, so the day's run read only the new day's file; the equality test
    above shows nothing was lost by not re-reading them."""
    compiled = next((incremental / "target" / "compiled").rglob("base_landing__events.sql"))
    new_file = incremental / "landing" / "events" / f"dt={LAST_DAY}" / "part-0.parquet"
    assert f"where filename in ('{new_file}')" in compiled.read_text()


def test_partitioned_run_recomputes_only_its_as_of_dates(incremental: Path) -> None:
    """The as-of models of the day's run read only the as-of dates from start_date - lookback
    (3) on; the equality test above shows the rest of their rows, and the deletion of yesterday's
    latest data day, are right."""
    compiled = incremental / "target" / "compiled"
    window = (
        "where as_of_date >= (cast('2026-06-30' as date) + cast(-3 as bigint) * interval 1 day)"
    )
    for model, reads in (("int_users_as_of_aggregated", 1), ("int_user_tags_evaluated", 2)):
        text = " ".join(next(compiled.rglob(f"{model}.sql")).read_text().split())
        assert text.count(window) == reads, model


def test_replayed_old_day_inside_the_window_is_quarantined_as_duplicates(
    sample_build: Build, incremental: Path
) -> None:
    """An old day's events file delivered again as part of the newest load day: each of its rows
    that passes the checks (staged, or a duplicate already) is a `duplicate` of a row loaded
    earlier, the others keep their check's reason, and every mart stays as it was."""
    landing = incremental / "landing"
    original = landing / "events" / "dt=2026-06-20" / "part-0.parquet"
    replay = landing / "events" / f"dt={LAST_DAY}" / "part-0-replay-2026-06-20.parquet"
    shutil.copy(original, replay)
    warehouse = incremental / "warehouse.duckdb"
    result = run_dbt(
        ["build"],
        dbt_vars=DAY_VARS,
        landing_dir=landing,
        warehouse_path=warehouse,
        capture=True,
        target_path=incremental / "target",
    )
    assert result.returncode == 0, result.stdout[-3000:]

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        reasons = {
            path: dict(
                connection.execute(
                    "select coalesce(quarantine_reason, 'staged'), count(*)"
                    " from staging.base_landing__events where source_file = ? group by all",
                    [str(path)],
                ).fetchall()
            )
            for path in (original, replay)
        }
        accounting = connection.execute(
            "select raw_rows, staged_rows + quarantined_rows from marts.landing_row_accounting"
            " where table_name = 'events'"
        ).fetchall()
    before = reasons[original]
    assert before["staged"] > 100 and len(before) >= 3  # staged, duplicates and check failures
    expected = {reason: rows for reason, rows in before.items() if reason != "staged"}
    expected["duplicate"] = before["staged"] + before.get("duplicate", 0)
    assert reasons[replay] == expected
    assert sum(reasons[replay].values()) == raw_rows_of(original)
    raw_rows = raw_rows_of(landing / "events" / "*" / "*.parquet")
    assert accounting == [(raw_rows, raw_rows)]
    assert differing_tables(*_pair(incremental, sample_build), skip=QUARANTINE_TABLES) == {}


def _pair(incremental: Path, reference: Build) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    return (
        (incremental / "warehouse.duckdb", incremental / "landing"),
        (reference.warehouse_path, reference.landing_dir),
    )


def raw_rows_of(path: Path) -> int:
    with duckdb.connect() as connection:
        return connection.execute(f"select count(*) from read_parquet('{path}')").fetchone()[0]


def test_changed_file_inside_the_window_makes_the_run_reread_the_window(
    incremental: Path,
) -> None:
    """A file of the window rewritten after it was loaded (here: a day's events delivered again
    with a tenth of its rows missing) is not "only new files": the run deletes the window's rows
    and reads its files again, so the table holds exactly the file's rows as they are now."""
    import pandas as pd

    changed = incremental / "landing" / "events" / "dt=2026-06-28" / "part-0.parquet"
    frame = pd.read_parquet(changed)
    frame.iloc[: len(frame) * 9 // 10].to_parquet(changed, index=False)
    warehouse = incremental / "warehouse.duckdb"
    result = run_dbt(
        ["build", "--exclude-resource-type", "unit_test"],
        dbt_vars=DAY_VARS,
        landing_dir=incremental / "landing",
        warehouse_path=warehouse,
        capture=True,
        target_path=incremental / "target",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    compiled = next((incremental / "target" / "compiled").rglob("base_landing__events.sql"))
    assert "'/dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/', 1) >= '2026-06-27'" in compiled.read_text()
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        (loaded,) = connection.execute(
            "select count(*) from staging.base_landing__events where source_file = ?",
            [str(changed)],
        ).fetchone()
    assert loaded == raw_rows_of(changed) == len(frame) * 9 // 10


def test_partitioned_run_after_the_landing_folder_moved_loses_and_doubles_nothing(
    incremental: Path,
) -> None:
    """Rows are matched to their load day by the `dt=` folder in their path, not by the whole
    path, so a run reading the same files from another place replaces the window's rows."""
    moved = incremental / "landing-moved"
    shutil.move(incremental / "landing", moved)
    warehouse = incremental / "warehouse.duckdb"
    result = run_dbt(
        ["build", "--exclude-resource-type", "unit_test"],
        dbt_vars=DAY_VARS,
        landing_dir=moved,
        warehouse_path=warehouse,
        capture=True,
        target_path=incremental / "target",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    raw_rows = raw_rows_of(moved / "events" / "*" / "*.parquet")
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows, distinct_ids, in_window_elsewhere = connection.execute(
            "select count(*), count(distinct event_id),"
            " count(*) filter (where source_file like ?"
            " and source_file >= ?) from staging.base_landing__events",
            [f"{incremental / 'landing'}/%", f"{incremental / 'landing'}/events/dt=2026-06-27"],
        ).fetchone()
    assert rows == raw_rows
    assert in_window_elsewhere == 0
    assert distinct_ids < rows  # the duplicates are still there, once each
    # The loaded files are not where they were: the run re-read the whole load window.
    compiled = next((incremental / "target" / "compiled").rglob("base_landing__events.sql"))
    assert "'/dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/', 1) >= '2026-06-27'" in compiled.read_text()


def test_segment_value_first_seen_in_the_new_day_gets_every_older_day(
    sample_landing: Path, tmp_path: Path
) -> None:
    """int_metric_segment_days_aggregated holds every day for every segment value. A value that
    appears for the first time in the day's run (a user signing up through a new acquisition
    channel) gets zero rows for the days before the recomputed ones, exactly as a full build of
    the same files has them."""
    import pandas as pd

    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    users_file = landing / "users" / f"dt={LAST_DAY}" / "part-0.parquet"
    users = pd.read_parquet(users_file)
    newcomer = users.iloc[[0]].copy()
    newcomer["user_id"] = "u_tv_newcomer"
    newcomer["acquisition_channel"] = "tv_campaign"
    pd.concat([users, newcomer]).to_parquet(users_file, index=False)
    # The model and what it reads; tests only where every parent is built (a relationships
    # test to an unselected model would fail).
    selection = [
        "--select",
        "+int_metric_segment_days_aggregated",
        "--indirect-selection",
        "cautious",
        "--exclude-resource-type",
        "unit_test",
    ]

    def build(name: str, dbt_vars: dict | None = None, folder: Path = landing) -> Path:
        warehouse = tmp_path / f"{name}.duckdb"
        result = run_dbt(
            ["build", *selection],
            dbt_vars=dbt_vars,
            landing_dir=folder,
            warehouse_path=warehouse,
            capture=True,
            target_path=tmp_path / f"target-{name}",
        )
        assert result.returncode == 0, result.stdout[-3000:]
        return warehouse

    reference = build("full")
    held = tmp_path / "held"
    for table in TABLES:
        day = landing / table / f"dt={LAST_DAY}"
        if day.exists():
            shutil.move(day, held / table / day.name)
    incremental = build("incremental")
    for folder in held.glob("*/dt=*"):
        shutil.move(folder, landing / folder.parent.name / folder.name)
    build("incremental", DAY_VARS)

    with duckdb.connect(str(incremental), read_only=True) as connection:
        days = connection.execute(
            "select count(*), min(metric_date), sum(new_users)"
            " from intermediate.int_metric_segment_days_aggregated"
            " where segment_value = 'tv_campaign'"
        ).fetchone()
    assert days == (45, SAMPLE_END_DATE - timedelta(days=44), 1)
    assert differing_tables((incremental, landing), (reference, landing)) == {}
