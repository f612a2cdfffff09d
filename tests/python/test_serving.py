"""Serving: BI readers query the published copy while builds run, see each new build on their
next connection (even a long-lived process that keeps DuckDB's database open), and only ever
read complete builds. Kills and a full disk during a publish: test_serving_faults.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import Build
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from userops.dbt import TELEMETRY_OFF, run_dbt
from userops.generate import generate
from userops.paths import PROJECT_DIR
from userops.serving import (
    COMPLETE_MARKER,
    PIN_VARIABLE,
    SERVING_FILE,
    publish,
    served_build_id,
    serving_location,
)

# A reader as a long-lived BI process runs: one connection stays open the whole time (a pool's
# idle connection), so DuckDB keeps the database object of the entry file cached in this
# process, and every answer comes from a new connection, three statements each.
READER = """
import json, sys, time
from pathlib import Path
import duckdb
path, stop, out = sys.argv[1], Path(sys.argv[2]), open(sys.argv[3], "w")
held = duckdb.connect(path, read_only=True)
held.execute("select 1").fetchall()
while not stop.exists():
    started = time.time()
    try:
        with duckdb.connect(path, read_only=True) as connection:
            build_id = connection.execute("select build_id from meta.publication").fetchall()[0][0]
            users = connection.execute("select count(*) from marts.users").fetchall()[0][0]
            raw = connection.execute(
                "select sum(raw_rows) from marts.landing_row_accounting").fetchall()[0][0]
        read = {"started": started, "build_id": build_id, "users": users, "raw": int(raw)}
    except Exception as error:  # every failure is recorded: the test asserts there are none
        read = {"started": started, "error": repr(error)}
    out.write(json.dumps(read) + "\\n")
    out.flush()
    time.sleep(0.02)
"""


def counts(database: Path) -> tuple[int, int]:
    """Users and raw landing rows: a working warehouse or the serving entry file alike."""
    with duckdb.connect(str(database), read_only=True) as connection:
        users = connection.execute("select count(*) from marts.users").fetchall()[0][0]
        raw = connection.execute("select sum(raw_rows) from marts.landing_row_accounting")
        return users, int(raw.fetchall()[0][0])


def cli_publish(
    warehouse: Path, serving: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`userops publish` in its own process, as an operator (or `userops build`) runs it."""
    command = [sys.executable, "-m", "userops.cli", "publish", "--warehouse", str(warehouse)]
    if serving is not None:
        command += ["--serving-dir", str(serving)]
    environment = {**os.environ, **TELEMETRY_OFF, **(env or {})}
    if env is None or "USEROPS_SERVING_DIR" not in env:
        environment.pop("USEROPS_SERVING_DIR", None)
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=300
    )


def published_id(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"^Published build (\S+): ", result.stdout, re.MULTILINE)
    assert match, result.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def variant_warehouse(sample_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample warehouse with 7 users fewer and one extra mart: a second, different build."""
    path = tmp_path_factory.mktemp("variant") / "warehouse.duckdb"
    shutil.copy(sample_build.warehouse_path, path)
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "delete from marts.users where user_id in "
            "(select user_id from marts.users order by user_id limit 7)"
        )
        connection.execute("create table marts.variant_only as select 42 as answer")
    return path


# ------------------------------------------------------------------------ what is published
def test_publish_serves_marts_and_meta_only_as_the_warehouse_has_them(
    sample_build: Build, tmp_path: Path
) -> None:
    serving = tmp_path / "serving"
    publication = publish(sample_build.warehouse_path, serving, build_id="b1")
    assert publication.database == serving / SERVING_FILE
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as working:
        marts = [
            row[0]
            for row in working.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' order by 1"
            ).fetchall()
        ]
        expected = {
            table: working.execute(
                f"select column_name, data_type from information_schema.columns where "
                f"table_schema = 'marts' and table_name = '{table}' order by ordinal_position"
            ).fetchall()
            for table in marts
        }
        checksums = {
            table: working.execute(f"select count(*), sum(hash(t)) from marts.{table} t").fetchall()
            for table in marts
        }
    assert len(marts) > 20 and publication.tables == {
        f"marts.{table}": checksums[table][0][0] for table in marts
    }
    with duckdb.connect(str(publication.database), read_only=True) as served:
        assert served.execute("select build_id from meta.publication").fetchall() == [("b1",)]
        # The entry file holds views only, in marts and meta: staging, intermediate, config and
        # ml stay private.
        assert served.execute("select count(*) from duckdb_tables()").fetchall() == [(0,)]
        views = served.execute(
            "select schema_name, view_name, sql from duckdb_views() where not internal"
        ).fetchall()
        assert {(schema, view) for schema, view, _ in views} == {
            *(("marts", table) for table in marts),
            ("meta", "publication"),
        }
        for _, _, sql in views:
            assert f"'{serving / 'parquet'}/'" in sql and "getvariable('userops_build')" in sql
        for table in marts:
            # Same columns, same types, same rows as the warehouse: nothing lost to Parquet.
            assert (
                served.execute(
                    "select column_name, data_type from information_schema.columns where "
                    f"table_schema = 'marts' and table_name = '{table}' order by ordinal_position"
                ).fetchall()
                == expected[table]
            ), table
            assert (
                served.execute(f"select count(*), sum(hash(t)) from marts.{table} t").fetchall()
                == checksums[table]
            ), table
    # The Parquet build: exactly the served tables, the publication record and the marker.
    current = serving / "parquet" / "current"
    assert current.resolve() == publication.parquet_dir.resolve()
    files = sorted(str(p.relative_to(current.resolve())) for p in current.resolve().rglob("*.*"))
    assert files == sorted(
        [f"marts/{table}.parquet" for table in marts] + ["meta/publication.parquet"]
    )
    marker = json.loads((current / COMPLETE_MARKER).read_text())
    assert marker["build_id"] == "b1" and marker["tables"] == publication.tables
    with duckdb.connect() as connection:
        [(parquet_users,)] = connection.execute(
            f"select count(*) from '{current}/marts/users.parquet'"
        ).fetchall()
    assert parquet_users == publication.tables["marts.users"]
    # A second and a third publication: `current` moves, the build before it stays for readers
    # that resolved `current` a moment ago, older ones go.
    second = publish(sample_build.warehouse_path, serving, build_id="b2")
    assert current.resolve() == second.parquet_dir.resolve() and publication.parquet_dir.exists()
    publish(sample_build.warehouse_path, serving, build_id="b3")
    assert sorted(p.name for p in (serving / "parquet").iterdir()) == ["b2", "b3", "current"]
    assert served_build_id(serving) == "b3"


# ------------------------------------------------------------------- long-lived BI processes
def test_a_long_lived_sqlalchemy_process_sees_each_new_build(
    sample_build: Build, variant_warehouse: Path, tmp_path: Path
) -> None:
    """One process, the way Superset or a notebook holds DuckDB through SQLAlchemy: a pooled
    engine with a connection checked out the whole time, a NullPool engine, and brand-new
    engines, across publishes by another process. Every answer is the latest build."""
    serving = tmp_path / "serving"
    uri = f"duckdb:///{serving / SERVING_FILE}?access_mode=read_only"
    expected_users = {
        sample_build.warehouse_path: counts(sample_build.warehouse_path)[0],
        variant_warehouse: counts(variant_warehouse)[0],
    }
    assert expected_users[variant_warehouse] == expected_users[sample_build.warehouse_path] - 7

    def answer(connection: object) -> tuple[str, int]:
        execute = connection.execute  # type: ignore[attr-defined]
        build_id = execute(text("select build_id from meta.publication")).scalar_one()
        return build_id, execute(text("select count(*) from marts.users")).scalar_one()

    build_id = published_id(cli_publish(sample_build.warehouse_path, serving))
    pooled = create_engine(uri)  # duckdb-engine's default for a file: QueuePool
    held = pooled.connect()  # never returned to the pool before the end of the test
    assert answer(held) == (build_id, expected_users[sample_build.warehouse_path])
    seen = [build_id]
    for warehouse in (variant_warehouse, sample_build.warehouse_path):
        build_id = published_id(cli_publish(warehouse, serving))
        expected = (build_id, expected_users[warehouse])
        with pooled.connect() as connection:
            assert answer(connection) == expected
        with create_engine(uri, poolclass=NullPool).connect() as connection:
            assert answer(connection) == expected
        fresh = create_engine(uri)
        with fresh.connect() as connection:
            assert answer(connection) == expected
        fresh.dispose()
        assert answer(held) == expected  # even the connection that stayed open
        seen.append(build_id)
    assert len(set(seen)) == 3
    # The first build's files are gone (two later publishes), the held connection still works.
    assert not (serving / "parquet" / seen[0]).exists()
    held.close()
    pooled.dispose()


def test_tables_added_or_dropped_reach_a_process_once_its_connections_closed(
    sample_build: Build, variant_warehouse: Path, tmp_path: Path
) -> None:
    """What the entry file's views cannot do: a process that keeps a connection open has the
    entry file's list of tables from when it opened it."""
    serving = tmp_path / "serving"
    entry = str(serving / SERVING_FILE)
    published_id(cli_publish(sample_build.warehouse_path, serving))
    held = duckdb.connect(entry, read_only=True)
    published_id(cli_publish(variant_warehouse, serving))  # adds marts.variant_only
    with duckdb.connect(entry, read_only=True) as connection:
        assert counts(Path(entry)) == counts(variant_warehouse)  # existing tables: new build
        with pytest.raises(duckdb.CatalogException, match="variant_only"):
            connection.execute("select * from marts.variant_only")
    held.close()  # now no connection of this process has the entry file open
    held = duckdb.connect(entry, read_only=True)
    assert held.execute("select * from marts.variant_only").fetchall() == [(42,)]
    published_id(cli_publish(sample_build.warehouse_path, serving))  # drops it again
    with pytest.raises(duckdb.IOException, match="variant_only.parquet"):
        held.execute("select * from marts.variant_only")
    assert held.execute("select count(*) from marts.users").fetchall() == [
        (counts(sample_build.warehouse_path)[0],)
    ]
    held.close()


def test_a_connection_can_pin_one_build_across_queries(
    sample_build: Build, variant_warehouse: Path, tmp_path: Path
) -> None:
    serving = tmp_path / "serving"
    first = publish(sample_build.warehouse_path, serving, build_id="first")
    with duckdb.connect(str(first.database), read_only=True) as connection:
        connection.execute(f"set variable {PIN_VARIABLE} = 'first'")
        publish(variant_warehouse, serving, build_id="second")
        assert connection.execute("select build_id from meta.publication").fetchall() == [
            ("first",)
        ]
        assert connection.execute("select count(*) from marts.users").fetchall() == [
            (counts(sample_build.warehouse_path)[0],)
        ]
        connection.execute(f"reset variable {PIN_VARIABLE}")
        assert connection.execute("select build_id from meta.publication").fetchall() == [
            ("second",)
        ]


def test_reader_never_blocks_or_sees_a_partial_build(sample_build: Build, tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    first = publish(sample_build.warehouse_path, serving, build_id="20260101T000000-first")
    expected = {first.build_id: counts(sample_build.warehouse_path)}

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
        published = time.time()
        expected[second.build_id] = counts(working)
        time.sleep(1.5)
    finally:
        stop.touch()
        reader.wait(timeout=30)

    reads = [json.loads(line) for line in log.read_text().splitlines()]
    assert [read for read in reads if "error" in read] == []
    assert expected[first.build_id] != expected[second.build_id]
    # Every statement reads one complete build: each value is that table's value in a build.
    for read in reads:
        assert read["build_id"] in expected
        assert read["users"] in {users for users, _ in expected.values()}
        assert read["raw"] in {raw for _, raw in expected.values()}
    # The three statements of an answer come from one build, except for at most the one answer
    # during which the single switch happened (each statement follows `current` on its own).
    mixed = [r for r in reads if (r["users"], r["raw"]) != expected[r["build_id"]]]
    assert len(mixed) <= 1, mixed
    # Builds come in order per table: never back to the first after the second appeared.
    for key in ("build_id", "users", "raw"):
        values = [read[key] for read in reads]
        switch = next(i for i, value in enumerate(values) if value != values[0])
        assert set(values[switch:]) == {values[-1]} and values[-1] != values[0], key
    # The reader process kept a connection open throughout, and still every answer that
    # started after the publish returned is the new build.
    after = [read for read in reads if read["started"] > published]
    assert len(after) >= 10
    assert all(
        (read["build_id"], read["users"], read["raw"])
        == (second.build_id, *expected[second.build_id])
        for read in after
    )
    assert {read["build_id"] for read in reads} == set(expected)


# ------------------------------------------------------------------------- where it goes
def test_serving_location_follows_the_warehouse_unless_told(tmp_path: Path) -> None:
    default = PROJECT_DIR / "data" / "warehouse" / "userops.duckdb"
    scratch = tmp_path / "x" / "w.duckdb"
    env = {"USEROPS_SERVING_DIR": str(tmp_path / "from-env")}
    assert serving_location(default, environ={}).path == PROJECT_DIR / "data" / "serving"
    assert serving_location(scratch, environ={}).path == tmp_path / "x" / "serving"
    assert serving_location(scratch, environ={}).reason == f"next to {scratch}"
    assert serving_location(scratch, environ=env).path == tmp_path / "from-env"
    assert serving_location(scratch, environ=env).reason == "$USEROPS_SERVING_DIR"
    explicit = serving_location(scratch, tmp_path / "flag", environ=env)
    assert (explicit.path, explicit.reason) == (tmp_path / "flag", "--serving-dir")


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_publish_of_another_warehouse_never_touches_the_projects_serving_copy(
    sample_build: Build, tmp_path: Path
) -> None:
    """`userops publish --warehouse ...` (and paths with a quote in them, which used to end the
    SQL string early): the serving copy goes next to that warehouse, and the output says so."""
    project_serving = PROJECT_DIR / "data" / "serving"
    before = _tree(project_serving)
    warehouse = tmp_path / "it's a scratch" / "w.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(sample_build.warehouse_path, warehouse)
    result = cli_publish(warehouse)
    build_id = published_id(result)
    serving = tmp_path / "it's a scratch" / "serving"
    assert f" to {serving} (next to {warehouse})." in result.stdout
    assert f"BI (DuckDB, read-only): {serving / SERVING_FILE}" in result.stdout
    assert served_build_id(serving) == build_id
    assert counts(serving / SERVING_FILE) == counts(sample_build.warehouse_path)
    # An explicit folder with a quote, by flag and by environment variable; the flag wins.
    flagged, from_env = tmp_path / "o'brien's serving", tmp_path / "env's serving"
    result = cli_publish(warehouse, flagged, env={"USEROPS_SERVING_DIR": str(from_env)})
    assert f" to {flagged} (--serving-dir)." in result.stdout
    assert served_build_id(flagged) == published_id(result)
    assert counts(flagged / SERVING_FILE) == counts(sample_build.warehouse_path)
    result = cli_publish(warehouse, env={"USEROPS_SERVING_DIR": str(from_env)})
    assert f" to {from_env} ($USEROPS_SERVING_DIR)." in result.stdout
    assert served_build_id(from_env) == published_id(result)
    assert _tree(project_serving) == before


def test_userops_build_publishes_next_to_its_warehouse(sample_build: Build, tmp_path: Path) -> None:
    """The case of the issue: `userops build --warehouse /tmp/x/w.duckdb` (one seed, so dbt has
    little to do; the marts are the sample build's) publishes to /tmp/x/serving."""
    project_serving = PROJECT_DIR / "data" / "serving"
    before = _tree(project_serving)
    warehouse = tmp_path / "x" / "w.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(sample_build.warehouse_path, warehouse)
    environment = {**os.environ, **TELEMETRY_OFF, "DBT_TARGET_PATH": str(tmp_path / "target")}
    environment.pop("USEROPS_SERVING_DIR", None)
    command = [sys.executable, "-m", "userops.cli", "build", "--landing-dir"]
    command += [str(sample_build.landing_dir), "--warehouse", str(warehouse)]
    command += ["--", "-s", "funnels", "--log-path", str(tmp_path / "logs")]
    result = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=600
    )
    build_id = published_id(result)
    assert f" to {tmp_path / 'x' / 'serving'} (next to {warehouse})." in result.stdout
    assert served_build_id(tmp_path / "x" / "serving") == build_id
    assert _tree(project_serving) == before
