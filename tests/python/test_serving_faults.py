"""A publish killed (SIGKILL) at every step, or stopped by a full disk, never costs readers the
last good build, and the next publish succeeds and leaves nothing behind.

Every publish under test runs in its own process. Named points: USEROPS_PUBLISH_PAUSE_AT makes
the publish stop there (userops/serving.py PAUSE_POINTS) and the test kills it. Moments in
between: a timer in the publishing process kills it a given time after publish() started. A
full disk: RLIMIT_FSIZE (what `ulimit -f` sets) in the publishing process, so a write fails with
EFBIG ("File too large") the way it fails with ENOSPC on a full disk.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import duckdb
import pytest
from conftest import Build

from userops.dbt import TELEMETRY_OFF
from userops.paths import PROJECT_DIR
from userops.serving import (
    COMPLETE_MARKER,
    CURRENT,
    LOCK_FILE,
    PAUSE_ENV,
    PAUSE_POINTS,
    SERVING_FILE,
    publish,
    served_build_id,
)

# What a kill at each point adds to the serving folder (`2*`: the new build's folder, its id
# starts with the year), and whether readers already see the new build.
ADDED = {
    "swept": ([], False),
    "exporting": (["parquet/.partial-2*"], False),
    "exported": (["parquet/.partial-2*"], False),
    "completed": (["parquet/2*"], False),
    "entry": (["parquet/2*", ".userops.duckdb.2*.tmp", ".userops.duckdb.2*.tmp.wal"], False),
    "entry_written": (["parquet/2*", ".userops.duckdb.2*.tmp"], False),
    "switched": (["parquet/2*", ".userops.duckdb.2*.tmp"], True),
    "replaced": (["parquet/2*"], True),
}
KILL_AFTER_SECONDS = [0.01, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8]
TIMED_PUBLISH = """
import os, signal, sys, threading
from pathlib import Path
from userops.serving import publish
warehouse, serving, build_id, seconds = sys.argv[1:5]
timer = threading.Timer(float(seconds), os.kill, (os.getpid(), signal.SIGKILL))
timer.daemon = True
timer.start()
publish(Path(warehouse), Path(serving), build_id=build_id)
"""


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, **TELEMETRY_OFF, **extra}
    env.pop("USEROPS_SERVING_DIR", None)
    return env


def publish_command(warehouse: Path, serving: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "userops.cli",
        "publish",
        "--warehouse",
        str(warehouse),
        "--serving-dir",
        str(serving),
    ]


def kill_at(point: str, warehouse: Path, serving: Path) -> None:
    """Start `userops publish` with the pause at `point`, wait until it is there, SIGKILL it."""
    process = subprocess.Popen(
        publish_command(warehouse, serving),
        cwd=PROJECT_DIR,
        env=environment(**{PAUSE_ENV: point}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.strip() == f"userops publish: paused at {point}", line
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def leftovers(serving: Path) -> list[str]:
    """Hidden temporary files and folders, and build folders without their marker."""
    found = [p.name for p in serving.glob(".*") if p.name != LOCK_FILE]
    parquet = serving / "parquet"
    if parquet.is_dir():
        for path in parquet.iterdir():
            if path.name.startswith("."):
                found.append(f"parquet/{path.name}")
            elif path.name != CURRENT and not (path / COMPLETE_MARKER).is_file():
                found.append(f"parquet/{path.name} (no {COMPLETE_MARKER})")
    return sorted(found)


def entries(serving: Path) -> set[str]:
    """The serving folder's and parquet folder's entries, by name."""
    names = {p.name for p in serving.iterdir()}
    return names | {f"parquet/{p.name}" for p in (serving / "parquet").iterdir()}


def builds(serving: Path) -> list[str]:
    return sorted(p.name for p in (serving / "parquet").iterdir() if p.name != CURRENT)


def assert_readers_see(serving: Path, build_id: str, expected: dict[str, int]) -> None:
    """A new reader process (as BI opens it) sees `build_id` whole: every served table there
    with the row count of the warehouse."""
    script = (
        "import duckdb, json, sys\n"
        "c = duckdb.connect(sys.argv[1], read_only=True)\n"
        "tables = [f'{s}.{t}' for s, t in c.execute(\"select schema_name, view_name from "
        "duckdb_views() where not internal and schema_name = 'marts'\").fetchall()]\n"
        "print(json.dumps({'build_id': c.execute('select build_id from meta.publication')"
        ".fetchall()[0][0], 'rows': {t: c.execute(f'select count(*) from {t}').fetchall()[0][0]"
        " for t in tables}}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(serving / SERVING_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {"build_id": build_id, "rows": expected}


def state(serving: Path) -> dict[str, str]:
    """What a reader can see: the entry file's bytes and where `current` points."""
    return {
        SERVING_FILE: hashlib.sha256((serving / SERVING_FILE).read_bytes()).hexdigest(),
        CURRENT: os.readlink(serving / "parquet" / CURRENT),
    }


@pytest.fixture(scope="module")
def expected_rows(sample_build: Build) -> dict[str, int]:
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        return {
            f"marts.{table}": connection.execute(f"select count(*) from marts.{table}").fetchone()[
                0
            ]
            for (table,) in connection.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }


@pytest.fixture
def serving(sample_build: Build, tmp_path: Path) -> Path:
    """A serving folder with two good builds, `a` (previous) and `b` (current)."""
    folder = tmp_path / "serving"
    publish(sample_build.warehouse_path, folder, build_id="20260101T000000-a")
    publish(sample_build.warehouse_path, folder, build_id="20260101T000001-b")
    return folder


def next_publish_cleans_up(
    sample_build: Build, serving: Path, readers_saw: str, expected: dict[str, int]
) -> None:
    """The next `userops publish` succeeds, sweeps every leftover, keeps the new build and the
    one readers saw until then (a killed build never takes its place)."""
    result = subprocess.run(
        publish_command(sample_build.warehouse_path, serving),
        cwd=PROJECT_DIR,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    new = served_build_id(serving)
    assert new not in (None, readers_saw)
    assert leftovers(serving) == []
    assert builds(serving) == sorted([readers_saw, new])
    assert_readers_see(serving, new, expected)


@pytest.mark.parametrize("point", PAUSE_POINTS)
def test_sigkill_at_each_step_keeps_the_last_good_build(
    point: str, sample_build: Build, serving: Path, expected_rows: dict[str, int]
) -> None:
    before = entries(serving)
    kill_at(point, sample_build.warehouse_path, serving)
    patterns, switched = ADDED[point]
    # The kill landed where it was meant to: exactly these entries appeared, none went.
    added = sorted(entries(serving) - before)
    unexpected = [name for name in added if not any(fnmatch(name, p) for p in patterns)]
    missing = [pattern for pattern in patterns if not any(fnmatch(n, pattern) for n in added)]
    assert (unexpected, missing, before <= entries(serving)) == ([], [], True), added
    killed = [b for b in builds(serving) if b not in ("20260101T000000-a", "20260101T000001-b")]
    if switched:
        # The new build was complete and current before the kill: readers have it, whole.
        assert len(killed) == 1
        assert_readers_see(serving, killed[0], expected_rows)
        next_publish_cleans_up(sample_build, serving, killed[0], expected_rows)
    else:
        assert served_build_id(serving) == "20260101T000001-b"
        assert_readers_see(serving, "20260101T000001-b", expected_rows)
        next_publish_cleans_up(sample_build, serving, "20260101T000001-b", expected_rows)


@pytest.mark.parametrize("seconds", KILL_AFTER_SECONDS)
def test_sigkill_at_any_moment_keeps_a_complete_build(
    seconds: float, sample_build: Build, serving: Path, expected_rows: dict[str, int]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", TIMED_PUBLISH]
        + [str(sample_build.warehouse_path), str(serving), "20260101T000002-c", str(seconds)],
        cwd=PROJECT_DIR,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, -signal.SIGKILL), result.stderr
    seen = served_build_id(serving)
    assert seen in ("20260101T000001-b", "20260101T000002-c")
    assert_readers_see(serving, seen, expected_rows)
    next_publish_cleans_up(sample_build, serving, seen, expected_rows)


def _largest_parquet(serving: Path) -> int:
    return max(p.stat().st_size for p in (serving / "parquet" / CURRENT).rglob("*.parquet"))


@pytest.mark.parametrize("limit", ["4096", "largest-1"])
def test_full_disk_says_so_in_one_line_and_keeps_the_last_good_build(
    limit: str, sample_build: Build, serving: Path, expected_rows: dict[str, int]
) -> None:
    """4096 bytes: the first table over 4 KB fails. One byte below the largest file: the tables
    written before it are all there, then that one fails."""
    size = 4096 if limit == "4096" else _largest_parquet(serving) - 1
    before = state(serving)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    result = subprocess.run(
        publish_command(sample_build.warehouse_path, serving),
        cwd=PROJECT_DIR,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("userops publish: could not publish build "), line
    assert re.search(r'Could not write file ".+\.parquet": File too large\. ', line), line
    assert "Nothing changed for readers: they still see build 20260101T000001-b." in line
    assert "Free disk space (or raise the file size limit) and publish again" in line
    # The failed publish cleaned up after itself; readers never noticed.
    assert leftovers(serving) == []
    assert builds(serving) == ["20260101T000000-a", "20260101T000001-b"]
    assert state(serving) == before
    assert_readers_see(serving, "20260101T000001-b", expected_rows)
    next_publish_cleans_up(sample_build, serving, "20260101T000001-b", expected_rows)


def test_a_killed_publish_never_costs_the_previous_good_build(
    sample_build: Build, serving: Path, expected_rows: dict[str, int]
) -> None:
    """The issue's sequence: a and b published, c killed half-way, then d. Before, the half
    written c counted among the two builds kept and b was deleted."""
    kill_at("exporting", sample_build.warehouse_path, serving)
    [partial] = [p for p in (serving / "parquet").iterdir() if p.name.startswith(".partial-")]
    assert (partial / "marts").is_dir() and not (partial / COMPLETE_MARKER).exists()
    next_publish_cleans_up(sample_build, serving, "20260101T000001-b", expected_rows)
    assert "20260101T000001-b" in builds(serving)


def test_a_second_publish_at_the_same_time_is_refused_clearly(
    sample_build: Build, serving: Path
) -> None:
    before = state(serving)
    with open(serving / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = subprocess.run(
            publish_command(sample_build.warehouse_path, serving),
            cwd=PROJECT_DIR,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"userops publish: another publish into {serving} is running (it holds {LOCK_FILE}); "
        "run this one again when it has finished."
    ]
    assert state(serving) == before and leftovers(serving) == []


def test_a_missing_warehouse_is_one_clear_line(tmp_path: Path, serving: Path) -> None:
    missing = tmp_path / "nowhere" / "w.duckdb"
    before = state(serving)
    result = subprocess.run(
        publish_command(missing, serving),
        cwd=PROJECT_DIR,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"userops publish: cannot open the warehouse {missing} read-only ("), (
        line
    )
    assert line.endswith(
        "Run `userops build` first, or wait until the build using it has finished."
    )
    assert state(serving) == before and leftovers(serving) == []
