"""The `userops` command as an operator runs it (`python -m userops.cli`, the console script's
module): one clear line instead of a traceback, inputs checked before dbt starts, and the end
of a build says what got in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from userops.cli import built_in_this_run
from userops.dbt import TELEMETRY_OFF
from userops.paths import PROJECT_DIR
from userops.quality.settings import missing_mandatory_message

LOCK_HOLDER = """
import sys, time
import duckdb
connection = duckdb.connect(sys.argv[1])
print("ready", flush=True)
time.sleep(120)
"""


def userops(
    *args: str, work: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "userops.cli", *args],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            **TELEMETRY_OFF,
            "USEROPS_SERVING_DIR": str(work / "serving"),
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], prefix: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Running with dbt" not in result.stdout  # failed before dbt started
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(prefix), line
    return line


def test_summary_of_a_missing_warehouse(tmp_path: Path) -> None:
    result = userops("summary", "--warehouse", "/nonexistent.duckdb", work=tmp_path)
    line = assert_one_clear_line(result, "userops summary: there is no warehouse at")
    assert "/nonexistent.duckdb" in line and "userops build" in line


@pytest.fixture()
def locked_warehouse(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A warehouse another process holds open for writing, and that process's id."""
    warehouse = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield warehouse, holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_build_on_a_locked_warehouse_names_the_holder(
    locked_warehouse: tuple[Path, int], sample_landing: Path, tmp_path: Path
) -> None:
    warehouse, pid = locked_warehouse
    result = userops(
        "build", "--landing-dir", str(sample_landing), "--warehouse", str(warehouse),
        work=tmp_path,
    )  # fmt: skip
    line = assert_one_clear_line(result, f"userops build: the warehouse {warehouse} is locked by")
    assert f"process {pid} (" in line and "-c" in line  # its command line
    assert "point BI tools at the serving copy" in line
    assert str(tmp_path / "serving" / "userops.duckdb") in line

    result = userops("summary", "--warehouse", str(warehouse), work=tmp_path)
    line = assert_one_clear_line(result, f"userops summary: the warehouse {warehouse} is locked")
    assert f"process {pid} (" in line


def test_build_without_the_mandatory_table_fails_first(
    tmp_path: Path, sample_landing: Path
) -> None:
    missing = tmp_path / "no_landing"
    warehouse = tmp_path / "w.duckdb"
    result = userops(
        "build", "--landing-dir", str(missing), "--warehouse", str(warehouse), work=tmp_path
    )
    line = assert_one_clear_line(result, "userops build: Landing table 'orders' is mandatory")
    assert line == (
        f"userops build: {missing_mandatory_message(missing, 'orders')}"
        f" (The landing folder {missing} does not exist.)"
    )
    assert not warehouse.exists()
    # The message is the one dbt raises from macros/landing/landing_table_ready.sql.
    macro = (PROJECT_DIR / "macros" / "landing" / "landing_table_ready.sql").read_text()
    for part in (
        "is mandatory but no file matches ",
        ". Generate sample data (userops generate) or import your own (userops import).",
    ):
        assert part in line and part in macro

    # A landing folder with users but no orders: the same message, without the folder note.
    partial = tmp_path / "partial"
    (partial / "users").mkdir(parents=True)
    (partial / "users" / "dt=2026-06-30").symlink_to(
        next((sample_landing / "users").iterdir()), target_is_directory=True
    )
    result = userops(
        "build", "--landing-dir", str(partial), "--warehouse", str(warehouse), work=tmp_path
    )
    line = assert_one_clear_line(result, "userops build: Landing table 'orders' is mandatory")
    assert line == f"userops build: {missing_mandatory_message(partial, 'orders')}"


def test_built_in_this_run_reads_dbt_run_results(tmp_path: Path) -> None:
    results = tmp_path / "run_results.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.userops.landing_row_accounting", "status": "success"},
                    {"unique_id": "model.userops.users", "status": "error"},
                    {"unique_id": "test.userops.not_null_users_user_id", "status": "fail"},
                ]
            }
        )
    )
    now = results.stat().st_mtime
    assert built_in_this_run("landing_row_accounting", results, since=now - 1)
    assert not built_in_this_run("users", results, since=now - 1)
    assert not built_in_this_run("not_null_users_user_id", results, since=now - 1)
    # Results of an earlier run say nothing about this one.
    assert not built_in_this_run("landing_row_accounting", results, since=now + 1)
    assert not built_in_this_run("landing_row_accounting", tmp_path / "absent.json", since=0)


def test_build_ends_with_what_got_in(tmp_path: Path, sample_landing: Path) -> None:
    """A floor after every generated timestamp (the 1997 log of issue 18, reversed): nothing is
    staged, and the end of the build says so, with the marts' own numbers."""
    warehouse = tmp_path / "w.duckdb"
    result = userops(
        "build", "--no-publish", "--landing-dir", str(sample_landing),
        "--warehouse", str(warehouse), "--", "--select", "+landing_row_accounting",
        "--vars", '{"min_valid_timestamp": "2099-01-01"}',
        work=tmp_path,
    )  # fmt: skip
    assert "Running with dbt" in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    text = result.stdout.split("What got in (marts.landing_row_accounting")[1]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        accounting = connection.execute(
            "select table_name, raw_rows, staged_rows, quarantined_rows"
            " from marts.landing_row_accounting"
        ).fetchall()
        reasons = dict(
            connection.execute(
                "select table_name, count(*) from marts.quarantined_rows"
                " where quarantine_reason = 'bad_timestamp' group by all"
            ).fetchall()
        )
    for table, raw, staged, quarantined in accounting:
        match = re.search(
            rf"^(.) {table} +([\d,]+) raw +([\d,]+) staged \(([\d.]+) %\) +([\d,]+) quarantined",
            text,
            re.MULTILINE,
        )
        assert match, (table, text)
        marker, raw_text, staged_text, _, quarantined_text = match.groups()
        assert (raw_text, staged_text, quarantined_text) == (
            f"{raw:,}",
            f"{staged:,}",
            f"{quarantined:,}",
        )
        if table in reasons:  # every table with a timestamp: all of it quarantined
            assert staged == 0 and marker == "!"
            assert f"! {table}: only 0.0 % of {raw:,} raw rows got in." in text
    assert set(reasons) == {
        "users",
        "events",
        "orders",
        "marketing_spend",
        # the optional operations tables the generator writes
        "contact_preferences",
        "deliveries",
        "experiment_exposures",
        "feedback",
        "service_tickets",
    }
    assert "old history needs a lower var min_valid_timestamp" in text
    # The floor named is the one this build ran with, not dbt_project.yml's.
    assert "var min_valid_timestamp (--vars: 2099-01-01)" in text
    assert "dbt_project.yml: " not in text
