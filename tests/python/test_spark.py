"""The same dbt project on Spark: `dbt build --target spark` (dbt-spark, method session: a local
pyspark session inside the dbt process) builds every model of the sample data set, and every mart
holds the same rows as on DuckDB.

Spark writes its marts as parquet folders under the warehouse directory, so they are read back
with DuckDB: no second Spark session (the local Derby metastore admits one process at a time).
Run with `pytest -m spark`; it needs Java 17.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, Build

from userops.dbt import dbt_env, dbt_executable

pytestmark = pytest.mark.spark

MARTS = sorted(path.stem for path in (PROJECT_DIR / "models" / "marts").rglob("*.sql"))

# Columns that differ by design between engines, per mart:
# - quarantined_at is the build's clock;
# - raw_record is the raw row as JSON, and each engine writes JSON its own way (timestamp text,
#   number format); quarantined_row_key numbers rows of a file in raw_record order.
ENGINE_SPECIFIC_COLUMNS = {
    "quarantined_rows": {"quarantined_at", "raw_record", "quarantined_row_key"},
}

# Where a local session leaves state when nothing tells it otherwise: none of it may appear.
SPARK_LEFTOVERS = ("metastore_db", "spark-warehouse", "derby.log")

# A double computed in another order (parallel sums) differs in the last bits.
RELATIVE_TOLERANCE = 1e-9


class SparkBuild:
    def __init__(self, spark_dir: Path, result: subprocess.CompletedProcess[str], seconds: float):
        self.spark_dir = spark_dir
        self.result = result
        self.seconds = seconds

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def table_files(self, schema: str, table: str) -> str:
        # Managed tables of the local catalogue: <warehouse>/<schema>.db/<table>/part-*.parquet.
        return str(self.spark_dir / "warehouse" / f"{schema}.db" / table / "*.parquet")

    def run_results(self) -> dict:
        return json.loads((self.spark_dir / "target" / "run_results.json").read_text())


@pytest.fixture(scope="module")
def spark_build(sample_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> SparkBuild:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17 (java on PATH or JAVA_HOME)")
    pytest.importorskip("pyspark")
    spark_dir = tmp_path_factory.mktemp("spark_build")
    leftovers_before = {name for name in SPARK_LEFTOVERS if (PROJECT_DIR / name).exists()}
    env = dbt_env(sample_landing, spark_dir / "unused.duckdb")
    env["DBT_PROJECT_DIR"] = env["DBT_PROFILES_DIR"] = str(PROJECT_DIR)
    env["USEROPS_SPARK_DIR"] = str(spark_dir)
    # Two dbt threads on the one session: Spark plans one node while it runs another.
    env["USEROPS_SPARK_THREADS"] = "2"
    # The session's driver binds to the host name otherwise, which may not resolve in CI.
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    started = time.monotonic()
    result = subprocess.run(
        [
            dbt_executable(),
            "build",
            "--target",
            "spark",
            "--target-path",
            str(spark_dir / "target"),
            "--log-path",
            str(spark_dir / "logs"),
        ],
        cwd=PROJECT_DIR,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    build = SparkBuild(spark_dir, result, time.monotonic() - started)
    leftovers = {name for name in SPARK_LEFTOVERS if (PROJECT_DIR / name).exists()}
    assert leftovers <= leftovers_before, f"Spark left {leftovers - leftovers_before} in the repo"
    return build


def successful_models(run_results: dict) -> set[str]:
    return {
        result["unique_id"]
        for result in run_results["results"]
        if result["unique_id"].startswith("model.") and result["status"] == "success"
    }


def test_spark_build_passes_every_node(spark_build: SparkBuild, sample_build: Build) -> None:
    assert spark_build.result.returncode == 0, spark_build.output[-6000:]
    statuses = [result["status"] for result in spark_build.run_results()["results"]]
    assert statuses and set(statuses) <= {"success", "pass"}, spark_build.output[-6000:]
    # Every model DuckDB builds, Spark builds too (none disabled or skipped on Spark).
    duckdb_results = json.loads(
        (sample_build.warehouse_path.parent / "target" / "run_results.json").read_text()
    )
    assert successful_models(spark_build.run_results()) == successful_models(duckdb_results)
    print(f"dbt build --target spark: {len(statuses)} nodes in {spark_build.seconds:.0f} s")


def comparable(value: object) -> object:
    """A cell as a plain Python value, the same on both engines."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        # Spark timestamps are instants (session time zone UTC), DuckDB's are UTC wall clock.
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def sort_key(row: tuple) -> tuple:
    # Nulls first; doubles rounded so last-bit differences do not reorder rows.
    return tuple(
        (0, "") if value is None else (1, round(value, 6) if isinstance(value, float) else value)
        for value in row
    )


def column_names(connection: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [row[0] for row in connection.execute(f"describe select * from {relation}").fetchall()]


def read_rows(connection: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> list:
    select = ", ".join(f'"{column}"' for column in columns)
    rows = connection.execute(f"select {select} from {relation}").fetchall()
    return sorted((tuple(comparable(value) for value in row) for row in rows), key=sort_key)


def cells_equal(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return left == right


@pytest.fixture(scope="module")
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


@pytest.mark.parametrize("mart", MARTS)
def test_mart_equals_duckdb(
    mart: str,
    spark_build: SparkBuild,
    sample_build: Build,
    connection: duckdb.DuckDBPyConnection,
) -> None:
    assert spark_build.result.returncode == 0, spark_build.output[-3000:]
    spark_relation = f"read_parquet('{spark_build.table_files('marts', mart)}')"
    duckdb_path = str(sample_build.warehouse_path).replace("'", "''")
    connection.execute(f"attach if not exists '{duckdb_path}' as duck (read_only)")
    duckdb_relation = f"duck.marts.{mart}"
    duckdb_columns = column_names(connection, duckdb_relation)
    assert column_names(connection, spark_relation) == duckdb_columns

    columns = [c for c in duckdb_columns if c not in ENGINE_SPECIFIC_COLUMNS.get(mart, set())]
    expected = read_rows(connection, duckdb_relation, columns)
    actual = read_rows(connection, spark_relation, columns)
    assert len(actual) == len(expected), f"{mart}: {len(actual)} rows on Spark, {len(expected)}"
    for spark_row, duckdb_row in zip(actual, expected, strict=True):
        differing = [
            f"{column}: spark={spark_value!r} duckdb={duckdb_value!r}"
            for column, spark_value, duckdb_value in zip(
                columns, spark_row, duckdb_row, strict=True
            )
            if not cells_equal(spark_value, duckdb_value)
        ]
        assert not differing, f"{mart}, first differing row: " + "; ".join(differing)
