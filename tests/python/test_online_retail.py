"""The real UCI online-retail invoice log: import with the bundled mapping, then dbt build.

Skips cleanly where ../shared is absent. Expected figures were measured on the file and are
explained in docs/importing.md. The same log shifted back 14 years (1996-1997, issue 18) proves
the quarantine gate and the default timestamp floor: under a floor of 2000 the build fails with
a message that says what to change and publishes nothing; under the default it builds, and its
marts equal a pandas computation from the shifted file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import ONLINE_RETAIL_INVOICES, ONLINE_RETAIL_VARS, PROJECT_DIR, Build

from userops.dbt import TELEMETRY_OFF, run_dbt
from userops.quality.settings import dbt_var

SHIFT_YEARS = 14
BLANK_CUSTOMER = ("(blank)", "")


@pytest.fixture(scope="module")
def retail_warehouse(retail_build: Build) -> Path:
    output = retail_build.result.stdout + retail_build.result.stderr
    assert retail_build.result.returncode == 0, output[-4000:]
    return retail_build.warehouse_path


def fetch(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_every_invoice_row_is_staged_or_quarantined(retail_warehouse: Path) -> None:
    accounting = {
        table: (raw, staged, quarantined)
        for table, raw, staged, quarantined in fetch(
            retail_warehouse,
            "select table_name, raw_rows, staged_rows, quarantined_rows"
            " from marts.landing_row_accounting",
        )
    }
    assert accounting["orders"] == (25_943, 22_190, 3_753)
    # Every other landing table, the operations-loop ones included, is absent: read as empty.
    assert set(accounting) == {
        "users", "events", "orders", "order_items", "marketing_spend", "contact_preferences",
        "deliveries", "experiment_exposures", "feedback", "service_tickets",
    }  # fmt: skip
    assert {t: v for t, v in accounting.items() if t != "orders"} == {
        table: (0, 0, 0) for table in accounting if table != "orders"
    }


def test_cancellations_classified_blank_customers_quarantined(retail_warehouse: Path) -> None:
    statuses = dict(
        fetch(
            retail_warehouse,
            "select status, count(*) from staging.stg_landing__orders group by all",
        )
    )
    assert statuses == {"paid": 18_536, "cancelled": 3_654}
    reasons = dict(
        fetch(
            retail_warehouse,
            "select quarantine_reason, count(*) from marts.quarantined_rows group by 1",
        )
    )
    assert reasons == {"missing_key": 3_722, "duplicate": 31}
    # Cancellation amounts were sign-flipped by the mapping: none negative, none quarantined.
    [(negative,)] = fetch(
        retail_warehouse, "select count(*) from staging.stg_landing__orders where amount < 0"
    )
    assert negative == 0


def test_users_are_derived_from_first_orders(retail_warehouse: Path) -> None:
    [(users, derived, earliest)] = fetch(
        retail_warehouse,
        "select count(*), count(*) filter (where is_derived_from_activity), min(signup_date)"
        " from marts.users",
    )
    assert users == derived == 4_372
    # 2010-12-01 08:26 London = 08:26 UTC = 16:26 in Asia/Shanghai: same business day.
    assert earliest == date(2010, 12, 1)


# ------------------------------------------------------------------ the same log, 14 years older
@dataclass(frozen=True)
class OldLog:
    work: Path
    landing_dir: Path
    invoices: pd.DataFrame  # the shifted file as text, as written


@pytest.fixture(scope="module")
def old_log(tmp_path_factory: pytest.TempPathFactory) -> OldLog:
    """invoices.csv with every InvoiceDate 14 years earlier (1996-12-01 .. 1997-12-09, the same
    wall-clock times), imported with the bundled mapping."""
    if not ONLINE_RETAIL_INVOICES.exists():
        pytest.skip(f"{ONLINE_RETAIL_INVOICES} not present")
    from userops.importer import import_data

    work = tmp_path_factory.mktemp("old_log")
    invoices = pd.read_csv(ONLINE_RETAIL_INVOICES, dtype=str, keep_default_na=False)
    local = pd.to_datetime(invoices["InvoiceDate"], format="%m/%d/%Y %H:%M")
    invoices["InvoiceDate"] = (local - pd.DateOffset(years=SHIFT_YEARS)).dt.strftime(
        "%m/%d/%Y %H:%M"
    )
    source = work / "invoices_1996.csv"
    invoices.to_csv(source, index=False)
    report = import_data(
        source,
        PROJECT_DIR / "userops" / "mappings" / "online_retail.yml",
        work / "landing",
        fallback_date=date(2026, 1, 1),
    )
    assert report.rows_written["orders"] == len(invoices) == 25_943
    return OldLog(work, work / "landing", invoices)


def expected_orders(invoices: pd.DataFrame) -> pd.DataFrame:
    """Staged orders by the contract, in pandas: rows with a customer, the first row (by time)
    of each invoice number, UTC times and business days in var business_timezone."""
    frame = invoices[~invoices["CustomerID"].str.strip().isin(BLANK_CUSTOMER)].copy()
    frame["user_id"] = frame["CustomerID"].str.strip().str.replace(r"\.0$", "", regex=True)
    local = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M")
    frame["ordered_at"] = local.dt.tz_localize(
        "Europe/London", ambiguous="raise", nonexistent="raise"
    ).dt.tz_convert("UTC")
    frame = frame.sort_values(["ordered_at"], kind="stable").drop_duplicates("InvoiceNo")
    frame["order_date"] = frame["ordered_at"].dt.tz_convert(dbt_var("business_timezone")).dt.date
    frame["status"] = (
        frame["InvoiceNo"].str.upper().str.startswith("C").map({True: "cancelled", False: "paid"})
    )
    sign = frame["status"].map({"cancelled": -1, "paid": 1})
    frame["amount"] = sign * frame["Quantity"].astype(float) * frame["UnitPrice"].astype(float)
    return frame


def test_old_log_under_a_strict_floor_fails_the_build_and_publishes_nothing(
    old_log: OldLog,
) -> None:
    """min_valid_timestamp 2000-01-01 (the old default): every row with a customer is a
    bad_timestamp. The quarantine gate fails `userops build`, which publishes nothing; the log
    says which table, share, reason, example row and var."""
    work = old_log.work / "strict"
    serving = work / "serving"
    strict_vars = {**ONLINE_RETAIL_VARS, "min_valid_timestamp": "2000-01-01"}
    result = subprocess.run(
        [
            sys.executable, "-m", "userops.cli", "build",
            "--landing-dir", str(old_log.landing_dir),
            "--warehouse", str(work / "w.duckdb"),
            "--serving-dir", str(serving),
            "--", "--select", "+landing_row_accounting", "--vars", json.dumps(strict_vars),
        ],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            **TELEMETRY_OFF,
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    raw = len(old_log.invoices)
    no_customer = int(old_log.invoices["CustomerID"].str.strip().isin(BLANK_CUSTOMER).sum())
    bad = raw - no_customer  # missing_key comes first; no valid row, so no duplicate either
    share = f"{100 * bad / raw:.1f} %"
    assert (raw, bad, share) == (25_943, 22_221, "85.7 %")
    message = next(
        line.split("Quarantine gate (error): ", 1)[1]
        for line in result.stdout.splitlines()
        if "Quarantine gate (error): " in line
    )
    assert message.startswith(
        f"orders: 100.0 % of {raw} raw rows quarantined (top reason bad_timestamp {share});"
        f" bad_timestamp {share} is above var dq_max_out_of_range_share = 0.05 (5.0 %)."
        " Example: row "
    ), message
    assert "timestamps before var min_valid_timestamp (2000-01-01)" in message
    assert message.endswith(
        "raise var dq_max_out_of_range_share, dq_max_quarantined_share (dbt_project.yml or --vars)."
    ), message
    assert "FAIL 1 landing_quarantine_share_within_dq_max_vars" in result.stdout
    assert "Nothing was published (there is no serving copy yet)." in result.stderr
    assert not (serving / "userops.duckdb").exists()
    with duckdb.connect(str(work / "w.duckdb"), read_only=True) as connection:
        failures = connection.execute(
            "select table_name, raw_rows, quarantined_rows, top_reason, top_reason_share,"
            " threshold_var, example_record_key"
            " from dbt_test__audit.landing_quarantine_share_within_dq_max_vars"
        ).fetchall()
        # The example is the first row of the reason by file, then key.
        [(first_bad,)] = connection.execute(
            "select record_key from marts.quarantined_rows"
            " where table_name = 'orders' and quarantine_reason = 'bad_timestamp'"
            " order by source_file, record_key limit 1"
        ).fetchall()
    assert failures == [
        ("orders", raw, raw, "bad_timestamp", bad / raw, "dq_max_out_of_range_share", first_bad)
    ]
    assert f"Example: row {first_bad} of " in message


@pytest.fixture(scope="module")
def old_log_warehouse(old_log: OldLog) -> Path:
    """The shifted log built with the default floor (1990-01-01)."""
    assert dbt_var("min_valid_timestamp") == "1990-01-01"
    warehouse = old_log.work / "default" / "w.duckdb"
    result = run_dbt(
        ["build", "--exclude-resource-type", "unit_test"],
        landing_dir=old_log.landing_dir,
        warehouse_path=warehouse,
        dbt_vars=ONLINE_RETAIL_VARS,
        capture=True,
        target_path=old_log.work / "default" / "target",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # Passes the gate; 14.3 % missing_key is past half of the raised 15 %: a warning only.
    assert "Quarantine gate (error)" not in result.stdout
    assert "Quarantine gate (warning): orders: 14.5 % of 25943 raw rows" in result.stdout
    return warehouse


def test_old_log_under_the_default_floor_equals_pandas(
    old_log: OldLog, old_log_warehouse: Path
) -> None:
    orders = expected_orders(old_log.invoices)
    paid = orders[orders["status"] == "paid"]
    with duckdb.connect(str(old_log_warehouse), read_only=True) as connection:

        def one(sql: str) -> tuple:
            return connection.execute(sql).fetchone()

        accounting = one(
            "select raw_rows, staged_rows, quarantined_rows from marts.landing_row_accounting"
            " where table_name = 'orders'"
        )
        users = one("select count(*), min(signup_date), max(signup_date) from marts.users")
        daily = one("select sum(orders), sum(gmv), min(metric_date) from marts.daily_metrics")
        cells = connection.execute(
            "select cohort_start_date, period_number, cohort_size, retained_users"
            " from marts.retention_cohorts where cohort_grain = 'month'"
            " and retention_type = 'purchase' and cohort_basis = 'first_time'"
            " and retention_mode = 'classic' and segment_dimension = 'overall'"
        ).fetchall()
    assert accounting == (25_943, len(orders), 25_943 - len(orders)) == (25_943, 22_190, 3_753)
    first_order = orders.groupby("user_id")["order_date"].min()
    assert users == (orders["user_id"].nunique(), first_order.min(), first_order.max())
    assert users[0] == 4_372 and users[1] == date(1996, 12, 1)
    assert daily[0] == len(paid) == 18_536
    # Amounts are stored with 2 decimals: at most half a cent per order apart.
    assert abs(daily[1] - paid["amount"].sum()) <= 0.005 * len(paid)
    assert daily[2] == paid["order_date"].min()
    # Monthly purchase retention (first paid order month; retained in month N = a paid order in
    # it), every cell of the mart.
    month = pd.to_datetime(paid["order_date"]).dt.to_period("M")
    first_month = month.groupby(paid["user_id"]).transform("min")
    period = (month - first_month).apply(lambda offset: offset.n)
    retained = (
        pd.DataFrame({"cohort": first_month, "period": period, "user_id": paid["user_id"]})
        .groupby(["cohort", "period"])["user_id"]
        .nunique()
    )
    sizes = retained.xs(0, level="period")
    expected = {
        (cohort.start_time.date(), n): (int(sizes[cohort]), int(retained.get((cohort, n), 0)))
        for cohort in sizes.index
        for n in range(0, 13)
    }
    actual = {(start, n): (size, kept) for start, n, size, kept in cells}
    assert actual, "no monthly purchase cohorts"
    assert {cohort.start_time.date() for cohort in sizes.index} == {s for s, _ in actual}
    assert {key: expected[key] for key in actual} == actual
    # Every customer with a paid order is in one cohort (33 of the 4,372 only ever cancelled).
    cohort_users = sum(size for (_, n), (size, _) in actual.items() if n == 0)
    assert cohort_users == paid["user_id"].nunique() == 4_339
