"""A landing folder and a warehouse whose paths hold a single quote and a space build and
publish, Parquet and CSV: every path reaches SQL through one escaping helper (userops/sql.py in
Python, the sql_string_literal macro in dbt)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from userops.dbt import TELEMETRY_OFF, run_dbt
from userops.generate import generate
from userops.paths import PROJECT_DIR
from userops.sql import sql_string_literal

END_DATE = date(2026, 6, 30)


def userops_build(landing: Path, warehouse: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "userops.cli", "build", "--landing-dir", str(landing)]
        + ["--warehouse", str(warehouse), *extra],
        cwd=PROJECT_DIR,
        env={**os.environ, **TELEMETRY_OFF},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def quoted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quotes")
    landing = root / "o'brien data" / "landing"
    warehouse = root / "ware 'house" / "w.duckdb"
    generate(landing, users=50, days=10, end_date=END_DATE, seed=11, bad_row_share=0.05)
    built = userops_build(landing, warehouse)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return {"landing": landing, "warehouse": warehouse}


def test_sql_string_literal_keeps_a_quoted_path_one_string() -> None:
    path = "/data/o'brien data/x''y.parquet"
    assert sql_string_literal(path) == "'/data/o''brien data/x''''y.parquet'"
    assert duckdb.sql(f"select {sql_string_literal(path)}").fetchall() == [(path,)]


def test_quoted_paths_build_and_publish(quoted: dict[str, Path]) -> None:
    landing, warehouse = quoted["landing"], quoted["warehouse"]
    serving = warehouse.parent / "serving" / "userops.duckdb"
    assert serving.exists()
    with duckdb.connect(str(serving), read_only=True) as connection:
        accounting = connection.execute(
            "select table_name, raw_rows, staged_rows, quarantined_rows "
            "from marts.landing_row_accounting order by table_name"
        ).fetchall()
        files = {
            row[0]
            for row in connection.execute(
                "select distinct source_file from marts.quarantined_rows"
            ).fetchall()
        }
        users = connection.execute("select count(*) from marts.users").fetchone()[0]
    by_table = {name: (raw, staged, quarantined) for name, raw, staged, quarantined in accounting}
    # Every generated table was read through the quoted path, and no row was lost on the way.
    assert {"users", "events", "orders", "order_items", "marketing_spend"} <= by_table.keys()
    for name, (raw, staged, quarantined) in by_table.items():
        assert raw == staged + quarantined, name
    assert by_table["events"][0] > 0 and by_table["orders"][0] > 0
    assert 45 <= users <= 60
    # Paths come back as they are: one quote, not an escaped pair.
    assert files and all(file.startswith(str(landing) + "/") for file in files), files
    assert not any("''" in file for file in files)


def test_a_csv_landing_folder_with_a_quote_builds(tmp_path: Path, quoted: dict[str, Path]) -> None:
    """CSV files are described one by one (read_csv of each file's path)."""
    csv_landing = tmp_path / "it's csv" / "landing"
    for source in sorted((quoted["landing"] / "orders").glob("*/*.parquet")):
        target = csv_landing / "orders" / source.parent.name / "part-0.csv"
        target.parent.mkdir(parents=True)
        duckdb.sql(
            f"copy (select * from read_parquet({sql_string_literal(source)})) "
            f"to {sql_string_literal(target)} (header)"
        )
    result = run_dbt(
        # cautious: tests that also read models not built here (the value cohorts) stay out.
        [
            "build",
            "--select",
            "base_landing__orders",
            "stg_landing__orders",
            "--indirect-selection",
            "cautious",
        ],
        landing_dir=csv_landing,
        warehouse_path=tmp_path / "o'neil wh" / "w.duckdb",
        dbt_vars={"landing_format": "csv"},
        capture=True,
        target_path=tmp_path / "target",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    glob = sql_string_literal(str(csv_landing / "orders" / "*" / "*.csv"))
    with duckdb.connect(str(tmp_path / "o'neil wh" / "w.duckdb"), read_only=True) as connection:
        raw = connection.execute(f"select count(*) from read_csv({glob})").fetchone()[0]
        read = connection.execute("select count(*) from staging.base_landing__orders").fetchone()[0]
    assert raw > 0 and read == raw
