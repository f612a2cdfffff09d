"""dbt build on generated fixture data: every raw row is staged or quarantined, as injected."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import Build

from userops.dbt import run_dbt

LANDING_TABLES = ["users", "events", "orders", "order_items", "marketing_spend"]
# The operations-loop tables (docs/operations_loop.md), accounted for like the others.
OPS_LANDING_TABLES = [
    "contact_preferences",
    "deliveries",
    "experiment_exposures",
    "feedback",
    "service_tickets",
]


def query(build: Build, sql: str) -> list[tuple]:
    with duckdb.connect(str(build.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_build_passes_without_warnings(sample_build: Build) -> None:
    output = sample_build.result.stdout + sample_build.result.stderr
    assert sample_build.result.returncode == 0, output[-4000:]
    summary = re.search(r"PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)", output)
    assert summary, output[-2000:]
    passed, warned, errored, skipped = map(int, summary.groups())
    assert (warned, errored, skipped) == (0, 0, 0)
    assert passed > 50
    assert "[WARNING]" not in output


def test_every_raw_row_is_staged_or_quarantined(sample_build: Build) -> None:
    rows = query(
        sample_build,
        "select table_name, raw_rows, staged_rows, quarantined_rows"
        " from marts.landing_row_accounting",
    )
    assert sorted(name for name, *_ in rows) == sorted(LANDING_TABLES + OPS_LANDING_TABLES)
    for name, raw, staged, quarantined in rows:
        assert raw > 0, name
        assert raw == staged + quarantined, name
    # Raw counts come from the files, independently of dbt.
    with duckdb.connect() as connection:
        for name, raw, *_ in rows:
            files = f"{sample_build.landing_dir}/{name}/*/*.parquet"
            (direct,) = connection.execute(
                f"select count(*) from read_parquet('{files}', union_by_name=true)"
            ).fetchone()
            assert direct == raw, name


def test_quarantine_matches_injected_defects_exactly(sample_build: Build) -> None:
    found: dict[str, dict[str, int]] = {}
    for table, reason, count in query(
        sample_build,
        "select table_name, quarantine_reason, count(*) from marts.quarantined_rows group by all",
    ):
        found.setdefault(table, {})[reason] = count
    expected = {
        table: {
            reason: n for reason, n in reasons.items() if reason != "unknown_event_name" and n > 0
        }
        for table, reasons in sample_build.injected_defects.items()
    }
    expected = {table: reasons for table, reasons in expected.items() if reasons}
    assert found == expected
    # Every reason code of the contract occurs somewhere in the sample.
    assert {reason for reasons in found.values() for reason in reasons} == {
        "missing_key",
        "missing_value",
        "unparseable_value",
        "invalid_value",
        "bad_timestamp",
        "negative_amount",
        "duplicate",
    }


def test_unknown_event_names_are_kept_and_flagged(sample_build: Build) -> None:
    [(unknown, unknown_names)] = query(
        sample_build,
        """
        select count(*), count(distinct raw_event_name)
        from staging.stg_landing__events
        where not is_known_event
        """,
    )
    assert unknown == sample_build.injected_defects["events"]["unknown_event_name"]
    assert unknown_names >= 1
    [(with_canonical,)] = query(
        sample_build,
        "select count(*) from staging.stg_landing__events"
        " where not is_known_event and event_name is not null",
    )
    assert with_canonical == 0


def test_no_pii_in_marts_or_intermediate(sample_build: Build) -> None:
    columns = query(
        sample_build,
        """
        select table_schema, table_name, column_name, data_type
        from information_schema.columns
        where table_schema in ('intermediate', 'marts')
        """,
    )
    assert columns
    assert not [c for c in columns if c[2].lower() in {"email", "phone"}]
    for schema, table, column, data_type in columns:
        if data_type != "VARCHAR" or column == "raw_record":
            continue
        [(hits,)] = query(
            sample_build,
            f"""select count(*) from "{schema}"."{table}"
            where regexp_matches("{column}", '[^@\\s]+@[^@\\s]+\\.[a-z]+')""",
        )
        assert hits == 0, (schema, table, column)


def test_users_come_from_the_users_table(sample_build: Build) -> None:
    [(users, derived, staged)] = query(
        sample_build,
        """
        select count(*), count(*) filter (where is_derived_from_activity),
            (select count(*) from staging.stg_landing__users)
        from marts.users
        """,
    )
    assert users >= staged > 0
    # Derived users only come from clean orders/events of ids missing from the users table.
    assert derived == users - staged


def _copy_tables(source: Path, target: Path, tables: list[str]) -> Path:
    for table in tables:
        shutil.copytree(source / table, target / table)
    return target


def test_orders_only_data_set_builds(sample_landing: Path, tmp_path: Path) -> None:
    landing = _copy_tables(sample_landing, tmp_path / "landing", ["orders"])
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_dbt(
        ["build"],
        landing_dir=landing,
        warehouse_path=warehouse,
        capture=True,
        target_path=tmp_path / "target",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        [(users, derived)] = connection.execute(
            "select count(*), count(*) filter (where is_derived_from_activity) from marts.users"
        ).fetchall()
        [(orders_users,)] = connection.execute(
            "select count(distinct user_id) from staging.stg_landing__orders"
        ).fetchall()
        [(events,)] = connection.execute(
            "select count(*) from staging.stg_landing__events"
        ).fetchall()
        accounting = dict(
            connection.execute(
                "select table_name, raw_rows from marts.landing_row_accounting"
            ).fetchall()
        )
        behaviour_rows = {
            mart: connection.execute(f"select count(*) from marts.{mart}").fetchall()[0][0]
            for mart in ("sessions", "event_paths", "funnel_drop_off_paths")
        }
        # Value cohorts need orders only: month cohorts' GMV is the paid orders' GMV; with no
        # marketing spend CAC is unknown (null), never 0.
        [(cohort_gmv, order_gmv, cacs, paybacks)] = connection.execute(
            """
            select
                (select sum(period_gmv) from marts.value_cohorts
                    where cohort_grain = 'month' and acquisition_channel = 'all'),
                (select sum(amount) from staging.stg_landing__orders where is_paid),
                (select count(cac) from marts.channel_paybacks),
                (select count(*) from marts.channel_paybacks)
            """
        ).fetchall()
    assert users == derived == orders_users > 0
    assert order_gmv > 0 and abs(cohort_gmv - float(order_gmv)) < 0.01
    assert cacs == 0 and paybacks > 0
    assert events == 0
    # Paths need events: without them the behaviour marts are built, empty.
    assert behaviour_rows == {"sessions": 0, "event_paths": 0, "funnel_drop_off_paths": 0}
    assert accounting["events"] == accounting["users"] == 0
    assert accounting["orders"] > 0


def _write_orders(path: Path, sql: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"copy ({sql}) to '{path}' (format parquet)")


GOOD_ORDER = (
    "select 'o1' as order_id, 'u1' as user_id, timestamp '2026-01-01 10:00' as ordered_at, "
    "'paid' as status, '10.00' as amount"
)


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _write_orders(landing / "orders" / "dt=2026-01-01" / "part-0.parquet", GOOD_ORDER)
    bad_file = landing / "orders" / "dt=2026-01-02" / "part-0.parquet"
    _write_orders(
        bad_file,
        "select 'o2' as order_id, 'u1' as user_id, "
        "timestamp '2026-01-02 10:00' as ordered_at, 'paid' as status",
    )
    result = run_dbt(
        ["run", "-s", "base_landing__orders"],
        landing_dir=landing,
        warehouse_path=tmp_path / "w.duckdb",
        capture=True,
        target_path=tmp_path / "target",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"file {bad_file} has no required column 'amount'" in output


def test_unreadable_file_fails_naming_the_file(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _write_orders(landing / "orders" / "dt=2026-01-01" / "part-0.parquet", GOOD_ORDER)
    broken = landing / "orders" / "dt=2026-01-02" / "part-0.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PAR1 this is not really parquet")
    result = run_dbt(
        ["run", "-s", "base_landing__orders"],
        landing_dir=landing,
        warehouse_path=tmp_path / "w.duckdb",
        capture=True,
        target_path=tmp_path / "target",
    )
    assert result.returncode != 0
    assert str(broken) in result.stdout + result.stderr


def test_missing_orders_table_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "landing" / "events").mkdir(parents=True)
    result = run_dbt(
        ["run", "-s", "base_landing__orders"],
        landing_dir=tmp_path / "landing",
        warehouse_path=tmp_path / "w.duckdb",
        capture=True,
        target_path=tmp_path / "target",
    )
    assert result.returncode != 0
    assert (
        "Landing table 'orders' is mandatory but no file matches" in result.stdout + result.stderr
    )


def test_csv_landing_files_build(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    path = landing / "orders" / "dt=2026-01-01" / "part-0.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "order_id,user_id,ordered_at,status,amount,currency\n"
        "o1,u1,2026-01-01 10:00:00,paid,10.50,GBP\n"
        "o2,u2,2026-01-01 11:00:00,paid,N/A,GBP\n"
        "o3,,2026-01-01 12:00:00,paid,3,GBP\n"
    )
    warehouse = tmp_path / "w.duckdb"
    result = run_dbt(
        ["build", "-s", "+landing_row_accounting", "--indirect-selection", "cautious"],
        landing_dir=landing,
        warehouse_path=warehouse,
        # Two of the three rows are quarantined by design: the quarantine gate's limits open.
        dbt_vars={
            "landing_format": "csv",
            "dq_max_null_required_share": 1,
            "dq_max_out_of_range_share": 1,
            "dq_max_quarantined_share": 1,
        },
        capture=True,
        target_path=tmp_path / "target",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        reasons = dict(
            connection.execute(
                "select record_key, quarantine_reason from marts.quarantined_rows"
            ).fetchall()
        )
        staged = connection.execute(
            "select order_id, amount from staging.stg_landing__orders"
        ).fetchall()
    assert reasons == {"o2": "unparseable_value", "o3": "missing_key"}
    assert [(order_id, float(amount)) for order_id, amount in staged] == [("o1", 10.5)]


@pytest.mark.parametrize("table", LANDING_TABLES + OPS_LANDING_TABLES)
def test_every_table_has_staged_rows(sample_build: Build, table: str) -> None:
    [(count,)] = query(sample_build, f"select count(*) from staging.stg_landing__{table}")
    assert count > 0


def test_time_spine_covers_every_day_the_timestamp_floor_admits(tmp_path: Path) -> None:
    """docs/landing_contract.md: a log older than the default floor sets min_valid_timestamp
    lower. Its business days must have calendar rows (the metric marts' calendar is an inner
    join to time_spine_daily), also where business_timezone is behind UTC: the spine starts the
    day before the floor's date, or at time_spine_start if that is earlier."""
    runs = {
        "1985-06-01": {"min_valid_timestamp": "1985-06-01"},
        "default": {},
        "earlier spine": {"min_valid_timestamp": "1985-06-01", "time_spine_start": "1970-01-01"},
    }
    starts = {}
    for name, dbt_vars in runs.items():
        warehouse = tmp_path / name.replace(" ", "_") / "w.duckdb"
        result = run_dbt(
            ["run", "-s", "time_spine_daily"],
            landing_dir=tmp_path / "landing",
            warehouse_path=warehouse,
            dbt_vars=dbt_vars,
            capture=True,
            target_path=tmp_path / "target",
            log_path=tmp_path / "logs",
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            starts[name] = str(
                connection.execute("select min(date_day) from marts.time_spine_daily").fetchone()[0]
            )
    assert starts == {
        "1985-06-01": "1985-05-31",
        "default": "1989-12-31",
        "earlier spine": "1970-01-01",
    }
