"""`userops import` through the real CLI: one-line errors with exit code 2, a short summary for
people, and the full report behind --json."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from userops.cli import main

REPO = Path(__file__).resolve().parents[2]
ONLINE_RETAIL_MAPPING = REPO / "userops" / "mappings" / "online_retail.yml"
ONLINE_RETAIL_CSV = REPO.parent / "shared" / "data" / "online_retail" / "invoices.csv"
# The console script installed next to the interpreter (tests never rely on PATH).
USEROPS = Path(sys.executable).parent / "userops"

# Three orders, all timestamps valid, in two UTC days (the 00:30 BST one is 31 May in UTC).
SAMPLE_CSV = """\
InvoiceNo,InvoiceDate,CustomerID,Country,Quantity,UnitPrice
1001,3/26/2011 12:00,17850,United Kingdom,2,1.5
C1003,6/1/2011 0:30,13047,France,-4,2.5
1004,6/1/2011 9:15,,United Kingdom,-1,5
"""


@pytest.fixture()
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "invoices.csv"
    path.parent.mkdir()
    path.write_text(SAMPLE_CSV)
    return path


def _mapping(tmp_path: Path, edit: Any = None, text: str | None = None) -> Path:
    path = tmp_path / "mapping.yml"
    if text is None:
        mapping = copy.deepcopy(yaml.safe_load(ONLINE_RETAIL_MAPPING.read_text()))
        if edit is not None:
            edit(mapping)
        text = yaml.safe_dump(mapping)
    path.write_text(text)
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["import", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- errors: one line, exit 2


def _columns(mapping: dict[str, Any]) -> dict[str, Any]:
    return mapping["tables"]["orders"]["columns"]


ERRORS: dict[str, tuple[Any, str | None, str]] = {
    "unknown source column": (
        lambda m: _columns(m).update(amount={"expr": "Qty * UnitPrice"}),
        None,
        "tables.orders.columns.amount: unknown source column 'Qty' (source columns: InvoiceNo, "
        "InvoiceDate, CustomerID, Country, Quantity, UnitPrice)",
    ),
    "not a landing column": (
        lambda m: _columns(m).update(price="UnitPrice"),
        None,
        "tables.orders.columns.price: not a column of landing table orders",
    ),
    "unknown table": (
        lambda m: m["tables"].update(order={"columns": {"order_id": "InvoiceNo"}}),
        None,
        "tables.order: not a landing table (expected one of users, events, orders, "
        "order_items, marketing_spend)",
    ),
    "unknown mapping key": (
        lambda m: m["source"].update(timezon="UTC"),
        None,
        "source.timezon: unknown key (allowed: csv, format, timezone)",
    ),
    "unknown time zone": (
        lambda m: m["source"].update(timezone="Europe/Londn"),
        None,
        "source.timezone: 'Europe/Londn' is not an IANA time zone",
    ),
    "malformed YAML": (
        None,
        "source:\n  format: csv\n timezone: UTC\ntables: {}\n",
        "not valid YAML: line 3, column 2: expected <block end>, but found '<block mapping start>'",
    ),
    "duplicate key": (
        None,
        "tables:\n  orders:\n    columns:\n      amount: a\n      amount: b\n",
        "not valid YAML: line 5, column 7: duplicate key 'amount'",
    ),
    "bad SQL": (
        lambda m: _columns(m).update(amount={"expr": "Quantity *"}),
        None,
        "tables.orders.columns.amount: not a source column and not a valid SQL expression: "
        "Parser Error: syntax error",
    ),
    "unknown function": (
        lambda m: _columns(m).update(amount={"expr": "nosuchfunction(Quantity)"}),
        None,
        "tables.orders.columns.amount: the expression does not work here: Catalog Error: Scalar "
        "Function with name nosuchfunction does not exist!",
    ),
    "expression fails on a row": (
        lambda m: _columns(m).update(user_id={"expr": "CAST(Country AS INTEGER)"}),
        None,
        "tables.orders.columns.user_id: the expression failed on a source row: Conversion "
        "Error: Could not convert string 'United Kingdom' to INT32",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_mapping_is_one_line_and_exit_2(
    case: str, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, text, expected = ERRORS[case]
    mapping = _mapping(tmp_path, edit, text)
    landing = tmp_path / "landing"
    code, out, err = _run(
        capsys, str(sample), "--mapping", str(mapping), "--landing-dir", str(landing)
    )
    assert (code, out) == (2, "")
    assert err.startswith("userops import: ") and err.count("\n") == 1, err
    assert expected in err, err
    assert not landing.exists()


def test_missing_source_and_missing_mapping(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"
    landing = ["--landing-dir", str(tmp_path / "landing")]
    code, out, err = _run(capsys, str(missing), "--mapping", "online_retail", *landing)
    assert (code, out, err) == (
        2,
        "",
        f"userops import: source {missing}: no such file, folder or glob\n",
    )
    code, out, err = _run(capsys, str(sample), "--mapping", "onlineretail", *landing)
    assert (code, out, err) == (
        2,
        "",
        "userops import: no mapping file 'onlineretail' (nor a bundled mapping of that name: "
        "online_retail)\n",
    )
    assert not (tmp_path / "landing").exists()


def test_unreadable_source_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("InvoiceNo\n1\n")
    mapping = _mapping(tmp_path, lambda m: m["source"].update(csv={"encoding": "gbk"}))
    code, out, err = _run(
        capsys, str(source), "--mapping", str(mapping), "--landing-dir", str(tmp_path / "l")
    )
    assert (code, out) == (2, "")
    assert err == (
        f"userops import: source {source}: cannot be read as CSV: Invalid Input Error: The CSV "
        'Reader does not support the encoding: "gbk"\n'
    )


def test_malformed_csv_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A row with an extra field after DuckDB's 20,480-row sniffing sample aborts the import
    (ignore_errors stays off, no row is skipped) with the line number and the line."""
    source = tmp_path / "orders.csv"
    good = "".join(f"{i},3/26/2011 12:00,1,UK,1,1\n" for i in range(21_000))
    source.write_text(SAMPLE_CSV.splitlines()[0] + "\n" + good + "X1,3/26/2011 12:00,1,UK,1,1,9\n")
    landing = tmp_path / "landing"
    code, out, err = _run(
        capsys, str(source), "--mapping", "online_retail", "--landing-dir", str(landing)
    )
    assert (code, out) == (2, "")
    assert err == (
        f"userops import: source {source}: cannot be read as CSV: Invalid Input Error: CSV Error "
        "on Line: 21002; Original Line: X1,3/26/2011 12:00,1,UK,1,1,9; Expected Number of "
        "Columns: 6 Found: 7\n"
    )
    assert not landing.exists()


def test_console_script_prints_no_traceback(sample: Path, tmp_path: Path) -> None:
    """The installed `userops` script, in its own process, as a user runs it."""
    mapping = _mapping(tmp_path, text="tables:\n  orders:\n\tcolumns: {}\n")
    for args in (
        [str(sample), "--mapping", str(mapping)],
        [str(tmp_path / "missing.csv"), "--mapping", "online_retail"],
    ):
        result = subprocess.run(
            [str(USEROPS), "import", *args, "--landing-dir", str(tmp_path / "landing")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith("userops import: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# ------------------------------------------------------------------------- output for people


def test_summary_is_a_few_lines(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    code, out, err = _run(
        capsys, str(sample), "--mapping", "online_retail", "--landing-dir", str(landing)
    )
    assert (code, err) == (0, "")
    # 12:00 GMT = 12:00 UTC; 6/1 0:30 BST = 31 May 23:30 UTC; 6/1 9:15 BST = 08:15 UTC.
    assert out == (
        f"Read 3 rows from {sample}\n"
        "  orders: 3 rows written, ordered_at 2011-03-26 12:00:00 to 2011-06-01 08:15:00 UTC, "
        "3 partitions (dt=2011-03-26 to dt=2011-06-01)\n"
        f"    files: {landing}/orders/dt=*/part-invoices-*.parquet (3)\n"
        "Full report (every partition and file): add --json\n"
    )


def test_json_report_lists_every_partition_and_file(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    code, out, _ = _run(
        capsys, str(sample), "--mapping", "online_retail", "--landing-dir", str(landing), "--json"
    )
    assert code == 0
    report = json.loads(out)
    orders = report["tables"]["orders"]
    assert report["rows_read"] == 3 and report["rows_written"] == {"orders": 3}
    assert report["source_files"] == [str(sample)]
    assert report["landing_dir"] == str(landing)
    assert report["timezone"] == "Europe/London"
    assert orders["partitions"] == ["2011-03-26", "2011-05-31", "2011-06-01"]
    assert orders["files"] == sorted(str(p) for p in landing.rglob("*.parquet"))
    assert (orders["first_at"], orders["last_at"]) == ("2011-03-26 12:00:00", "2011-06-01 08:15:00")
    assert (orders["fallback_rows"], orders["unparsed_timestamps"]) == (0, 0)
    assert (orders["ambiguous_times"], orders["nonexistent_times"]) == (0, 0)


def test_summary_explains_fallback_and_dst_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "dst.csv"
    source.write_text(
        "InvoiceNo,InvoiceDate,CustomerID,Country,Quantity,UnitPrice\n"
        "1,10/30/2011 1:30,1,UK,1,1\n"  # London repeats 01:00-01:59 that night
        "2,3/27/2011 1:30,1,UK,1,1\n"  # and skipped it in March
        "3,,1,UK,1,1\n"  # blank
    )
    code, out, _ = _run(
        capsys,
        str(source),
        "--mapping",
        "online_retail",
        "--landing-dir",
        str(tmp_path / "landing"),
    )
    assert code == 0
    lines = out.splitlines()
    assert "ordered_at 2011-10-30 00:30:00 to 2011-10-30 00:30:00 UTC" in lines[1]
    notes = [line.strip() for line in lines[3:-1]]
    assert notes[0].startswith(
        "2 rows whose ordered_at is blank or not a time (skipped hours included) went to dt="
    )
    assert notes[1:] == [
        "1 ordered_at values fall in an hour Europe/London repeats (clocks went back): read as "
        "the first occurrence",
        "1 ordered_at values fall in an hour Europe/London skips (clocks went forward): passed "
        "on as text, staging quarantines them",
    ]


def test_online_retail_summary_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 18: the 305-partition log printed 500+ lines of JSON; now four lines."""
    if not ONLINE_RETAIL_CSV.exists():
        pytest.skip(f"{ONLINE_RETAIL_CSV} not present")
    landing = tmp_path / "landing"
    args = [str(ONLINE_RETAIL_CSV), "--mapping", "online_retail", "--landing-dir", str(landing)]
    code, out, _ = _run(capsys, *args)
    assert code == 0
    assert out.splitlines() == [
        f"Read 25,943 rows from {ONLINE_RETAIL_CSV.resolve()}",
        "  orders: 25,943 rows written, ordered_at 2010-12-01 08:26:00 to 2011-12-09 12:50:00 "
        "UTC, 305 partitions (dt=2010-12-01 to dt=2011-12-09)",
        f"    files: {landing}/orders/dt=*/part-invoices-*.parquet (305)",
        "Full report (every partition and file): add --json",
    ]
    code, out, _ = _run(capsys, *args, "--json")
    report = json.loads(out)
    assert len(report["tables"]["orders"]["partitions"]) == 305
    assert len(report["tables"]["orders"]["files"]) == 305
