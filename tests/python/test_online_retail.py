"""The real UCI online-retail invoice log: import with the bundled mapping, then dbt build.

Skips cleanly where ../shared is absent. Expected figures were measured on the file and are
explained in docs/importing.md.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import SHARED_DIR

from userops.dbt import run_dbt
from userops.importer import import_data

INVOICES = SHARED_DIR / "data" / "online_retail" / "invoices.csv"
MAPPING = Path(__file__).resolve().parents[2] / "userops" / "mappings" / "online_retail.yml"

pytestmark = pytest.mark.skipif(not INVOICES.exists(), reason=f"{INVOICES} not present")


@pytest.fixture(scope="module")
def retail_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("online_retail")
    report = import_data(INVOICES, MAPPING, work / "landing", fallback_date=date(2026, 1, 1))
    assert report.rows_read == 25_943
    assert report.rows_written == {"orders": 25_943}
    result = run_dbt(
        ["build"],
        landing_dir=work / "landing",
        warehouse_path=work / "warehouse.duckdb",
        capture=True,
        target_path=work / "target",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return work / "warehouse.duckdb"


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
