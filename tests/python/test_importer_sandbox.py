"""The importer's sandbox: a mapping is someone's input, and its expressions are SQL.

Two layers are tested. First DuckDB 2.0 itself: what the locked connection the importer builds
(`sandboxed_connection`) refuses and what it still allows, statement by statement, with DuckDB's
own error text. Then whole imports through the CLI with hostile mappings: each fails with one line
naming the mapping key, exit code 2, and leaves the landing folder exactly as it was.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from userops.cli import main
from userops.importer import import_data, sandboxed_connection

REPO = Path(__file__).resolve().parents[2]
ONLINE_RETAIL_MAPPING = REPO / "userops" / "mappings" / "online_retail.yml"

SAMPLE_CSV = """\
InvoiceNo,InvoiceDate,CustomerID,Country,Quantity,UnitPrice
1001,3/26/2011 12:00,17850,United Kingdom,2,1.5
1002,3/28/2011 12:00,17850.0,United Kingdom,3,2.25
"""

LOCKED = "the configuration has been locked"
NO_FILE_ACCESS = "file system operations are disabled by configuration"


@pytest.fixture()
def box(tmp_path: Path) -> dict[str, Path]:
    """A source file, a secret beside it, a folder the writer may use, the landing folder."""
    paths = {
        "source": tmp_path / "src" / "invoices.csv",
        "sibling": tmp_path / "src" / "secret.csv",
        "out": tmp_path / "landing" / ".import-x" / "out",
        "landing": tmp_path / "landing",
        "temp": tmp_path / "spill",
    }
    paths["source"].parent.mkdir()
    paths["source"].write_text(SAMPLE_CSV)
    paths["sibling"].write_text("password\nhunter2\n")
    paths["out"].mkdir(parents=True)
    paths["temp"].mkdir()
    return paths


def _error(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    with pytest.raises(duckdb.Error) as caught:
        con.execute(sql).fetchall()
    return str(caught.value)


# ---------------------------------------------------------------- DuckDB 2.0 under the lock


def test_reader_reads_only_the_source_files(box: dict[str, Path]) -> None:
    con = sandboxed_connection(temp_dir=box["temp"], read_files=[box["source"]])
    assert con.execute(f"SELECT count(*) FROM read_csv('{box['source']}')").fetchall() == [(2,)]
    refused = {
        "SELECT * FROM read_text('/etc/passwd')": '"/etc/passwd"',
        "SELECT * EXCLUDE (filename, size, last_modified) FROM read_text('/etc/passwd')": (
            '"/etc/passwd"'
        ),
        "SELECT * FROM read_csv('/etc/passwd')": '"/etc/passwd"',
        "SELECT * FROM read_blob('/etc/hostname')": '"/etc/hostname"',
        f"SELECT * FROM read_csv('{box['sibling']}')": f'"{box["sibling"]}"',
        # A path that walks out of an allowed file's folder is refused by name, not resolved.
        f"SELECT * FROM read_csv('{box['source'].parent}/../src/secret.csv')": "secret.csv",
        f"SELECT * FROM glob('{box['source'].parent}/*')": "/*",
        "SELECT * FROM read_csv('https://example.com/x.csv')": "https://example.com/x.csv",
    }
    for sql, path in refused.items():
        message = _error(con, sql)
        assert message.startswith("Permission Error: Cannot access file "), (sql, message)
        assert path in message.splitlines()[0] and NO_FILE_ACCESS in message, (sql, message)
    con.close()


def test_reader_writes_only_into_its_own_spill_folder(box: dict[str, Path]) -> None:
    """The connection that runs mapping SQL may write no file, except that DuckDB 2.0 lets a
    connection use its temp_directory without listing it in allowed_directories. The importer
    gives it a private spill folder inside the import's scratch folder, deleted at the end, and
    publishes nothing from it (and a mapping cannot run a COPY or ATTACH to begin with)."""
    con = sandboxed_connection(temp_dir=box["temp"], read_files=[box["source"]])
    sibling = box["temp"].parent / "spill-other"
    for target in (
        box["landing"] / "x.csv",
        box["out"] / "x.csv",
        box["source"].parent / "x.csv",
        sibling / "x.csv",
        box["temp"] / ".." / "landing" / "x.csv",
    ):
        message = _error(con, f"COPY (SELECT 1) TO '{target}'")
        assert message == f'Permission Error: Cannot access file "{target}" - {NO_FILE_ACCESS}'
    message = _error(con, f"ATTACH '{box['landing'] / 'x.duckdb'}' AS x")
    assert message == (
        f'Permission Error: Cannot access file "{box["landing"] / "x.duckdb"}" - {NO_FILE_ACCESS}'
    )
    message = _error(con, f"EXPORT DATABASE '{box['landing'] / 'dump'}'")
    assert message.startswith(f'Permission Error: Cannot access directory "{box["landing"]}')
    # DuckDB's implicit exception: the spill folder itself.
    con.execute(f"COPY (SELECT 1) TO '{box['temp'] / 'x.csv'}'").fetchall()
    con.close()
    assert sorted(p.name for p in box["landing"].iterdir()) == [".import-x"]
    assert not any(box["out"].iterdir())
    assert sorted(p.name for p in box["source"].parent.iterdir()) == ["invoices.csv", "secret.csv"]


def test_extensions_cannot_be_installed_or_loaded(box: dict[str, Path]) -> None:
    con = sandboxed_connection(temp_dir=box["temp"], read_files=[box["source"]])
    message = _error(con, "INSTALL httpfs")
    assert message.startswith("Permission Error: Cannot access directory")
    assert ".duckdb/extensions" in message
    assert _error(con, "LOAD httpfs") == (
        "Permission Error: Loading external extensions is disabled through configuration"
    )
    message = _error(con, f"INSTALL '{box['source']}'")
    assert message.startswith("Permission Error: Cannot access directory")
    # Built into the Python wheel, so LOAD touches no file: still usable (and needed, for ICU).
    con.execute("LOAD icu").fetchall()
    con.close()


def test_settings_are_locked(box: dict[str, Path]) -> None:
    con = sandboxed_connection(temp_dir=box["temp"], read_files=[box["source"]])
    for sql in (
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET allowed_directories = ['/']",
        "SET allowed_paths = ['/etc/passwd']",
        "SET autoload_known_extensions = true",
        "SET lock_configuration = false",
        "SET temp_directory = '/tmp'",
        "SET TimeZone = 'Europe/London'",
        "PRAGMA enable_profiling",
    ):
        assert LOCKED in _error(con, sql), sql
    assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
    message = _error(con, "CREATE SECRET (TYPE s3, KEY_ID 'a', SECRET 'b')")
    assert message.startswith("Permission Error")  # persistent secrets live in ~/.duckdb
    con.close()


def test_writer_may_use_its_folder_only(box: dict[str, Path]) -> None:
    con = sandboxed_connection(temp_dir=box["temp"], write_dir=box["out"])
    con.execute(f"COPY (SELECT 1 AS a) TO '{box['out'] / 'a.parquet'}' (FORMAT parquet)")
    assert con.execute(f"SELECT a FROM '{box['out'] / 'a.parquet'}'").fetchall() == [(1,)]
    sibling = box["out"].parent / "out-other"  # shares the prefix, not the folder
    for target in (box["landing"] / "x.csv", sibling / "x.csv", box["out"] / ".." / "x.csv"):
        assert _error(con, f"COPY (SELECT 1) TO '{target}'").startswith(
            "Permission Error: Cannot access file"
        )
    assert _error(con, f"SELECT * FROM read_csv('{box['source']}')").startswith("Permission Error")
    con.close()


def test_spilling_to_the_temp_folder_still_works(box: dict[str, Path]) -> None:
    """The spill folder need not be allowed: DuckDB's buffer manager writes it, no query can."""
    con = sandboxed_connection(temp_dir=box["temp"], memory_limit="64MB")
    # ~110 MB of text: the table and the sort below must go through the spill folder.
    con.execute(
        "CREATE TEMP TABLE big AS SELECT range::VARCHAR || repeat('x', 100) AS s "
        "FROM range(1000000)"
    ).fetchall()
    spilled = con.execute("SELECT path FROM duckdb_temporary_files()").fetchall()
    assert spilled and all(Path(p).parent == box["temp"] for (p,) in spilled)
    assert con.execute("SELECT count(*), max(s) FROM (SELECT s FROM big ORDER BY s)").fetchall()[
        0
    ] == (1_000_000, "9" + "x" * 100)  # text order: '9x...' sorts after '999999x...'
    con.close()


# ----------------------------------------------------------- hostile mappings, through the CLI


def _mapping_with(column: str, spec: Any) -> dict[str, Any]:
    mapping = copy.deepcopy(yaml.safe_load(ONLINE_RETAIL_MAPPING.read_text()))
    mapping["tables"]["orders"]["columns"][column] = spec
    return mapping


def _landing_state(landing: Path) -> list[tuple[str, int]]:
    return sorted((p.relative_to(landing).as_posix(), p.stat().st_size) for p in landing.rglob("*"))


HOSTILE = {
    # The mapping of issue 14: /etc/passwd's lines would have become user ids.
    "read_text": (
        "user_id",
        {
            "expr": "(SELECT * EXCLUDE (filename, size, last_modified) "
            "FROM read_text('/etc/passwd'))"
        },
        "tables.orders.columns.user_id: not allowed: a mapping expression may only compute "
        "values from the source columns; it cannot read or write files, attach databases, "
        "install or load extensions or change settings (DuckDB: Permission Error: Cannot access "
        'file "/etc/passwd" - file system operations are disabled by configuration)',
    ),
    "sibling": (
        "user_id",
        {"expr": "(SELECT string_agg(column0, ',') FROM read_csv('{sibling}', header = false))"},
        "tables.orders.columns.user_id: not allowed: ",
    ),
    "url": (
        "order_id",
        "(SELECT max(a) FROM read_csv('https://example.com/a.csv'))",
        'Cannot access file "https://example.com/a.csv"',
    ),
    "attach": (
        "order_id",
        {
            "expr": "1\n) AS VARCHAR) AS v FROM __src; ATTACH '{landing}/x.duckdb' AS x; "
            "SELECT CAST((1"
        },
        "tables.orders.columns.order_id: not a single SQL expression: the text adds a "
        "statement (ATTACH); a mapping expression may only compute a value from the source "
        "columns",
    ),
    "copy": (
        "amount",
        {
            "expr": "1\n) AS VARCHAR) AS v FROM __src; COPY (SELECT 1) TO '{landing}/x.csv'; "
            "SELECT CAST((1"
        },
        "tables.orders.columns.amount: not a single SQL expression: the text adds a statement "
        "(COPY)",
    ),
    "install": (
        "currency",
        {"expr": "1\n) AS VARCHAR) AS v FROM __src; INSTALL httpfs; LOAD httpfs; SELECT CAST((1"},
        "tables.orders.columns.currency: not a single SQL expression: the text adds a "
        "statement (INSTALL/LOAD)",
    ),
    "set": (
        "currency",
        {
            "expr": "1\n) AS VARCHAR) AS v FROM __src; SET enable_external_access = true; "
            "SELECT CAST((1"
        },
        "(SET)",
    ),
    "union": (
        "order_id",
        {"expr": "InvoiceNo\n) AS VARCHAR) AS v FROM __src UNION ALL SELECT CAST((InvoiceNo"},
        "tables.orders.columns.order_id: not a single SQL expression (the text changes the "
        "query around it",
    ),
    "rules": (
        "status",
        {
            "rules": [
                {
                    "when": "true) THEN 'paid' END) AS VARCHAR) AS v FROM __src; "
                    "COPY (SELECT 1) TO '{landing}/y.csv'; SELECT CAST((CASE WHEN (true",
                    "then": "paid",
                }
            ]
        },
        "tables.orders.columns.status: not a single SQL expression: the text adds a statement "
        "(COPY)",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_mapping_fails_with_one_line_and_writes_nothing(
    case: str, box: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    column, spec, expected = HOSTILE[case]
    landing = box["landing"]
    kept = landing / "orders" / "dt=2011-01-01" / "part-other-0.parquet"
    kept.parent.mkdir(parents=True)
    duckdb.connect().execute(f"COPY (SELECT 'X1' AS order_id) TO '{kept}' (FORMAT parquet)")
    before = _landing_state(landing)
    text = yaml.safe_dump(_mapping_with(column, spec))
    text = text.replace("{landing}", str(landing)).replace("{sibling}", str(box["sibling"]))
    mapping = tmp_path / "hostile.yml"
    mapping.write_text(text)

    code = main(
        ["import", str(box["source"]), "--mapping", str(mapping), "--landing-dir", str(landing)]
    )

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("userops import: ")
    assert expected in err
    # Nothing written: the landing folder holds exactly what it held (no partial or scratch
    # files, no x.duckdb, no x.csv), and nothing landed beside the source either.
    assert _landing_state(landing) == before
    assert sorted(p.name for p in box["source"].parent.iterdir()) == ["invoices.csv", "secret.csv"]


def test_hostile_mapping_into_a_new_landing_folder_leaves_no_folder(box: dict[str, Path]) -> None:
    landing = box["source"].parent.parent / "fresh" / "landing"
    column, spec, _ = HOSTILE["read_text"]
    with pytest.raises(ValueError, match="not allowed"):
        import_data(box["source"], _mapping_with(column, spec), landing)
    assert not (box["source"].parent.parent / "fresh").exists()


def test_expressions_can_still_read_the_source_itself(box: dict[str, Path]) -> None:
    """The sandbox admits the source file: a scalar subquery over it is allowed (it is the
    user's own data), and the import still writes one landing row per source row."""
    mapping = _mapping_with(
        "currency", {"expr": f"(SELECT count(*) FROM read_csv('{box['source']}'))"}
    )
    report = import_data(box["source"], mapping, box["landing"])
    assert report.rows_written == {"orders": 2}
    rows = duckdb.connect().execute(
        f"SELECT DISTINCT currency FROM read_parquet('{box['landing']}/orders/*/*.parquet')"
    )
    assert rows.fetchall() == [("2",)]


def test_no_process_state_leaks_into_later_connections(box: dict[str, Path]) -> None:
    """The locks are per database: an ordinary connection opened after an import is not
    sandboxed (DuckDB keeps no global state between in-memory databases)."""
    import_data(box["source"], ONLINE_RETAIL_MAPPING, box["landing"])
    con = duckdb.connect()
    assert con.execute("SELECT current_setting('enable_external_access')").fetchall() == [(True,)]
    assert con.execute("SELECT current_setting('lock_configuration')").fetchall() == [(False,)]
