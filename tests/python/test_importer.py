"""Tests for userops.importer: mapping validation, exact mapped rows, and the real UCI file."""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from userops.importer import CONTRACT, import_data, load_mapping, parse_mapping

REPO = Path(__file__).resolve().parents[2]
ONLINE_RETAIL_MAPPING = REPO / "userops" / "mappings" / "online_retail.yml"
ONLINE_RETAIL_CSV = REPO.parent / "shared" / "data" / "online_retail" / "invoices.csv"
FALLBACK = date(2026, 1, 15)

# Hand-written rows in the UCI layout, each probing one thing that is easy to get wrong.
SAMPLE_CSV = """\
InvoiceNo,InvoiceDate,CustomerID,Country,Quantity,UnitPrice
1001,3/26/2011 12:00,17850,United Kingdom,2,1.5
1002,3/28/2011 12:00,17850.0,United Kingdom,3,2.25
C1003,6/1/2011 0:30,13047,France,-4,2.5
1004,6/2/2011 9:15,,United Kingdom,-1,5
1005,not a date,(blank),United Kingdom,1,0
C1006,12/9/2011 9:05,12345,United Kingdom,2,1.25
1007,2011-07-01 10:00,12345,United Kingdom,1,abc
"""

# (order_id, user_id, ordered_at, status, amount, currency, dt)
EXPECTED = [
    # GMT in March before the DST change: local == UTC.
    ("1001", "17850", "2011-03-26 12:00:00", "paid", "3.0000", "GBP", "2011-03-26"),
    # After the change (BST, +1): an hour earlier in UTC; "17850.0" loses its ".0".
    ("1002", "17850", "2011-03-28 11:00:00", "paid", "6.7500", "GBP", "2011-03-28"),
    # Cancellation: sign flipped to positive; 00:30 BST is the previous UTC day -> partition.
    ("C1003", "13047", "2011-05-31 23:30:00", "cancelled", "10.0000", "GBP", "2011-05-31"),
    # Blank customer kept as null; a negative non-cancellation stays negative (staging judges).
    ("1004", None, "2011-06-02 08:15:00", "paid", "-5.0000", "GBP", "2011-06-02"),
    # Unparseable date passed through as text, row goes to the fallback day; "(blank)" -> null.
    ("1005", None, "not a date", "paid", "0.0000", "GBP", FALLBACK.isoformat()),
    # A cancellation with a positive quantity comes out negative (-> negative_amount downstream).
    ("C1006", "12345", "2011-12-09 09:05:00", "cancelled", "-2.5000", "GBP", "2011-12-09"),
    # ISO text that the declared format misses is still read as London time (not left for
    # staging to misread as UTC); a non-numeric price reaches staging as uncastable text.
    ("1007", "12345", "2011-07-01 09:00:00", "paid", "1 * abc", "GBP", "2011-07-01"),
]


def _mapping() -> dict[str, Any]:
    return yaml.safe_load(ONLINE_RETAIL_MAPPING.read_text())


def _read_orders(landing: Path) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT order_id, user_id, ordered_at, status, amount, currency, CAST(dt AS VARCHAR) "
            f"FROM read_parquet('{landing}/orders/*/*.parquet', hive_partitioning = true) "
            "ORDER BY order_id"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture()
def sample_csv(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "sample.csv"
    path.parent.mkdir()
    path.write_text(SAMPLE_CSV)
    return path


# ------------------------------------------------------------------ exact mapping of sample rows


def test_sample_rows_map_exactly(sample_csv: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    report = import_data(sample_csv, ONLINE_RETAIL_MAPPING, landing, fallback_date=FALLBACK)

    assert _read_orders(landing) == sorted(EXPECTED)
    assert report.rows_read == 7
    assert report.rows_written == {"orders": 7}
    orders = report.tables["orders"]
    assert orders.fallback_rows == 1
    assert orders.unparsed_timestamps == 1


def test_partition_folders_and_file_names(sample_csv: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    report = import_data(sample_csv, ONLINE_RETAIL_MAPPING, landing, fallback_date=FALLBACK)

    folders = sorted(p.name for p in (landing / "orders").iterdir())
    expected = sorted({f"dt={row[6]}" for row in EXPECTED})
    assert folders == expected
    assert report.tables["orders"].partitions == [f.removeprefix("dt=") for f in expected]
    files = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*.parquet"))
    assert "orders/dt=2011-05-31/part-sample-0.parquet" in files
    assert len(files) == len(expected)
    # The scratch folder is gone and no other table folder was created.
    assert sorted(p.name for p in landing.iterdir()) == ["orders"]


def test_every_contract_column_is_text_and_dt_is_not_a_file_column(
    sample_csv: Path, tmp_path: Path
):
    landing = tmp_path / "landing"
    import_data(sample_csv, ONLINE_RETAIL_MAPPING, landing, fallback_date=FALLBACK)
    con = duckdb.connect()
    schema = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{landing}/orders/*/*.parquet', "
        "hive_partitioning = false)"
    ).fetchall()
    assert [(r[0], r[1]) for r in schema] == [
        (c, "VARCHAR")
        for c in CONTRACT["orders"]  # unmapped discount/coupon_code written as null text
    ]


def test_reimport_replaces_own_files_and_keeps_others(sample_csv: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    other = landing / "orders" / "dt=2011-03-26" / "part-0.parquet"
    other.parent.mkdir(parents=True)
    duckdb.connect().execute(
        f"COPY (SELECT 'X1' AS order_id) TO '{other}' (FORMAT parquet)"
    ).fetchall()

    import_data(sample_csv, ONLINE_RETAIL_MAPPING, landing, fallback_date=FALLBACK)
    import_data(sample_csv, ONLINE_RETAIL_MAPPING, landing, fallback_date=date(2026, 2, 1))

    rows = _read_orders_any(landing)
    assert len(rows) == 7 + 1  # not doubled by the second import; the foreign file survives
    assert not (landing / "orders" / f"dt={FALLBACK.isoformat()}").exists()
    assert (landing / "orders" / "dt=2026-02-01").is_dir()


def _read_orders_any(landing: Path) -> list[tuple]:
    con = duckdb.connect()
    return con.execute(
        f"SELECT order_id FROM read_parquet('{landing}/orders/*/*.parquet', union_by_name = true)"
    ).fetchall()


def test_parquet_folder_source(sample_csv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    con = duckdb.connect()
    # Two files, typed columns (Quantity becomes an integer): the importer must treat them as text.
    con.execute(
        f"COPY (SELECT * FROM read_csv('{sample_csv}') WHERE InvoiceNo < '1004') "
        f"TO '{folder / 'a.parquet'}' (FORMAT parquet)"
    ).fetchall()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{sample_csv}', all_varchar = true) "
        f"WHERE InvoiceNo >= '1004') TO '{folder / 'b.parquet'}' (FORMAT parquet)"
    ).fetchall()
    mapping = _mapping()
    mapping["source"]["format"] = "parquet"
    landing = tmp_path / "landing"
    report = import_data(folder, mapping, landing, fallback_date=FALLBACK)
    assert report.rows_read == report.rows_written["orders"] == 7
    assert {r[0] for r in _read_orders(landing)} == {r[0] for r in EXPECTED}


# ------------------------------------------------------------------------ mapping validation


def test_bundled_mapping_is_valid() -> None:
    mapping = load_mapping(ONLINE_RETAIL_MAPPING)
    assert list(mapping.tables) == ["orders"]
    assert mapping.timezone == "Europe/London"


def _broken(path: list[str], value: Any, delete: bool = False) -> dict[str, Any]:
    mapping = copy.deepcopy(_mapping())
    node = mapping
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return mapping


@pytest.mark.parametrize(
    ("path", "value", "delete", "message"),
    [
        (["tables", "order"], {"columns": {}}, False, "tables.order: not a landing table"),
        (
            ["tables", "orders", "columns", "price"],
            "UnitPrice",
            False,
            "tables.orders.columns.price",
        ),
        (["tables", "orders", "columns", "amount"], None, True, "not mapped: amount"),
        (["source", "timezone"], "Europe/Londn", False, "source.timezone"),
        (["source", "timezon"], "UTC", False, "source.timezon: unknown key"),
        (["source", "format"], "xlsx", False, "source.format"),
        (["tables", "orders", "columns", "status", "else"], "done", False, "status.else: 'done'"),
        (
            ["tables", "orders", "columns", "currency"],
            {"value": "GBP", "expr": "1"},
            False,
            "tables.orders.columns.currency: give exactly one of",
        ),
        (
            ["tables", "orders", "columns", "status", "rules"],
            [{"when": "true"}],
            False,
            "status.rules[0]",
        ),
    ],
)
def test_mapping_errors_name_the_key(
    path: list[str], value: Any, delete: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_mapping(_broken(path, value, delete))


def test_load_mapping_from_file_reports_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(
        yaml.safe_dump(_broken(["tables", "orders", "columns", "order_id"], None, True))
    )
    with pytest.raises(ValueError, match=re.escape("required column(s) not mapped: order_id")):
        load_mapping(path)


def test_unknown_source_column_is_named(sample_csv: Path, tmp_path: Path) -> None:
    mapping = _broken(["tables", "orders", "columns", "amount"], {"expr": "Qty * UnitPrice"})
    with pytest.raises(
        ValueError, match=r"tables\.orders\.columns\.amount: unknown source column 'Qty'"
    ):
        import_data(sample_csv, mapping, tmp_path / "landing")
    # A plain string that is neither a column nor known is reported the same way.
    mapping = _broken(["tables", "orders", "columns", "order_id"], "InvoiceNumber")
    with pytest.raises(ValueError, match="unknown source column 'InvoiceNumber'"):
        import_data(sample_csv, mapping, tmp_path / "landing")


def test_failing_expression_writes_nothing(sample_csv: Path, tmp_path: Path) -> None:
    # CAST (not try_cast) of 'abc' fails on row 1007: the import must refuse, not null the value.
    mapping = _broken(["tables", "orders", "columns", "amount"], "CAST(UnitPrice AS DECIMAL)")
    landing = tmp_path / "landing"
    with pytest.raises(ValueError, match=r"tables\.orders: a column expression failed"):
        import_data(sample_csv, mapping, landing)
    assert not list(landing.rglob("*.parquet"))


def test_contract_table_matches_the_contract_doc() -> None:
    """CONTRACT is a copy of docs/landing_contract.md; fail when the two drift apart."""
    text = (REPO / "docs" / "landing_contract.md").read_text()
    parsed: dict[str, dict[str, bool]] = {}
    table = None
    for line in text.splitlines():
        if m := re.match(r"### `(\w+)`", line):
            table = m.group(1)
            parsed[table] = {}
        elif table and line.startswith("| ") and not line.startswith("| column"):
            cell = line.split("|")[1].strip()
            for name in cell.split(", "):
                parsed[table][name.rstrip("*")] = name.endswith("*") or cell.endswith("*")
        elif line.startswith("## ") and table:
            table = None
    expected = {t: {c: req for c, (_, req) in cols.items()} for t, cols in CONTRACT.items()}
    assert parsed == expected


# --------------------------------------------------------------- integration: the real UCI file


@pytest.fixture(scope="module")
def online_retail(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, duckdb.DuckDBPyConnection]:
    if not ONLINE_RETAIL_CSV.exists():
        pytest.skip(f"{ONLINE_RETAIL_CSV} not present")
    landing = tmp_path_factory.mktemp("landing")
    report = import_data(ONLINE_RETAIL_CSV, ONLINE_RETAIL_MAPPING, landing, fallback_date=FALLBACK)
    con = duckdb.connect()
    con.execute(
        "CREATE VIEW o AS SELECT *, filename FROM read_parquet("
        f"'{landing}/orders/*/*.parquet', hive_partitioning = true, filename = true)"
    ).fetchall()
    return report, con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


def test_online_retail_counts(online_retail: tuple[Any, duckdb.DuckDBPyConnection]) -> None:
    report, con = online_retail
    assert report.rows_read == 25_943
    assert report.rows_written == {"orders": 25_943}
    assert report.tables["orders"].fallback_rows == 0
    assert len(report.tables["orders"].partitions) == 305
    assert _one(con, "SELECT count(*) FROM o WHERE status = 'paid'") == 22_106
    assert _one(con, "SELECT count(*) FROM o WHERE status = 'cancelled'") == 3_837
    assert _one(con, "SELECT count(*) FROM o WHERE user_id IS NULL") == 3_722
    assert _one(con, "SELECT count(*) FROM o WHERE user_id = '(blank)' OR user_id LIKE '%.0'") == 0
    assert _one(con, "SELECT count(DISTINCT user_id) FROM o") == 4_372
    assert _one(con, "SELECT count(*) - count(DISTINCT order_id) FROM o") == 43
    assert _one(con, "SELECT count(*) FROM o WHERE CAST(amount AS DECIMAL(18, 4)) < 0") == 2
    assert _one(con, "SELECT count(*) FROM o WHERE CAST(amount AS DECIMAL(18, 4)) = 0") == 2_102
    # Every cancellation in this file is a credit note with negative quantity -> positive amount.
    assert (
        _one(
            con, "SELECT count(*) FROM o WHERE status = 'cancelled' AND amount::DECIMAL(18,4) <= 0"
        )
        == 0
    )
    assert _one(con, "SELECT count(*) FROM o WHERE try_cast(ordered_at AS TIMESTAMP) IS NULL") == 0


def test_online_retail_time_zone(online_retail: tuple[Any, duckdb.DuckDBPyConnection]) -> None:
    _, con = online_retail
    # First invoice, winter (GMT): unchanged. 555156 is 6/1/2011 7:37 BST -> 06:37 UTC.
    assert _one(con, "SELECT ordered_at FROM o WHERE order_id = '536365'") == "2010-12-01 08:26:00"
    assert _one(con, "SELECT ordered_at FROM o WHERE order_id = '555156'") == "2011-06-01 06:37:00"
    assert _one(con, "SELECT max(ordered_at) FROM o") == "2011-12-09 12:50:00"


def test_online_retail_classification(
    online_retail: tuple[Any, duckdb.DuckDBPyConnection],
) -> None:
    """Apply the contract's quarantine rules (first reason wins) and check docs/importing.md."""
    _, con = online_retail
    rows = con.execute(
        """
        WITH judged AS (
            SELECT *, CASE
                WHEN order_id IS NULL OR trim(order_id) = ''
                  OR user_id IS NULL OR trim(user_id) = '' THEN 'missing_key'
                WHEN ordered_at IS NULL OR status IS NULL OR amount IS NULL THEN 'missing_value'
                WHEN try_cast(ordered_at AS TIMESTAMP) IS NULL
                  OR try_cast(amount AS DECIMAL(18, 4)) IS NULL THEN 'unparseable_value'
                WHEN status NOT IN ('paid', 'cancelled', 'refunded') THEN 'invalid_value'
                WHEN ordered_at::TIMESTAMP < TIMESTAMP '2000-01-01' THEN 'bad_timestamp'
                WHEN amount::DECIMAL(18, 4) < 0 THEN 'negative_amount'
            END AS reason
            FROM o
        ), ranked AS (
            SELECT *, CASE WHEN reason IS NULL AND row_number() OVER (
                PARTITION BY order_id, reason IS NULL ORDER BY filename, ordered_at::TIMESTAMP
            ) > 1 THEN 'duplicate' ELSE reason END AS final
            FROM judged
        )
        SELECT coalesce(final, 'loaded ' || status), count(*) FROM ranked GROUP BY 1
        """
    ).fetchall()
    assert dict(rows) == {
        "loaded paid": 18_536,
        "loaded cancelled": 3_654,
        "missing_key": 3_722,
        "duplicate": 31,
    }
