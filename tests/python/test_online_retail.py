"""The real UCI online-retail invoice log: import with the bundled mapping, then dbt build.

Skips cleanly where ../shared is absent. Expected figures were measured on the file and are
explained in docs/importing.md.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import Build


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
    assert {t: v for t, v in accounting.items() if t != "orders"} == {
        "users": (0, 0, 0),
        "events": (0, 0, 0),
        "order_items": (0, 0, 0),
        "marketing_spend": (0, 0, 0),
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
