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
    with pytest.raises(
        ValueError,
        match=r"^tables\.orders\.columns\.amount: the expression failed on a source row: "
        r'Conversion Error: Could not convert string "abc"',
    ):
        import_data(sample_csv, mapping, landing)
    assert not landing.exists()  # not even the (empty) landing folder or a scratch folder


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
                WHEN ordered_at::TIMESTAMP < TIMESTAMP '1990-01-01' THEN 'bad_timestamp'
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


# ------------------------------------------------ time zones: DST overlaps, gaps, mixed offsets

SKIPPED = " (not a local time in {zone}: skipped by a clock change)"


def _import_times(
    tmp_path: Path, zone: str, texts: list[str], formats: list[str] | None = None
) -> tuple[list[tuple[str, str]], Any]:
    """Import one order per timestamp text; return (ordered_at as written, dt) in input order."""
    source = tmp_path / "times.csv"
    source.write_text("id,ts\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)))
    orders: dict[str, Any] = {
        "columns": {
            "order_id": "id",
            "user_id": {"value": "u1"},
            "ordered_at": "ts",
            "status": {"value": "paid"},
            "amount": {"value": 1},
        }
    }
    if formats:
        orders["timestamp_format"] = formats
    mapping = {"source": {"format": "csv", "timezone": zone}, "tables": {"orders": orders}}
    landing = tmp_path / "landing"
    report = import_data(source, mapping, landing, fallback_date=FALLBACK)
    con = duckdb.connect()
    rows = con.execute(
        "SELECT ordered_at, CAST(dt AS VARCHAR) FROM read_parquet("
        f"'{landing}/orders/*/*.parquet', hive_partitioning = true) ORDER BY order_id::INTEGER"
    ).fetchall()
    return rows, report.tables["orders"]


# Europe/London 2011: clocks went back at 02:00 BST on 30 October (01:00-01:59 happened twice,
# first as BST = UTC+1, then as GMT = UTC+0) and forward at 01:00 GMT on 27 March (01:00-01:59
# never happened). Expected values worked out by hand from those two rules.
LONDON_FORMATTED = [
    ("10/30/2011 0:59", "2011-10-29 23:59:00", "2011-10-29"),  # BST, before the overlap
    ("10/30/2011 1:00", "2011-10-30 00:00:00", "2011-10-30"),  # repeated: first = BST
    ("10/30/2011 1:30", "2011-10-30 00:30:00", "2011-10-30"),  # repeated: first = BST
    ("10/30/2011 1:59", "2011-10-30 00:59:00", "2011-10-30"),  # repeated: first = BST
    ("10/30/2011 2:00", "2011-10-30 02:00:00", "2011-10-30"),  # GMT again
    ("3/27/2011 0:59", "2011-03-27 00:59:00", "2011-03-27"),  # GMT, before the gap
    ("3/27/2011 1:00", "3/27/2011 1:00" + SKIPPED, FALLBACK.isoformat()),  # skipped
    ("3/27/2011 1:30", "3/27/2011 1:30" + SKIPPED, FALLBACK.isoformat()),  # skipped
    ("3/27/2011 2:00", "2011-03-27 01:00:00", "2011-03-27"),  # BST, first minute after it
]


def test_london_overlap_reads_first_occurrence_and_gap_is_passed_on(tmp_path: Path) -> None:
    texts = [t for t, _, _ in LONDON_FORMATTED]
    rows, report = _import_times(tmp_path, "Europe/London", texts, ["%m/%d/%Y %H:%M"])
    expected = [(out.format(zone="Europe/London"), dt) for _, out, dt in LONDON_FORMATTED]
    assert rows == expected
    assert report.ambiguous_times == 3
    assert report.nonexistent_times == 2
    assert report.unparsed_timestamps == 2  # the skipped ones, passed on as text
    assert report.fallback_rows == 2
    assert (report.first_at, report.last_at) == ("2011-03-27 00:59:00", "2011-10-30 02:00:00")


# ISO text through DuckDB's cast (no declared format), mixing offsets and zone-less values in one
# column: an explicit offset is the instant it names, also inside the repeated or skipped hour;
# zone-less text is London time under the same two rules as above.
LONDON_ISO = [
    ("2011-10-30 01:30:00", "2011-10-30 00:30:00", "2011-10-30"),  # repeated: first = BST
    ("2011-10-30T01:30:00+00:00", "2011-10-30 01:30:00", "2011-10-30"),  # second, as stated
    ("2011-10-30 01:30:00+01", "2011-10-30 00:30:00", "2011-10-30"),  # first, as stated
    ("2011-10-30T01:30:00Z", "2011-10-30 01:30:00", "2011-10-30"),
    ("2011-03-27 01:30:00", "2011-03-27 01:30:00" + SKIPPED, FALLBACK.isoformat()),
    ("2011-03-27 01:30:00+00:00", "2011-03-27 01:30:00", "2011-03-27"),  # a real instant
    ("2011-06-01 10:00:00-05:00", "2011-06-01 15:00:00", "2011-06-01"),
    ("2011-06-01 23:30:00-05:00", "2011-06-02 04:30:00", "2011-06-02"),  # next UTC day
    ("2011-06-01 10:00:00", "2011-06-01 09:00:00", "2011-06-01"),  # zone-less: BST
    ("2011-06-01", "2011-05-31 23:00:00", "2011-05-31"),  # a date: local midnight, BST
    ("2011-12-01 10:00:00.250", "2011-12-01 10:00:00", "2011-12-01"),  # GMT; whole seconds
    (" 2011-12-01 10:00 ", "2011-12-01 10:00:00", "2011-12-01"),  # padding is not a zone
    ("2011-10-30 01:30 Europe/London", "2011-10-30 01:30:00", "2011-10-30"),  # a zone name
]


def test_mixed_offsets_in_one_column(tmp_path: Path) -> None:
    rows, report = _import_times(tmp_path, "Europe/London", [t for t, _, _ in LONDON_ISO])
    assert rows == [(out.format(zone="Europe/London"), dt) for _, out, dt in LONDON_ISO]
    assert report.ambiguous_times == 1
    assert report.nonexistent_times == 1


def test_offset_format_and_local_format_together(tmp_path: Path) -> None:
    texts = ["2011-06-01 10:00:00+0200", "6/1/2011 10:00", "2011-06-01 10:00:00", "junk"]
    formats = ["%Y-%m-%d %H:%M:%S%z", "%m/%d/%Y %H:%M"]
    rows, report = _import_times(tmp_path, "Europe/London", texts, formats)
    assert rows == [
        ("2011-06-01 08:00:00", "2011-06-01"),  # %z: the stated +02:00
        ("2011-06-01 09:00:00", "2011-06-01"),  # local format: BST
        ("2011-06-01 09:00:00", "2011-06-01"),  # neither format: ISO cast, local: BST
        ("junk", FALLBACK.isoformat()),
    ]
    assert (report.unparsed_timestamps, report.ambiguous_times) == (1, 0)


@pytest.mark.parametrize(
    ("zone", "text", "expected"),
    [
        # New York 2011: back at 02:00 EDT on 6 November, forward at 02:00 EST on 13 March.
        ("America/New_York", "11/6/2011 1:30", "2011-11-06 05:30:00"),  # first = EDT (-4)
        ("America/New_York", "11/6/2011 2:30", "2011-11-06 07:30:00"),  # EST (-5)
        ("America/New_York", "3/13/2011 2:30", "3/13/2011 2:30" + SKIPPED),
        ("America/New_York", "3/13/2011 3:00", "2011-03-13 07:00:00"),  # EDT
        # Samoa skipped a whole day: 29 December 2011 23:59 (-10) was followed by 31 December.
        ("Pacific/Apia", "12/29/2011 23:59", "2011-12-30 09:59:00"),
        ("Pacific/Apia", "12/30/2011 12:00", "12/30/2011 12:00" + SKIPPED),
        ("Pacific/Apia", "12/31/2011 0:00", "2011-12-30 10:00:00"),  # +14
        # Lord Howe moves by 30 minutes: 01:30-01:59 on 3 April 2011 happened twice.
        ("Australia/Lord_Howe", "4/3/2011 1:45", "2011-04-02 14:45:00"),  # first = +11
    ],
)
def test_other_zones(tmp_path: Path, zone: str, text: str, expected: str) -> None:
    rows, _ = _import_times(tmp_path, zone, [text], ["%m/%d/%Y %H:%M"])
    assert rows[0][0] == expected.format(zone=zone)


def test_skipped_time_is_quarantined_by_staging_cast(tmp_path: Path) -> None:
    """The marker makes the text uncastable, so staging's cast (try_cast ... AS TIMESTAMP, see
    macros/landing/quarantine.sql) fails and the row is unparseable_value, while the bare ISO text
    would have been read as 01:30 UTC without a word."""
    rows, _ = _import_times(tmp_path, "Europe/London", ["2011-03-27 01:30:00"])
    con = duckdb.connect()
    assert con.execute("SELECT try_cast(? AS TIMESTAMP)", [rows[0][0]]).fetchall() == [(None,)]
    assert con.execute("SELECT try_cast('2011-03-27 01:30:00' AS TIMESTAMP)").fetchall() != [
        (None,)
    ]


def test_utc_source_is_unchanged(tmp_path: Path) -> None:
    rows, report = _import_times(
        tmp_path, "UTC", ["2011-10-30 01:30:00", "2011-03-27 01:30:00", "2011-06-01T10:00:00+02"]
    )
    assert rows == [
        ("2011-10-30 01:30:00", "2011-10-30"),
        ("2011-03-27 01:30:00", "2011-03-27"),
        ("2011-06-01 08:00:00", "2011-06-01"),
    ]
    assert (report.ambiguous_times, report.nonexistent_times) == (0, 0)


# --------------------------------------------------------------------------- malformed YAML


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tables:\n  orders:\n    columns:\n\torder_id: InvoiceNo\n",
            "not valid YAML: line 4, column 1: found character '\\t' that cannot start any token "
            "(while scanning for the next token)",
        ),
        (
            "tables:\n  orders:\n    columns: {order_id: InvoiceNo\n",
            "not valid YAML: line 4, column 1: expected ',' or '}', but got '<stream end>' "
            "(while parsing a flow mapping started at line 3)",
        ),
        (
            "source:\n  timezone: 'Europe/London\ntables: {}\n",
            "not valid YAML: line 4, column 1: found unexpected end of stream (while scanning a "
            "quoted scalar started at line 2)",
        ),
        (
            "source:\n  format: csv\n timezone: UTC\ntables: {}\n",
            "not valid YAML: line 3, column 2: expected <block end>, but found "
            "'<block mapping start>' (while parsing a block mapping started at line 1)",
        ),
        (
            "tables:\n  orders:\n    columns:\n      amount: a\n      amount: b\n",
            "not valid YAML: line 5, column 7: duplicate key 'amount'",
        ),
        ("", "mapping: expected a mapping with keys 'source' and 'tables'"),
        ("- orders\n- users\n", "mapping: expected a mapping with keys 'source' and 'tables'"),
        ("tables: [orders]\n", "tables: expected at least one target table (e.g. orders)"),
    ],
)
def test_malformed_yaml_is_one_line_naming_the_place(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "m.yml"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"mapping {path}: {message}"


def test_mapping_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_bytes("tables:\n  orders: {columns: {currency: {value: '£'}}}\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 0xa3 at offset 48\)"):
        load_mapping(path)
