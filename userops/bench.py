"""Benchmark: full build, one-day incremental run and the DuckDB floor at several data scales.

`python -m userops.bench` (or `make bench`) generates sample data at each scale, then measures,
each in its own process so peak memory is that step's alone:

- floor: one DuckDB pass that reads every raw column of every landing file once;
- full: `dbt build --full-refresh` on all days but the last (models and data tests; unit tests
  test SQL logic on fixed inputs and run in CI, not in production runs);
- incremental: the last day's files appended, then the daily partitioned run as plain dbt
  (`dbt build` with that one day's window in USEROPS_WINDOW_START / USEROPS_WINDOW_END, as
  Dagster passes it);
- dagster_day: the same day run through Dagster, on a copy of the warehouse as the full build
  left it: the dbt assets of the `userops_daily` job (every dbt model, seed and snapshot with
  its dbt tests as asset checks: five steps, two shared in-process dbt builds, as the daily job
  runs them) for that day's partition, in a fresh
  process that loads the code location, as a run launched by the daemon does. The Python assets
  (quality suites, churn scores, report, delivery) are left out: plain dbt does not run them.
  The code location's `dbt parse` (dagster_parse) is measured apart: it happens once when the
  code location is deployed (`make dagster-manifest`), not per run;
- race (on unless --no-race; userops/bench_race.py): daily active users, the monthly retention
  matrix and RFM segments computed four ways (pandas, polars, one DuckDB SQL script, dbt
  building only those marts' lineage), each under the same memory ceiling and time limit and
  checked against the marts the build made.

Each step runs `--repeats` times (the full build and the day run as pairs: the day run needs
the state the full build left); the table gives the median of the repeats and ratios of medians.
Figures go to `<out>/results.json` (one record per scale, step and repeat, appended as they
finish) and the Markdown table to `<out>/benchmark.md`; docs/benchmark.md quotes one such run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from userops.bench_race import RaceOptions, race_cell, race_scale, summarise_race
from userops.dbt import dbt_env, dbt_executable, window_env
from userops.paths import PROJECT_DIR
from userops.sql import sql_string_literal

# Generated data averages 1.414 events per user and calendar day over 120 days (58,000 users
# gave 9.84 M events), so users = events / (days * 1.414).
EVENTS_PER_USER_DAY = 1.414
DAYS = 120
END_DATE = date(2026, 6, 30)
SCALES = {"1m": 1_000_000, "10m": 10_000_000, "100m": 100_000_000}
# dbt threads per scale unless --dbt-threads says otherwise: at 100M events two heavy models at
# once ran out of DuckDB's shared memory limit, where either alone spilled and passed.
DEFAULT_DBT_THREADS = {"1m": 2, "10m": 2, "100m": 1}
LANDING_TABLES = ("users", "events", "orders", "order_items", "marketing_spend")


@dataclass
class Measurement:
    scale: str
    step: str
    seconds: float
    peak_rss_mb: float
    returncode: int
    detail: dict


def users_for(events: int, days: int = DAYS) -> int:
    """Users to generate for about `events` events over `days` days."""
    return max(100, round(events / (days * EVENTS_PER_USER_DAY)))


def run_measured(command: list[str], *, env: dict[str, str], log: Path, interval: float = 0.1):
    """Run a command; return (seconds, peak RSS of it and its children in MB, returncode).

    RSS is sampled every `interval` seconds over the whole process tree, so DuckDB running
    inside dbt and any helper process count.
    """
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            total = 0
            with contextlib.suppress(psutil.NoSuchProcess):
                for member in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += member.memory_info().rss
            peak = max(peak, total)
            time.sleep(interval)
    return time.perf_counter() - started, peak / 2**20, process.returncode


def floor_pass(landing_dir: Path, memory_limit: str, temp_dir: Path) -> dict[str, int]:
    """Read every column of every landing file once; return rows per table."""
    import duckdb

    connection = duckdb.connect(
        config={"memory_limit": memory_limit, "temp_directory": str(temp_dir)}
    )
    rows = {}
    for table in LANDING_TABLES:
        pattern = landing_dir / table / "*" / "*.parquet"
        if not list((landing_dir / table).glob("*/*.parquet")):
            continue
        # sum(hash(column)) for every column forces each value to be read and decoded.
        files = sql_string_literal(pattern)
        result = connection.execute(
            f"select count(*), sum(hash(columns(*))) from read_parquet({files}, "
            "hive_partitioning = true, union_by_name = true)"
        ).fetchall()
        rows[table] = int(result[0][0])
    return rows


def holdback_last_day(landing_dir: Path, holdback_dir: Path, day: date) -> list[Path]:
    """Move the `dt=<day>` folder of every table aside; return the moved folders."""
    moved = []
    for table in LANDING_TABLES:
        folder = landing_dir / table / f"dt={day.isoformat()}"
        if folder.exists():
            target = holdback_dir / table / folder.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(folder, target)
            moved.append(target)
    return moved


def restore_day(landing_dir: Path, holdback_dir: Path) -> None:
    for folder in sorted(holdback_dir.glob("*/dt=*")):
        shutil.move(folder, landing_dir / folder.parent.name / folder.name)


def node_timings(run_results: Path, top: int = 12) -> dict:
    """Where a dbt run's time went: per node type totals and the slowest nodes."""
    results = json.loads(run_results.read_text())
    by_type: dict[str, float] = {}
    nodes = []
    for result in results["results"]:
        kind = result["unique_id"].split(".")[0]
        by_type[kind] = by_type.get(kind, 0.0) + result["execution_time"]
        nodes.append((result["execution_time"], result["unique_id"]))
    nodes.sort(reverse=True)
    return {
        "dbt_elapsed_s": round(results["elapsed_time"], 1),
        "nodes": len(nodes),
        "node_seconds_by_type": {key: round(value, 1) for key, value in sorted(by_type.items())},
        "slowest": [[round(seconds, 1), unique_id] for seconds, unique_id in nodes[:top]],
        "status": {
            status: sum(1 for r in results["results"] if r["status"] == status)
            for status in sorted({r["status"] for r in results["results"]})
        },
    }


def bench_scale(
    scale: str,
    events: int,
    work: Path,
    out: Path,
    memory_limit: str,
    dbt_threads: int = 2,
    keep_data: bool = False,
    repeats: int = 1,
    race: RaceOptions | None = None,
) -> list:
    from userops.generate import generate

    root = work / scale
    if root.exists():
        shutil.rmtree(root)
    landing = root / "landing"
    warehouse = root / "warehouse.duckdb"
    temp_dir = root / "tmp"
    temp_dir.mkdir(parents=True)
    measurements: list[Measurement] = []

    def record(step: str, seconds: float, peak: float, code: int, **detail) -> None:
        detail["load_average_after"] = round(os.getloadavg()[0], 2)
        detail["dbt_threads"] = dbt_threads
        detail.setdefault("repeat", 1)
        measurement = Measurement(scale, step, round(seconds, 2), round(peak, 1), code, detail)
        measurements.append(measurement)
        with (out / "results.json").open("a") as handle:
            handle.write(json.dumps(asdict(measurement)) + "\n")
        print(f"[{scale}] {step}: {seconds:.1f} s, peak {peak:.0f} MB, rc={code}", flush=True)

    users = users_for(events)
    started = time.perf_counter()
    counts = generate(
        landing, users=users, days=DAYS, end_date=END_DATE, seed=1, bad_row_share=0.001
    )
    record("generate", time.perf_counter() - started, 0.0, 0, users=users, rows=counts)

    env = dbt_env(landing, warehouse)
    env["USEROPS_DUCKDB_TEMP_DIR"] = str(temp_dir)
    env["USEROPS_DUCKDB_MEMORY_LIMIT"] = memory_limit
    env["USEROPS_DUCKDB_THREADS"] = str(dbt_threads)
    python = sys.executable

    for repeat in range(1, repeats + 1):
        seconds, peak, code = run_measured(
            [
                python,
                "-m",
                "userops.bench",
                "floor",
                "--landing-dir",
                str(landing),
                "--memory-limit",
                memory_limit,
                "--temp-dir",
                str(temp_dir),
            ],
            env=env,
            log=root / "floor.log",
        )
        record("floor", seconds, peak, code, repeat=repeat)

    last_day = END_DATE
    target = root / "target"
    dbt = dbt_executable()
    common = ["--target-path", str(target), "--log-path", str(root / "logs")]
    # Production runs (Dagster, `userops build`) skip dbt unit tests: they test the SQL logic on
    # fixed inputs, not the data, and run in CI (make test). Data tests all run.
    production = [*common, "--exclude-resource-type", "unit_test"]
    # The window as Dagster passes it (not --vars, which would make dbt re-parse the project).
    day_env = {**env, **window_env(last_day, last_day + timedelta(days=1))}
    dagster_warehouse = root / "dagster_warehouse.duckdb"
    dagster_env = {
        **dbt_env(landing, dagster_warehouse, base=env),
        "USEROPS_DBT_TARGET_PATH": str(root / "dagster_target"),
        # An on-disk instance as `make dagster-home` writes it: a run's bookkeeping is measured.
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    from orchestration.instance import write_dagster_yaml

    write_dagster_yaml(root / "dagster_home")
    for repeat in range(1, repeats + 1):
        holdback_last_day(landing, root / "holdback", last_day)
        seconds, peak, code = run_measured(
            [dbt, "build", "--full-refresh", *production], env=env, log=root / "full.log"
        )
        record(
            "full", seconds, peak, code, repeat=repeat, **node_timings(target / "run_results.json")
        )
        restore_day(landing, root / "holdback")
        # The Dagster run starts from the same state as the plain day run.
        shutil.copyfile(warehouse, dagster_warehouse)
        seconds, peak, code = run_measured(
            [dbt, "build", *production],
            env=day_env,
            log=root / "incremental.log",
        )
        record(
            "incremental",
            seconds,
            peak,
            code,
            repeat=repeat,
            **node_timings(target / "run_results.json"),
        )
        if repeat == 1:
            seconds, peak, code = run_measured(
                [python, "-m", "userops.manifest"], env=dagster_env, log=root / "dagster_parse.log"
            )
            record("dagster_parse", seconds, peak, code)
        seconds, peak, code = run_measured(
            [python, "-m", "userops.bench", "dagster-day", "--partition", last_day.isoformat()],
            env=dagster_env,
            log=root / "dagster_day.log",
        )
        record("dagster_day", seconds, peak, code, repeat=repeat, **dagster_detail(root))
        dagster_warehouse.unlink(missing_ok=True)

    # dbt's fixed cost: parse and start up with nothing to run.
    for repeat in range(1, repeats + 1):
        seconds, peak, code = run_measured(
            [dbt, "ls", "--resource-type", "model", *common], env=env, log=root / "ls.log"
        )
        record("dbt_startup", seconds, peak, code, repeat=repeat)

    if race is not None:
        run_race(root, landing, warehouse, race, dbt_threads, repeats, record)

    # Keep the disk free for the next scale; the figures are in results.json.
    if not keep_data:
        shutil.rmtree(landing, ignore_errors=True)
    return measurements


def dagster_detail(root: Path) -> dict:
    """The Dagster day run's own figures (its last line) and its steps' dbt elapsed times."""
    detail: dict = {}
    log = root / "dagster_day.log"
    lines = log.read_text().splitlines() if log.exists() else []
    outcome = next((line for line in reversed(lines) if line.startswith('{"load_s"')), None)
    if outcome:
        detail.update(json.loads(outcome))
    steps = {}
    for results in sorted((root / "dagster_target" / "runs").glob("*/run_results.json")):
        steps[results.parent.name] = round(json.loads(results.read_text())["elapsed_time"], 1)
    detail["dbt_elapsed_s_by_step"] = steps
    return detail


def dagster_day_run(partition: str) -> dict:
    """Run the dbt assets of the daily job for one partition, in process, as Dagster runs them;
    return seconds to load the code location and to run, and whether the run succeeded."""
    started = time.perf_counter()
    from dagster import (
        AssetSelection,
        DagsterInstance,
        Definitions,
        define_asset_job,
        in_process_executor,
    )

    from orchestration.dbt_assets import build_dbt_assets
    from orchestration.resources import default_resources
    from orchestration.run_config import RUN_LOGGING

    assets = build_dbt_assets()
    checks = [key for definition in assets for key in definition.check_keys]
    job = define_asset_job(
        "dbt_day",
        selection=AssetSelection.assets(*assets) | AssetSelection.checks(*checks),
        # As the project's jobs log (orchestration/automation.py).
        config=RUN_LOGGING,
    )
    defs = Definitions(
        assets=assets, jobs=[job], resources=default_resources(), executor=in_process_executor
    )
    resolved = defs.resolve_job_def("dbt_day")
    loaded = time.perf_counter()
    result = resolved.execute_in_process(
        partition_key=partition, instance=DagsterInstance.get(), raise_on_error=False
    )
    return {
        "load_s": round(loaded - started, 1),
        "run_s": round(time.perf_counter() - loaded, 1),
        "success": result.success,
        "run_id": result.run_id,
        "materializations": len(result.get_asset_materialization_events()),
        "checks": len(result.get_asset_check_evaluations()),
    }


def run_race(
    root: Path,
    landing: Path,
    warehouse: Path,
    race: RaceOptions,
    dbt_threads: int,
    repeats: int,
    record,
) -> None:
    """The race against the marts of the full build plus the day run (all landing files)."""
    from dataclasses import replace

    options = replace(race, dbt_threads=dbt_threads, repeats=repeats)
    race_scale(landing, warehouse, root / "race", options, record)


def median_step(records: list[dict]) -> dict | None:
    """One step's repeats as one record: median seconds and median peak memory, failed if any
    repeat failed."""
    if not records:
        return None
    return {
        "seconds": statistics.median(r["seconds"] for r in records),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in records),
        "returncode": max(abs(r["returncode"]) for r in records),
        "repeats": len(records),
    }


def summarise(records: list[dict]) -> str:
    """Markdown table of the bench records: one row per scale, medians of the repeats and ratios
    of those medians, all from the same run."""
    by_scale: dict[str, dict[str, list[dict]]] = {}
    for record in records:
        by_scale.setdefault(record["scale"], {}).setdefault(record["step"], []).append(record)
    lines = [
        "| scale | events | raw rows | repeats | dbt threads | floor s (peak MB)"
        " | full build s (peak MB) | build/floor | one-day run s (peak MB) | one-day/full"
        " | Dagster one-day run s (peak MB) | Dagster/dbt one-day"
        " | dbt startup s | pandas s (peak MB) | build/pandas |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [scale for scale in SCALES if scale in by_scale]
    for scale in order:
        steps = by_scale[scale]
        generated = steps.get("generate", [{}])[0]
        rows = generated.get("detail", {}).get("rows", {})
        floor, full = median_step(steps.get("floor", [])), median_step(steps.get("full", []))
        incremental = median_step(steps.get("incremental", []))
        dagster_day = median_step(steps.get("dagster_day", []))
        # Older results have a "pandas" step; the race records pandas as "race_pandas".
        pandas_records = steps.get("pandas", []) or steps.get("race_pandas", [])
        pandas = median_step(pandas_records)
        # A pandas run stopped at the race's memory ceiling or time limit has no ratio.
        pandas_stopped = any(r["detail"].get("outcome", "ok") != "ok" for r in pandas_records)
        startup = median_step(steps.get("dbt_startup", []))
        threads = steps.get("full", [{}])[0].get("detail", {}).get("dbt_threads", "–")

        def cell(step: dict | None) -> str:
            if step is None:
                return "–"
            failed = "" if step["returncode"] == 0 else " FAILED"
            return f"{step['seconds']:.1f} ({step['peak_rss_mb']:,.0f}){failed}"

        def ratio(numerator: dict | None, denominator: dict | None, digits: int = 1) -> str:
            if not numerator or not denominator or not denominator["seconds"]:
                return "–"
            return f"{numerator['seconds'] / denominator['seconds']:.{digits}f}"

        incremental_share = (
            f"{100 * incremental['seconds'] / full['seconds']:.1f} %"
            if incremental and full
            else "–"
        )
        repeats = full["repeats"] if full else 0
        startup_cell = f"{startup['seconds']:.1f}" if startup else "–"
        lines.append(
            f"| {scale} | {rows.get('events', 0):,} | {sum(rows.values()):,} | {repeats} |"
            f" {threads} | {cell(floor)} | {cell(full)} | {ratio(full, floor)} |"
            f" {cell(incremental)} | {incremental_share} |"
            f" {cell(dagster_day)} | {ratio(dagster_day, incremental, 2)} |"
            f" {startup_cell} | {pandas_cell(pandas_records, cell(pandas))} |"
            f" {ratio(full, None if pandas_stopped else pandas, 2)} |"
        )
    return "\n".join(lines) + "\n"


def is_failure(record: dict) -> bool:
    """A step that failed; a race tool stopped at the memory ceiling or the time limit is a
    result (its cell says so), not a failure of the benchmark."""
    if record["step"].startswith("race_"):
        return record["detail"].get("outcome") == "failed"
    return record["returncode"] != 0


def pandas_cell(records: list[dict], measured: str) -> str:
    """The pandas column: the figures, or what stopped the race's pandas run."""
    if any(r["detail"].get("outcome", "ok") != "ok" for r in records):
        return race_cell(records)
    return measured


def race_table(records: list[dict]) -> str:
    """The race's table (tool x scale), after a blank line; empty without race records."""
    table = summarise_race(records, list(SCALES))
    return "\n" + table if table else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m userops.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="benchmark the given scales (default)")
    run.add_argument("--scales", default=",".join(SCALES), help="comma-separated: 1m,10m,100m")
    run.add_argument("--work-dir", type=Path, default=PROJECT_DIR / "data" / "bench")
    run.add_argument("--out", type=Path, default=PROJECT_DIR / "bench_results")
    run.add_argument(
        "--memory-limit",
        default="6GB",
        help="DuckDB memory_limit for every step (peak RSS target is under 8 GB)",
    )
    run.add_argument(
        "--dbt-threads",
        type=int,
        default=None,
        help="dbt threads (USEROPS_DUCKDB_THREADS); default 2 at 1M and 10M events, 1 at 100M "
        "(two heavy models at once share the memory limit)",
    )
    run.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every step this many times; the table gives medians (the machine's speed "
        "drifts by 20-30 %% between runs minutes apart)",
    )
    run.add_argument(
        "--no-race",
        action="store_true",
        help="skip the race (pandas, polars, a DuckDB script and dbt on the three headline marts)",
    )
    run.add_argument(
        "--race-tools",
        default="pandas,polars,duckdb,dbt",
        help="the race's tools, comma-separated",
    )
    run.add_argument(
        "--race-memory-ceiling-mb",
        type=float,
        default=8 * 1024,
        help="a race tool whose process tree passes this resident memory is stopped",
    )
    run.add_argument(
        "--race-timeout-min",
        type=float,
        default=30,
        help="a race tool running longer is stopped",
    )
    run.add_argument(
        "--keep-data",
        action="store_true",
        help="keep each scale's landing files and warehouse under --work-dir (to rerun models)",
    )
    floor = commands.add_parser("floor", help="(internal) one read of every raw column")
    floor.add_argument("--landing-dir", type=Path, required=True)
    floor.add_argument("--memory-limit", default="6GB")
    floor.add_argument("--temp-dir", type=Path, required=True)
    dagster_day = commands.add_parser(
        "dagster-day", help="(internal) the dbt assets of the daily job for one partition"
    )
    dagster_day.add_argument("--partition", required=True)
    table = commands.add_parser("table", help="print the Markdown table of a results file")
    table.add_argument("results", type=Path)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {"run", "floor", "dagster-day", "table", "-h", "--help"}:
        argv.insert(0, "run")
    args = parser.parse_args(argv)

    if args.command == "floor":
        print(json.dumps(floor_pass(args.landing_dir, args.memory_limit, args.temp_dir)))
        return 0
    if args.command == "dagster-day":
        outcome = dagster_day_run(args.partition)
        print(json.dumps(outcome))
        return 0 if outcome["success"] else 1
    if args.command == "table":
        records = [json.loads(line) for line in args.results.read_text().splitlines() if line]
        # A results file of the race alone (python -m userops.bench_race --out) has no main table.
        if any(not r["step"].startswith("race_") for r in records):
            print(summarise(records), end="")
        print(race_table(records), end="")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").unlink(missing_ok=True)
    with (args.out / "machine.json").open("w") as handle:
        json.dump(
            {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "started": time.ctime(),
                # Other work on the machine skews every figure: say how busy it was.
                "load_average_at_start": os.getloadavg(),
            },
            handle,
        )
    race = None
    if not args.no_race:
        race = RaceOptions(
            tools=tuple(args.race_tools.split(",")),
            memory_limit=args.memory_limit,
            memory_ceiling_mb=args.race_memory_ceiling_mb,
            timeout_s=args.race_timeout_min * 60,
        )
    records = []
    for scale in args.scales.split(","):
        for measurement in bench_scale(
            scale,
            SCALES[scale],
            args.work_dir,
            args.out,
            args.memory_limit,
            args.dbt_threads or DEFAULT_DBT_THREADS[scale],
            args.keep_data,
            args.repeats,
            race,
        ):
            records.append(asdict(measurement))
        (args.out / "benchmark.md").write_text(summarise(records) + race_table(records))
    print(summarise(records) + race_table(records), end="")
    return 1 if any(map(is_failure, records)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
