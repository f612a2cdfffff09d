"""CSV landing files as spreadsheets and exports deliver them (docs/landing_contract.md, "CSV
files"): each fault either loads the values it holds, quarantines a row with a reason code, or
fails the build with one line naming the file and the line.

Hand-written landing folders, built with `--vars '{landing_format: csv}'` and only the models
the assertions read.
- Loads (orders only): a UTF-8 BOM with CRLF line ends (Excel's "CSV UTF-8"), a header-only
  file, quotes and line breaks inside a quoted value, quotes inside unquoted values, a
  semicolon-delimited file (a decimal comma in it is quarantined as unparseable_value);
  raw = staged + quarantined, raw counted here with Python's csv module.
- Fails (good orders, one faulty file in each other table): a zero-byte file, GBK bytes, a row
  with an extra field, a row with a missing field, a quote never closed. `userops build` stops
  before dbt with one line per file naming file and line (userops/landing_csv.py); a plain
  `dbt build` names the file and the fault instead of "no required column" per column.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from userops import landing_csv
from userops.cli import landing_format_of
from userops.dbt import TELEMETRY_OFF, run_dbt
from userops.landing_csv import csv_problems, encoding_problem, field_count_problems, read_header

PROJECT_DIR = Path(__file__).resolve().parents[2]
CSV_VARS = {"landing_format": "csv"}
HEADER = "order_id,user_id,ordered_at,status,amount,coupon_code,currency"
REQUIRED = {"orders": ["order_id", "user_id", "ordered_at", "status", "amount"]}


def order_rows(day: int, count: int, first: int = 1) -> list[str]:
    return [
        f"o{day}{n},u{n},2026-01-0{day} 1{n}:00:00,paid,{n}.50,,CNY"
        for n in range(first, first + count)
    ]


def lines(*rows: str, end: str = "\n") -> str:
    return "".join(row + end for row in rows)


def write_orders(landing: Path, day: int, content: bytes) -> Path:
    path = landing / "orders" / f"dt=2026-01-0{day}" / "part-0.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def raw_records(path: Path) -> int:
    """Data records of a CSV file, counted with Python's csv module (not DuckDB, not dbt)."""
    text = path.read_bytes().decode("utf-8-sig")
    delimiter = read_header(path)[0]
    return max(
        sum(1 for _ in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)) - 1, 0
    )


# ----------------------------------------------------------------- files that load (one build)
LOADING_FILES = {
    # Plain comma-separated UTF-8.
    1: lines(HEADER, *order_rows(1, 2)).encode(),
    # Excel's "CSV UTF-8": byte-order mark and CRLF line ends.
    2: codecs.BOM_UTF8 + lines(HEADER, *order_rows(2, 2), end="\r\n").encode(),
    # Header only: a day without orders.
    3: lines(HEADER).encode(),
    # RFC 4180 quoting: the delimiter, doubled quotes and a line break inside one value.
    4: lines(
        HEADER,
        'o41,u1,2026-01-04 11:00:00,paid,1.50,"SAVE ""10""\nnow, or never",CNY',
        *order_rows(4, 1, first=2),
    ).encode(),
    # Semicolons (Excel in a locale with decimal commas): sniffed per file; the decimal comma
    # does not cast and its row is quarantined.
    5: lines(
        HEADER.replace(",", ";"),
        "o51;u1;2026-01-05 11:00:00;paid;1.50;;CNY",
        "o52;u2;2026-01-05 12:00:00;paid;2,50;;CNY",
    ).encode(),
    # Quotes inside a value that is not quoted are part of the value, and so is a quote never
    # closed when no value of the file is quoted (DuckDB's sniffer reads it without quoting).
    6: lines(
        HEADER,
        'o61,u1,2026-01-06 11:00:00,paid,1.50,SAVE "5",CNY',
        'o62,u2,2026-01-06 12:00:00,paid,2.50,"SAVE 10,CNY',
    ).encode(),
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("csv_loads")
    landing = work / "landing"
    for day, content in LOADING_FILES.items():
        write_orders(landing, day, content)
    result = run_dbt(
        ["build", "-s", "+landing_row_accounting", "--exclude-resource-type", "test"],
        landing_dir=landing,
        warehouse_path=work / "w.duckdb",
        dbt_vars=CSV_VARS,
        capture=True,
        target_path=work / "target",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return landing, work / "w.duckdb"


def test_bom_quotes_header_only_and_semicolons_load_their_values(loaded: tuple[Path, Path]) -> None:
    _, warehouse = loaded
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        staged = {
            order_id: (user_id, amount, coupon_code, source_file.split("/")[-2])
            for order_id, user_id, amount, coupon_code, source_file in connection.execute(
                "select order_id, user_id, amount, coupon_code, source_file"
                " from staging.stg_landing__orders"
            ).fetchall()
        }
        quarantined = connection.execute(
            "select record_key, quarantine_reason from marts.quarantined_rows"
        ).fetchall()
    assert staged == {
        "o11": ("u1", Decimal("1.50"), None, "dt=2026-01-01"),
        "o12": ("u2", Decimal("2.50"), None, "dt=2026-01-01"),
        # The BOM file's first column is order_id (ids read, not null), CR not in the currency.
        "o21": ("u1", Decimal("1.50"), None, "dt=2026-01-02"),
        "o22": ("u2", Decimal("2.50"), None, "dt=2026-01-02"),
        "o41": ("u1", Decimal("1.50"), 'SAVE "10"\nnow, or never', "dt=2026-01-04"),
        "o42": ("u2", Decimal("2.50"), None, "dt=2026-01-04"),
        "o51": ("u1", Decimal("1.50"), None, "dt=2026-01-05"),
        "o61": ("u1", Decimal("1.50"), 'SAVE "5"', "dt=2026-01-06"),
        "o62": ("u2", Decimal("2.50"), '"SAVE 10', "dt=2026-01-06"),
    }
    assert quarantined == [("o52", "unparseable_value")]


def test_csv_raw_rows_equal_staged_plus_quarantined(loaded: tuple[Path, Path]) -> None:
    landing, warehouse = loaded
    raw = sum(raw_records(path) for path in landing.glob("orders/*/*.csv"))
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        [(raw_rows, staged, quarantined)] = connection.execute(
            "select raw_rows, staged_rows, quarantined_rows from marts.landing_row_accounting"
            " where table_name = 'orders'"
        ).fetchall()
        currencies = connection.execute(
            "select distinct currency from staging.stg_landing__orders"
        ).fetchall()
    assert raw == raw_rows == 10
    assert (staged, quarantined) == (9, 1)
    assert currencies == [("CNY",)]


def test_loading_files_pass_the_pre_build_check(loaded: tuple[Path, Path]) -> None:
    landing, _ = loaded
    assert csv_problems(landing, REQUIRED) == []


# -------------------------------------------------------------------------- files that fail
# One faulty file per table, so one `userops build` and one `dbt build` show every message:
# (table, file content, line the pre-check names, its message, the plain dbt build's message).
FAILING_FILES = {
    "empty": ("events", b"", None, "empty file (0 bytes)", "empty file (0 bytes)"),
    "gbk": (
        "users",
        lines(
            "user_id,signup_at,city",
            "u1,2026-01-02 11:00:00,Shanghai",
            "u2,2026-01-02 12:00:00,Shanghai",
            "u3,2026-01-02 13:00:00,北京",
            "u4,2026-01-02 14:00:00,Shanghai",
        ).encode("gbk"),
        4,
        "not UTF-8 (looks like GBK)",
        # Not DuckDB's own message, whose "Original Line" is the row before the bad bytes.
        ": not UTF-8 (another encoding, e.g. GBK)",
    ),
    "extra_field": (
        "marketing_spend",
        lines(
            "spend_date,channel,spend",
            "2026-01-01,social,10.0",
            "2026-01-02,social,11.0",
            "2026-01-03,social,1,200.0",  # a thousands separator, unquoted
        ).encode(),
        4,
        "4 fields where the header has 3",
        "DuckDB found no header row in it, because a row has more or fewer fields",
    ),
    "missing_field": (
        "order_items",
        lines(
            "order_id,product_id,category,quantity,unit_price",
            "o11,p1,fruit,1,2.50",
            "o11,p2,fruit,2,3.50",
            "o12,p1,fruit,1",
        ).encode(),
        4,
        "4 fields where the header has 5",
        "DuckDB found no header row in it, because a row has more or fewer fields",
    ),
    "unterminated_quote": (
        "orders",
        lines(
            HEADER,
            *order_rows(2, 1),
            'o22,u2,2026-01-02 12:00:00,paid,2.50,"SAVE 10,CNY',
            'o23,u3,2026-01-02 13:00:00,paid,3.50,"SAVE 5, or 10",CNY',
        ).encode(),
        3,
        'a quoted value that is never closed (a missing "?)',
        "DuckDB found no header row in it, because a row has more or fewer fields",
    ),
}


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A landing folder with good orders and one faulty file of each kind in another table."""
    landing = tmp_path_factory.mktemp("csv_fails") / "landing"
    write_orders(landing, 1, lines(HEADER, *order_rows(1, 2)).encode())
    paths = {}
    for name, (table, content, *_) in FAILING_FILES.items():
        paths[name] = landing / table / "dt=2026-01-02" / "part-0.csv"
        paths[name].parent.mkdir(parents=True)
        paths[name].write_bytes(content)
    return landing, paths


def test_userops_build_stops_with_one_line_per_file_naming_file_and_line(
    failing: tuple[Path, dict[str, Path]],
) -> None:
    landing, paths = failing
    warehouse = landing.parent / "cli.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "userops.cli",
            "build",
            "--no-publish",
            "--landing-dir",
            str(landing),
            "--warehouse",
            str(warehouse),
            "--",
            "--vars",
            "{landing_format: csv}",
        ],
        cwd=PROJECT_DIR,
        env={**os.environ, **TELEMETRY_OFF},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    first, *faults, last = result.stderr.splitlines()
    assert first.startswith("userops build: landing file ")
    faults = [first.removeprefix("userops build: "), *faults]
    assert last == "Nothing was built. The CSV rules: docs/landing_contract.md."
    assert len(faults) == len(FAILING_FILES)
    for name, (_, _, line, message, _) in FAILING_FILES.items():
        where = f"{paths[name]} line {line}" if line else str(paths[name])
        assert sum(fault.startswith(f"landing file {where}: {message}") for fault in faults) == 1
    assert "no required column" not in result.stderr
    assert not warehouse.exists()  # dbt never started


def test_plain_dbt_build_names_each_file_and_its_fault(
    failing: tuple[Path, dict[str, Path]],
) -> None:
    landing, paths = failing
    models = sorted(f"base_landing__{table}" for table, *_ in FAILING_FILES.values())
    result = run_dbt(
        [
            "build",
            "-s",
            *models,
            "--exclude-resource-type",
            "unit_test",
            "--exclude-resource-type",
            "test",
        ],
        landing_dir=landing,
        warehouse_path=landing.parent / "dbt.duckdb",
        dbt_vars=CSV_VARS,
        capture=True,
        target_path=landing.parent / "target",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"ERROR={len(models)}" in output
    for name, (*_, dbt_message) in FAILING_FILES.items():
        assert dbt_message in output, name
        assert str(paths[name]) in output, name
    assert "no required column" not in output
    assert "Original Line" not in output


# --------------------------------------------------------------- the checks on their own
def test_not_utf8_line_is_found_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A quoted value with a line break makes the record span lines 3-4: the line reported is
    # the file's line (what an editor shows), 5, not the record number.
    path = tmp_path / "x.csv"
    path.write_bytes(
        lines(HEADER, *order_rows(1, 1)).encode()
        + b'o12,u2,2026-01-01 12:00:00,paid,2.50,"a\nb",CNY\n'
        + "o13,u3,2026-01-01 13:00:00,paid,3.50,春节,CNY\n".encode("gbk")
    )
    for chunk in (1, 2, 3, 7, 1 << 20):  # a GBK character split between two reads, or not
        monkeypatch.setattr(landing_csv, "CHUNK_BYTES", chunk)
        problem = encoding_problem(path)
        assert problem is not None
        assert (problem.line, problem.message.split(":")[0]) == (5, "not UTF-8 (looks like GBK)")


def test_utf8_multibyte_at_chunk_boundaries_and_bom_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(
        codecs.BOM_UTF8 + lines(HEADER, "o1,u1,2026-01-01,paid,1,新年快乐,CNY").encode()
    )
    for chunk in (1, 2, 5, 1 << 20):
        monkeypatch.setattr(landing_csv, "CHUNK_BYTES", chunk)
        assert encoding_problem(path) is None
    assert read_header(path) == (",", HEADER.split(","))
    # Names as DuckDB reads them (trimmed; the macros lower-case them).
    spaced = tmp_path / "spaced.csv"
    spaced.write_text('Order_ID, user_id ,"status"\n')
    assert read_header(spaced) == (",", ["order_id", "user_id", "status"])


def test_other_encodings_and_a_character_cut_at_the_end(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(lines(HEADER).encode("utf-16"))  # with its byte-order mark
    cut = tmp_path / "cut.csv"
    cut.write_bytes(lines(HEADER).encode() + "o1,新".encode()[:-1])
    assert (
        str(encoding_problem(utf16)) == f"{utf16} line 1: not UTF-8 (UTF-16): save it as CSV UTF-8"
    )
    problem = encoding_problem(cut)
    assert problem is not None and problem.line == 2


def test_header_without_required_columns_is_named(tmp_path: Path) -> None:
    path = write_orders(
        tmp_path, 1, lines("order,user,time,status,amount", "o1,u1,x,paid,1").encode()
    )
    [problem] = csv_problems(tmp_path, REQUIRED)
    assert problem.line == 1
    assert problem.message.startswith(
        "the header has no required column 'order_id', 'user_id', 'ordered_at'"
    )
    assert problem.file == path


def test_field_counts_ignore_quoted_delimiters_and_line_breaks(tmp_path: Path) -> None:
    good = write_orders(tmp_path, 1, LOADING_FILES[4])
    tab = write_orders(
        tmp_path,
        2,
        lines(HEADER.replace(",", "\t"), "o1\tu1\t2026-01-02\tpaid\t1\t\tCNY\tx").encode(),
    )
    assert [(p.file, p.line) for p in field_count_problems([good, tab])] == [(tab, 2)]


def test_landing_format_follows_vars_on_the_command_line() -> None:
    assert landing_format_of(["--vars", "{landing_format: csv}", "-s", "x"]) == "csv"
    assert landing_format_of(['--vars={"landing_format": "csv"}']) == "csv"
    assert landing_format_of(["--vars", "{other: 1}"]) == "parquet"
    assert landing_format_of([]) == "parquet"
