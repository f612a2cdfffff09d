"""Safe serving: readers query the published copy while a build runs, and only see whole builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
from conftest import Build

from userops.dbt import run_dbt
from userops.generate import generate
from userops.serving import SERVING_FILE, publish

READER = """
import json, sys, time
from pathlib import Path
import duckdb
path, stop, out = sys.argv[1], Path(sys.argv[2]), open(sys.argv[3], "w")
while not stop.exists():
    try:
        with duckdb.connect(path, read_only=True) as connection:
            build_id = connection.execute("select build_id from meta.publication").fetchall()[0][0]
            users = connection.execute("select count(*) from marts.users").fetchall()[0][0]
            raw = connection.execute(
                "select sum(raw_rows) from marts.landing_row_accounting").fetchall()[0][0]
        out.write(json.dumps({"build_id": build_id, "users": users, "raw": int(raw)}) + "\\n")
    except Exception as error:  # every failure is recorded: the test asserts there are none
        out.write(json.dumps({"error": repr(error)}) + "\\n")
    out.flush()
    time.sleep(0.02)
"""


def served_counts(database: Path) -> tuple[int, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        users = connection.execute("select count(*) from marts.users").fetchall()[0][0]
        raw = connection.execute("select sum(raw_rows) from marts.landing_row_accounting")
        return users, int(raw.fetchall()[0][0])


def test_publish_copies_marts_and_parquet(sample_build: Build, tmp_path: Path) -> None:
    publication = publish(sample_build.warehouse_path, tmp_path / "serving", build_id="b1")
    assert publication.database == tmp_path / "serving" / SERVING_FILE
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as working:
        expected = dict(
            working.execute(
                "select table_name, estimated_size from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        )
        [(users,)] = working.execute("select count(*) from marts.users").fetchall()
    assert {name.split(".")[1] for name in publication.tables} == set(expected)
    assert publication.tables["marts.users"] == users
    with duckdb.connect(str(publication.database), read_only=True) as served:
        assert served.execute("select build_id from meta.publication").fetchall() == [("b1",)]
        schemas = {
            row[0] for row in served.execute("select schema_name from duckdb_tables()").fetchall()
        }
    assert schemas == {"marts", "meta"}  # staging and intermediate stay private
    current = tmp_path / "serving" / "parquet" / "current"
    assert current.resolve() == publication.parquet_dir.resolve()
    with duckdb.connect() as connection:
        [(parquet_users,)] = connection.execute(
            f"select count(*) from '{current}/marts/users.parquet'"
        ).fetchall()
    assert parquet_users == users
    # A second publication repoints `current` and keeps the previous build for open readers.
    second = publish(sample_build.warehouse_path, tmp_path / "serving", build_id="b2")
    assert current.resolve() == second.parquet_dir.resolve()
    assert publication.parquet_dir.exists()


def test_reader_never_blocks_or_sees_a_partial_build(sample_build: Build, tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    first = publish(sample_build.warehouse_path, serving, build_id="20260101T000000-first")
    expected = {first.build_id: served_counts(first.database)}

    # The next build works on its own copy of the warehouse with different data.
    working = tmp_path / "working.duckdb"
    shutil.copy(sample_build.warehouse_path, working)
    landing = tmp_path / "landing"
    generate(landing, users=150, days=20, end_date=date(2026, 6, 30), seed=99, bad_row_share=0.0)

    stop, log = tmp_path / "stop", tmp_path / "reads.jsonl"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(first.database), str(stop), str(log)]
    )
    try:
        time.sleep(1.0)
        # Only the served models the reader checks: the point is the swap, not the models.
        result = run_dbt(
            [
                "build",
                "-s",
                "+users",
                "+landing_row_accounting",
                "--indirect-selection",
                "cautious",
            ],
            landing_dir=landing,
            warehouse_path=working,
            capture=True,
            target_path=tmp_path / "target",
        )
        assert result.returncode == 0, result.stdout[-3000:]
        second = publish(working, serving, build_id="20260101T000001-second")
        expected[second.build_id] = served_counts(second.database)
        time.sleep(1.0)
    finally:
        stop.touch()
        reader.wait(timeout=30)

    reads = [json.loads(line) for line in log.read_text().splitlines()]
    assert [read for read in reads if "error" in read] == []
    seen = {read["build_id"] for read in reads}
    assert seen == set(expected)
    assert expected[first.build_id] != expected[second.build_id]
    for read in reads:
        assert (read["users"], read["raw"]) == expected[read["build_id"]]
    # Builds the reader saw come in order: never back to the first after the second appeared.
    order = [read["build_id"] for read in reads]
    assert order == sorted(order)
