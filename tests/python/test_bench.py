"""The benchmark: its table (medians of the repeats and ratios of those medians), and the race's
four tools, which must give the marts' own figures on the same files."""

from __future__ import annotations

import shutil
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import Build

from userops.bench import is_failure, median_step, summarise, users_for
from userops.bench_race import (
    RaceOptions,
    compare,
    run_limited,
    run_tool,
    summarise_race,
)


def record(step: str, seconds: float, peak: float = 100.0, code: int = 0, **detail) -> dict:
    return {
        "scale": detail.pop("scale", "1m"),
        "step": step,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "returncode": code,
        "detail": detail,
    }


def test_median_step_takes_the_middle_repeat_and_fails_if_any_failed() -> None:
    step = median_step([record("full", 30.0), record("full", 10.0, 300.0), record("full", 20.0)])
    assert step == {"seconds": 20.0, "peak_rss_mb": 100.0, "returncode": 0, "repeats": 3}
    assert median_step([record("full", 1.0), record("full", 2.0, code=1)])["returncode"] == 1
    assert median_step([]) is None


def test_summarise_gives_ratios_of_medians() -> None:
    records = [
        record("generate", 4.0, rows={"events": 900, "orders": 100}),
        record("floor", 0.5),
        record("floor", 0.4),
        record("floor", 0.6),
        # Full 20, 40, 30 -> 30; day run 3, 9, 6 -> 6: 20 %, and 60x the floor's median 0.5.
        record("full", 20.0, dbt_threads=2),
        record("full", 40.0, dbt_threads=2),
        record("full", 30.0),
        record("incremental", 3.0),
        record("incremental", 9.0),
        record("incremental", 6.0),
        # The Dagster day run next to it: 7.2 / 6 = 1.20.
        record("dagster_day", 7.2),
        # The race's pandas run fills the pandas column: 30 / 12 = 2.50.
        record("race_pandas", 12.0, outcome="ok"),
        record("dbt_startup", 7.0),
        record("dbt_startup", 5.0),
        record("dbt_startup", 9.0),
    ]
    row = summarise(records).splitlines()[2]
    assert row == (
        "| 1m | 900 | 1,000 | 3 | 2 | 0.5 (100) | 30.0 (100) | 60.0 | 6.0 (100) | 20.0 % |"
        " 7.2 (100) | 1.20 | 7.0 | 12.0 (100) | 2.50 |"
    )


def test_summarise_writes_what_stopped_pandas_and_no_ratio() -> None:
    records = [
        record("full", 600.0, scale="100m"),
        record(
            "race_pandas",
            40.0,
            8300.0,
            -9,
            outcome="out_of_memory",
            note="out of memory at 8.0 GB (the ceiling)",
            scale="100m",
        ),
    ]
    cells = summarise(records).splitlines()[2].split(" | ")
    assert cells[-2:] == [
        "out of memory at 8.0 GB (the ceiling) after 40 s (peak 8,300 MB)",
        "– |",
    ]


def test_users_for_scales_events_to_users() -> None:
    # 58,000 users over 120 days gave 9.84 M events (1.414 per user and day).
    assert users_for(10_000_000) == 58_934  # 10 M / (120 x 1.414) = 58,934.5
    assert users_for(10) == 100


def test_race_table_gives_medians_stops_and_ratios() -> None:
    equal = {
        "agrees": True,
        "dau_days": 120,
        "retention_cells": 10,
        "rfm_users": 5893,
    }
    records = [
        record("race_duckdb", 4.0, 500.0, outcome="ok", agreement=equal, load_average_before=1.5),
        record("race_duckdb", 6.0, 700.0, outcome="ok", agreement=equal, load_average_before=1.0),
        record("race_dbt", 10.0, 900.0, outcome="ok", agreement=equal, load_average_before=2.0),
        record(
            "race_pandas",
            40.2,
            8300.0,
            -9,
            outcome="out_of_memory",
            note="out of memory at 8.0 GB (the ceiling)",
            scale="100m",
        ),
        record("race_dbt", 31.0, 800.0, outcome="ok", scale="100m"),
    ]
    lines = summarise_race(records, ["1m", "10m", "100m"]).splitlines()
    assert lines[0] == "| tool | 1m s (peak MB) | 100m s (peak MB) |"
    assert (
        lines[2]
        == "| pandas | – | out of memory at 8.0 GB (the ceiling) after 40 s (peak 8,300 MB) |"
    )
    # DuckDB: median of 4 and 6 s, of 500 and 700 MB.
    assert lines[3] == "| duckdb | 5.0 (600) | – |"
    assert lines[4] == "| dbt | 10.0 (900) | 31.0 (800) |"
    assert lines[5] == "| dbt / duckdb | 2.00× | – |"
    assert "| duckdb | 1m | 1 | equal: 120 days, 10 cells, 5,893 users | 1.5 |" in lines
    # A tool stopped at the ceiling is a result, not a failed benchmark; a crash is a failure.
    assert not is_failure(records[3])
    assert is_failure(record("race_polars", 1.0, code=1, outcome="failed"))
    assert is_failure(record("full", 1.0, code=2))


def test_run_limited_stops_a_process_at_the_memory_ceiling(tmp_path: Path) -> None:
    grow = "x = []\nwhile True:\n    x.append(bytearray(10_000_000))\n"
    run = run_limited(
        [sys.executable, "-c", grow], env={}, log=tmp_path / "grow.log", memory_ceiling_mb=200
    )
    assert run.outcome == "out_of_memory"
    assert run.peak_rss_mb > 200
    assert run.note == "out of memory at 0.2 GB (the ceiling)"


def test_run_limited_stops_a_process_at_the_time_limit(tmp_path: Path) -> None:
    run = run_limited(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={},
        log=tmp_path / "sleep.log",
        timeout_s=60 * 0.02,
    )
    assert run.outcome == "timeout"
    assert run.seconds < 30
    assert run.note == "> 0 min"


def test_run_limited_reports_a_failure_with_its_exit_code(tmp_path: Path) -> None:
    run = run_limited([sys.executable, "-c", "raise SystemExit(3)"], env={}, log=tmp_path / "l")
    assert (run.outcome, run.returncode, run.note) == ("failed", 3, "failed (exit 3)")


# --- the four tools on the session sample (400 users, 45 days, 2 % bad rows) ------------------


@pytest.mark.parametrize("tool", ["pandas", "polars", "duckdb", "dbt"])
def test_race_tool_agrees_with_the_marts_of_the_sample_build(
    tool: str, sample_build: Build, tmp_path: Path
) -> None:
    assert sample_build.result.returncode == 0
    run, agreement, _ = run_tool(
        tool, sample_build.landing_dir, sample_build.warehouse_path, tmp_path, RaceOptions()
    )
    assert run.outcome == "ok", (tmp_path / f"{tool}.log").read_text()[-3000:]
    assert agreement["agrees"], agreement
    assert agreement["dau_days"] == 45
    assert agreement["rfm_users"] == 400


def test_compare_counts_each_difference(sample_build: Build, tmp_path: Path) -> None:
    """One DAU off by 3, one retention cell missing, one user's segment changed and one user
    extra: each is counted where it belongs."""
    out = tmp_path / "changed"
    run, agreement, _ = run_tool(
        "duckdb", sample_build.landing_dir, sample_build.warehouse_path, tmp_path, RaceOptions()
    )
    assert agreement["agrees"]
    shutil.copytree(tmp_path / "duckdb", out)
    connection = duckdb.connect()
    edits = {
        "dau.parquet": "select metric_date, dau + case when metric_date = (select min(metric_date)"
        " from t) then 3 else 0 end as dau from t",
        "monthly_retention.parquet": "select * from t where period_number > 0"
        " or cohort_month <> (select min(cohort_month) from t)",
        "rfm_segments.parquet": "select user_id, as_of_date, case when user_id = (select"
        " min(user_id) from t) then 'x' else rfm_segment end as rfm_segment from t"
        " union all select 'nobody', max(as_of_date), '未购买' from t",
    }
    for name, sql in edits.items():
        connection.execute(f"create or replace temp table t as from '{out / name}'")
        connection.execute(f"copy ({sql}) to '{out / name}' (format parquet)")
    changed = compare(out, sample_build.warehouse_path)
    assert not changed["agrees"]
    assert (changed["dau_days"], changed["dau_days_equal"], changed["dau_max_abs_diff"]) == (
        45,
        44,
        3,
    )
    cells = agreement["retention_cells"]
    assert (changed["retention_cells"], changed["retention_cells_equal"]) == (cells, cells - 1)
    assert changed["retention_cells_only_marts"] == 1
    assert (changed["rfm_users"], changed["rfm_users_equal"], changed["rfm_users_only_tool"]) == (
        401,
        399,
        1,
    )


# --- a hand-made landing folder where the rules change the figures -----------------------------
# Removing any one rule from the DuckDB script (missing keys and values, bad JSON, the timestamp
# range of events and users, the file order of duplicates and replays, lower-casing event names,
# unknown statuses, negative amounts, the business time zone) changed at least one of the three
# outputs on these files; only the city-tier check changes none (u7 is in the population either
# way).

# Timestamps are UTC; business days are Asia/Shanghai (UTC+8).
EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("event_name", pa.string()),
        ("session_id", pa.string()),
        ("properties", pa.string()),
    ]
)
ORDER_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("user_id", pa.string()),
        ("ordered_at", pa.timestamp("us")),
        ("status", pa.string()),
        ("amount", pa.string()),
        ("discount", pa.decimal128(12, 2)),
    ]
)
USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("signup_at", pa.timestamp("us")),
        ("birth_year", pa.int32()),
        ("city_tier", pa.int32()),
    ]
)
T = datetime.fromisoformat


def event(event_id, user_id, at, name="app_open", properties=None):
    return (event_id, user_id, T(at) if at else None, name, "s1", properties)


def order(order_id, user_id, at, amount, status="paid", discount=None):
    return (order_id, user_id, T(at), status, amount, Decimal(discount) if discount else None)


LANDING_FILES = {
    "users/dt=2026-03-01/part-0.parquet": (
        USER_SCHEMA,
        [
            *[(f"u{n}", T("2026-03-01 01:00"), 1990, 1) for n in range(1, 7)],
            ("   ", T("2026-03-01 01:00"), 1990, 1),  # missing_key
            (
                "u7",
                T("2026-03-01 01:00"),
                1990,
                7,
            ),  # invalid city tier: u7 is derived from activity
            ("u8", T("2099-01-01 01:00"), 1990, 1),  # bad_timestamp: u8 is derived too
        ],
    ),
    # A later copy of u1 signing up after the latest data day: the first file wins.
    "users/dt=2026-03-02/part-0.parquet": (USER_SCHEMA, [("u1", T("2026-04-20 01:00"), 1990, 1)]),
    "events/dt=2026-03-01/part-0.parquet": (
        EVENT_SCHEMA,
        [
            event("e1", "u1", "2026-03-01 02:00"),
            # 17:30 UTC on 1 March is 2 March in Shanghai.
            event("e3", "u2", "2026-03-01 17:30", "page_view"),
            event("e11", None, "2026-03-01 03:00"),  # missing_key
            event(
                "e12", "u1", "1989-03-01 03:00"
            ),  # bad_timestamp: would start the calendar in 1989
            event("e14", "u2", "2026-03-01 04:00", None),  # missing_value
        ],
    ),
    "events/dt=2026-03-03/part-0.parquet": (EVENT_SCHEMA, [event("e7", "u4", "2026-03-03 02:00")]),
    "events/dt=2026-03-04/part-0.parquet": (EVENT_SCHEMA, [event("e8", "u5", "2026-03-04 03:00")]),
    # A replayed copy of the same day with the same ids: "part-0 (1)" sorts before "part-0.parquet"
    # by full name, after "part-0" without the extension, so the original wins.
    "events/dt=2026-03-04/part-0 (1).parquet": (
        EVENT_SCHEMA,
        [event("e8", "u5", "2026-04-06 03:00")],
    ),
    "events/dt=2026-03-05/part-0.parquet": (
        EVENT_SCHEMA,
        [
            event("e5", "u3", "2026-03-05 02:00", "search", '{"query": '),  # unparseable JSON
            event("e9", "u6", "1989-05-05 02:00", "login"),  # invalid first copy of e9
        ],
    ),
    "events/dt=2026-03-06/part-0.parquet": (
        EVENT_SCHEMA,
        [event("e9", "u6", "2026-03-06 02:00", "login")],  # the valid copy counts
    ),
    "events/dt=2026-03-07/part-0.parquet": (
        EVENT_SCHEMA,
        [
            event("e15", "u7", "2026-03-07 02:00", "app_open", '{"category": "dairy"}'),
            event("e4", "u2", "2026-03-10 02:00", "push_receive"),  # not an active event
            event("e13", "u2", "2026-03-13 02:00", "  APP_OPEN "),  # trimmed, lower-cased
            event("e16", "u8", "2026-03-09 02:00"),
        ],
    ),
    # The same id again in a later file: the first file wins (u4 stays active on 3 March only).
    "events/dt=2026-03-20/part-0.parquet": (EVENT_SCHEMA, [event("e7", "u4", "2026-03-20 02:00")]),
    "events/dt=2026-04-02/part-0.parquet": (EVENT_SCHEMA, [event("e6", "u3", "2026-04-02 02:00")]),
    "events/dt=2026-04-05/part-0.parquet": (EVENT_SCHEMA, [event("e2", "u1", "2026-04-05 02:00")]),
    # The latest data day has only an unknown event: a day with no active user.
    "events/dt=2026-04-10/part-0.parquet": (
        EVENT_SCHEMA,
        [event("e10", "u1", "2026-04-10 02:00", "brand_new_event")],
    ),
    "orders/dt=2026-01-05/part-0.parquet": (
        ORDER_SCHEMA,
        [order("o9", "u6", "2026-01-05 03:00", "40.00")],  # outside the 90-day window
    ),
    "orders/dt=2026-03-01/part-0.parquet": (
        ORDER_SCHEMA,
        [
            order("o1", "u1", "2026-03-01 03:00", "100.00"),
            order("o5", "u4", "2026-03-01 03:00", "12,50"),  # unparseable amount
            order("o6", "u4", "2026-03-01 03:00", "-5.00"),  # negative_amount
            order("o7", "u10", "2026-03-01 03:00", "9.00", "PAID?"),  # invalid_value: no u10
        ],
    ),
    "orders/dt=2026-03-07/part-0.parquet": (
        ORDER_SCHEMA,
        [
            order("o11", "u7", "2026-03-07 03:00", "10.00", discount="-1.00"),  # negative discount
            order("o8", "u9", "2026-03-08 03:00", "15.00"),  # u9 exists only through this order
            order("o3", "u2", "2026-03-12 03:00", " 20.00 "),
        ],
    ),
    "orders/dt=2026-04-02/part-0.parquet": (
        ORDER_SCHEMA,
        [
            order("o4", "u3", "2026-04-02 03:00", "30.00", "cancelled"),  # not paid
            order("o2", "u1", "2026-04-05 03:00", "50.00"),
            order("o1", "u1", "2026-04-05 04:00", "999.00"),  # a later copy of o1
        ],
    ),
}


def write_landing(landing: Path) -> None:
    for name, (schema, rows) in LANDING_FILES.items():
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(zip(*rows, strict=True))
        pq.write_table(
            pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema),
            path,
        )


# By hand from the rows above. DAU: 1 on 5 Jan (u6's order), 1, 2, 3, 4 March (u1, u2, u4,
# u5), 0 on 5 March (u3's only event has bad JSON), 1 on 6, 7, 8, 9, 12 and 13 March (u6, u7,
# u9, u8, u2's order, u2's event), 0 on 10 and 20 March (a push receipt; e7's later copy), 1 on
# 2 and 5 April (u3, u1), 0 on 6 April (e8's replay) and 10 April (an unknown event, the
# latest data day).
EXPECTED_DAU = {
    date(2026, 1, 5): 1,
    **{date(2026, 3, day): 1 for day in (1, 2, 3, 4, 6, 7, 8, 9, 12, 13)},
    date(2026, 4, 2): 1,
    date(2026, 4, 5): 1,
}
# Cohorts by first active month: January {u6} (active again in March), March {u1, u2, u4,
# u5, u7, u8, u9} (u1 again in April), April {u3}; cells up to the period starting by 10 April.
EXPECTED_RETENTION = [
    (date(2026, 1, 1), 0, 1, 1),
    (date(2026, 1, 1), 1, 1, 0),
    (date(2026, 1, 1), 2, 1, 1),
    (date(2026, 1, 1), 3, 1, 0),
    (date(2026, 3, 1), 0, 7, 7),
    (date(2026, 3, 1), 1, 7, 1),
    (date(2026, 4, 1), 0, 1, 1),
]
# RFM on 10 April. Buyers: u1 recency 5, 2 orders, 150.00; u2 29, 1, 20.00; u9 33, 1, 15.00;
# u6 95, 0 (its order is older than 90 days), 0.00. Medians: recency 31, frequency 1,
# monetary 17.50; high = recency below, frequency or monetary above.
EXPECTED_RFM = {
    "u1": "重要价值",
    "u2": "重要发展",
    "u9": "一般挽留",
    "u6": "一般挽留",
    **{user: "未购买" for user in ("u3", "u4", "u5", "u7", "u8")},
}


@pytest.fixture(scope="module")
def rules_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The hand-made files and dbt's build of the three marts' lineage on them."""
    root = tmp_path_factory.mktemp("race_rules")
    write_landing(root / "landing")
    run, _, _ = run_tool("dbt", root / "landing", None, root, RaceOptions(keep_outputs=True))
    assert run.outcome == "ok", (root / "dbt.log").read_text()[-4000:]
    return root / "landing", root / "dbt" / "warehouse.duckdb"


def test_marts_of_the_hand_made_files_are_the_hand_computed_figures(
    rules_build: tuple[Path, Path],
) -> None:
    _, warehouse = rules_build
    connection = duckdb.connect(str(warehouse), read_only=True)
    dau = dict(connection.execute("select metric_date, dau from marts.daily_metrics").fetchall())
    assert len(dau) == 96  # 5 January to 10 April
    assert {day: n for day, n in dau.items() if n} == EXPECTED_DAU
    retention = connection.execute(
        "select cohort_start_date, period_number, cohort_size, retained_users"
        " from marts.retention_cohorts where cohort_grain = 'month' and retention_type ="
        " 'activity' and cohort_basis = 'first_time' and retention_mode = 'classic'"
        " and segment_dimension = 'overall' order by all"
    ).fetchall()
    assert retention == EXPECTED_RETENTION
    segments = dict(
        connection.execute(
            "select user_id, rfm_segment from marts.user_layers where as_of_date = '2026-04-10'"
        ).fetchall()
    )
    assert segments == EXPECTED_RFM


@pytest.mark.parametrize("tool", ["pandas", "polars", "duckdb"])
def test_race_script_applies_every_rule(
    tool: str, rules_build: tuple[Path, Path], tmp_path: Path
) -> None:
    landing, warehouse = rules_build
    run, agreement, _ = run_tool(tool, landing, warehouse, tmp_path, RaceOptions())
    assert run.outcome == "ok", (tmp_path / f"{tool}.log").read_text()[-3000:]
    assert agreement["agrees"], agreement
    assert (agreement["dau_days"], agreement["retention_cells"], agreement["rfm_users"]) == (
        96,
        7,
        9,
    )
