"""The benchmark's race: the three headline marts computed four ways, like for like.

Daily active users per business day (`marts.daily_metrics.dau`), the monthly retention matrix
(`marts.retention_cohorts`: month cohorts of the first active day, activity retention, classic
mode, overall) and RFM segments on the latest data day (`marts.user_layers.rfm_segment`), from
the same landing files, by:

- `pandas`: userops/bench_pandas.py, in memory;
- `polars`: userops/bench_polars.py, lazy scans collected by the streaming engine;
- `duckdb`: userops/bench_duckdb.py, one hand-written SQL script (userops/bench_duckdb.sql);
- `dbt`: `dbt build` of only those marts' lineage (their tests included, unit tests excluded)
  into a fresh warehouse.

The three scripts apply the same definitions as the marts, read from the one place they live
(`definitions()`: dbt_project.yml vars and seeds/event_mapping.csv) and the quarantine rules of
docs/landing_contract.md (a row with a missing key or value, an unparseable value, an unknown
status, a timestamp out of range or a negative amount does not count; of a repeated id the first
valid row by file name without extension wins). Each tool writes the same three Parquet files
(`OUTPUTS`); `compare()` checks them against the marts of the benchmark's own build of the same
files, outside the timed process.

Each tool runs in its own process under the same limits: `run_limited` samples the resident
memory of the process and its children every 0.1 s and ends the tree when it passes the memory
ceiling (default 8 GB, the issue's target) or the time limit (30 minutes). DuckDB (the script and
dbt) also gets its own `memory_limit` and a temp directory to spill to; polars gets its
out-of-core budget and spill directory; pandas has no such setting. A tool stopped that way gets
"out of memory at X GB" or "> 30 min" in its cell.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from userops.paths import PROJECT_DIR
from userops.sql import sql_string_literal

TOOLS = ("pandas", "polars", "duckdb", "dbt")
OUTPUTS = {
    "dau": "dau.parquet",
    "retention": "monthly_retention.parquet",
    "rfm": "rfm_segments.parquet",
}
# The marts that hold the three figures; `dbt build --select` takes their lineage (`+mart`).
MARTS = ("daily_metrics", "retention_cohorts", "user_layers")
# The retention_cohorts rows that make the monthly matrix.
MONTHLY_RETENTION_FILTER = (
    "cohort_grain = 'month' and retention_type = 'activity' and cohort_basis = 'first_time'"
    " and retention_mode = 'classic' and segment_dimension = 'overall'"
)
SEGMENTS = {  # (recency high, frequency high, monetary high) -> rfm_segment
    (True, True, True): "重要价值",
    (True, False, True): "重要发展",
    (False, True, True): "重要保持",
    (False, False, True): "重要挽留",
    (True, True, False): "一般价值",
    (True, False, False): "一般发展",
    (False, True, False): "一般保持",
    (False, False, False): "一般挽留",
}
NO_PURCHASE = "未购买"
DEFAULT_CEILING_MB = 8 * 1024
DEFAULT_TIMEOUT_S = 30 * 60


@dataclass(frozen=True)
class Definitions:
    """What the marts count, from dbt_project.yml vars and the event mapping seed."""

    business_timezone: str
    min_valid_timestamp: str
    max_future_days: int
    rfm_window_days: int
    max_periods_month: int
    active_event_names: frozenset[str]
    event_mapping_csv: Path


def definitions(project_dir: Path = PROJECT_DIR) -> Definitions:
    import yaml

    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text())["vars"]
    if config["rfm_split_method"] != "median":
        # The scripts split at the buyers' median, as the project does by default.
        raise ValueError(f"race scripts implement rfm_split_method median, not {config}")
    mapping = project_dir / "seeds" / "event_mapping.csv"
    with mapping.open(newline="") as handle:
        active = frozenset(
            row["raw_event_name"]
            for row in csv.DictReader(handle)
            if row["counts_as_active"].strip().lower() == "true"
        )
    return Definitions(
        business_timezone=config["business_timezone"],
        min_valid_timestamp=str(config["min_valid_timestamp"]),
        max_future_days=int(config["max_future_days"]),
        rfm_window_days=int(config["rfm_window_days"]),
        max_periods_month=int(config["retention_max_periods_month"]),
        active_event_names=active,
        event_mapping_csv=mapping,
    )


def landing_glob(landing_dir: Path, table: str) -> str:
    return str(Path(landing_dir).resolve() / table / "*" / "*.parquet")


# --- the marts, as the tools' outputs -------------------------------------------------------

MARTS_SQL = {
    "dau": "select metric_date, cast(dau as bigint) as dau from {db}.marts.daily_metrics",
    "retention": (
        "select cohort_start_date as cohort_month, cast(period_number as bigint) as period_number,"
        " cast(cohort_size as bigint) as cohort_size,"
        " cast(retained_users as bigint) as retained_users"
        " from {db}.marts.retention_cohorts where " + MONTHLY_RETENTION_FILTER
    ),
    "rfm": (
        "select user_id, as_of_date, rfm_segment from {db}.marts.user_layers"
        " where as_of_date = (select max(as_of_date) from {db}.marts.user_layers)"
    ),
}


def export_marts(warehouse: Path, out: Path) -> None:
    """Write a warehouse's three marts as the files every tool writes (the dbt tool's output)."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    connection.execute(f"attach {sql_string_literal(warehouse)} as built (read_only)")
    for key, sql in MARTS_SQL.items():
        connection.execute(
            f"copy ({sql.format(db='built')}) to {sql_string_literal(out / OUTPUTS[key])} "
            "(format parquet)"
        )
    connection.close()


def compare(out: Path, warehouse: Path) -> dict:
    """How a tool's three files agree with the marts of `warehouse`: rows equal, rows on one
    side only, and `agrees` when every row matches and none is missing on either side."""
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"attach {sql_string_literal(warehouse)} as built (read_only)")
    for key, sql in MARTS_SQL.items():
        connection.execute(f"create temp view marts_{key} as {sql.format(db='built')}")
        connection.execute(
            f"create temp view tool_{key} as select * from read_parquet("
            f"{sql_string_literal(out / OUTPUTS[key])})"
        )

    def one(sql: str) -> tuple:
        return connection.execute(sql).fetchone()

    dau = one(
        "select count(*), count(*) filter (where t.dau = m.dau),"
        " count(*) filter (where m.metric_date is null),"
        " count(*) filter (where t.metric_date is null),"
        " coalesce(max(abs(coalesce(t.dau, 0) - coalesce(m.dau, 0))), 0)"
        " from tool_dau as t full outer join marts_dau as m"
        " on cast(t.metric_date as date) = m.metric_date"
    )
    retention = one(
        "select count(*),"
        " count(*) filter (where t.retained_users = m.retained_users"
        " and t.cohort_size = m.cohort_size),"
        " count(*) filter (where m.cohort_month is null),"
        " count(*) filter (where t.cohort_month is null),"
        " coalesce(max(abs(coalesce(t.retained_users, 0) - coalesce(m.retained_users, 0))), 0)"
        " from tool_retention as t full outer join marts_retention as m"
        " on cast(t.cohort_month as date) = m.cohort_month and t.period_number = m.period_number"
    )
    rfm = one(
        "select count(*), count(*) filter (where t.rfm_segment = m.rfm_segment"
        " and cast(t.as_of_date as date) = m.as_of_date),"
        " count(*) filter (where m.user_id is null), count(*) filter (where t.user_id is null)"
        " from tool_rfm as t full outer join marts_rfm as m on t.user_id = m.user_id"
    )
    connection.close()
    result = {
        "dau_days": dau[0],
        "dau_days_equal": dau[1],
        "dau_days_only_tool": dau[2],
        "dau_days_only_marts": dau[3],
        "dau_max_abs_diff": int(dau[4]),
        "retention_cells": retention[0],
        "retention_cells_equal": retention[1],
        "retention_cells_only_tool": retention[2],
        "retention_cells_only_marts": retention[3],
        "retention_max_abs_diff": int(retention[4]),
        "rfm_users": rfm[0],
        "rfm_users_equal": rfm[1],
        "rfm_users_only_tool": rfm[2],
        "rfm_users_only_marts": rfm[3],
    }
    result["agrees"] = bool(
        dau[0]
        and dau[0] == dau[1]
        and retention[0]
        and retention[0] == retention[1]
        and rfm[0]
        and rfm[0] == rfm[1]
    )
    return result


def agreement_text(agreement: dict | None) -> str:
    if not agreement:
        return "not compared"
    if agreement.get("agrees"):
        return (
            f"equal: {agreement['dau_days']} days, {agreement['retention_cells']} cells,"
            f" {agreement['rfm_users']:,} users"
        )
    return (
        f"DAU {agreement['dau_days_equal']}/{agreement['dau_days']} days,"
        f" retention {agreement['retention_cells_equal']}/{agreement['retention_cells']} cells,"
        f" RFM {agreement['rfm_users_equal']:,}/{agreement['rfm_users']:,} users"
    )


# --- running a tool under limits ------------------------------------------------------------


@dataclass
class LimitedRun:
    seconds: float
    peak_rss_mb: float
    returncode: int
    # ok | failed | out_of_memory (our ceiling or the tool's own limit) | timeout
    outcome: str
    note: str = ""
    # dbt only: where its time went (userops.bench.node_timings of run_results.json)
    profile: dict = field(default_factory=dict)


def _tree_rss(root) -> int:
    import psutil

    total = 0
    with contextlib.suppress(psutil.NoSuchProcess):
        for member in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += member.memory_info().rss
    return total


def _kill_tree(root) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        members = [root, *root.children(recursive=True)]
        for member in members:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGKILL)


OOM_MARKERS = ("Out of Memory Error", "MemoryError", "memory usage exceeded", "Cannot allocate")


def run_limited(
    command: list[str],
    *,
    env: dict[str, str],
    log: Path,
    memory_ceiling_mb: float = DEFAULT_CEILING_MB,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.1,
) -> LimitedRun:
    """Run a command; sample the RSS of it and its children every `interval` seconds, end the
    whole tree when it passes `memory_ceiling_mb` or runs past `timeout_s`."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    peak = 0
    stopped = ""
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        root = psutil.Process(process.pid)
        while process.poll() is None:
            rss = _tree_rss(root)
            peak = max(peak, rss)
            if rss / 2**20 > memory_ceiling_mb:
                stopped = "out_of_memory"
                _kill_tree(root)
            elif time.perf_counter() - started > timeout_s:
                stopped = "timeout"
                _kill_tree(root)
            if stopped:
                process.wait()
                break
            time.sleep(interval)
    seconds = time.perf_counter() - started
    peak_mb = peak / 2**20
    if stopped == "out_of_memory":
        return LimitedRun(
            seconds,
            peak_mb,
            process.returncode,
            stopped,
            f"out of memory at {memory_ceiling_mb / 1024:.1f} GB (the ceiling)",
        )
    if stopped == "timeout":
        return LimitedRun(
            seconds, peak_mb, process.returncode, stopped, f"> {timeout_s / 60:.0f} min"
        )
    if process.returncode == 0:
        return LimitedRun(seconds, peak_mb, 0, "ok")
    tail = log.read_text(errors="replace")[-4000:]
    if any(marker in tail for marker in OOM_MARKERS):
        return LimitedRun(
            seconds,
            peak_mb,
            process.returncode,
            "out_of_memory",
            f"out of memory at {peak_mb / 1024:.1f} GB (its own limit)",
        )
    return LimitedRun(
        seconds, peak_mb, process.returncode, "failed", f"failed (exit {process.returncode})"
    )


# --- the four tools -------------------------------------------------------------------------


@dataclass(frozen=True)
class RaceOptions:
    tools: tuple[str, ...] = TOOLS
    memory_limit: str = "6GB"  # DuckDB's memory_limit (script and dbt); polars' spill budget
    memory_ceiling_mb: float = DEFAULT_CEILING_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    dbt_threads: int = 2
    repeats: int = 1
    keep_outputs: bool = False


def memory_limit_mb(memory_limit: str) -> int:
    text = memory_limit.strip().upper().removesuffix("B")
    factor = {"G": 1024, "M": 1, "T": 1024 * 1024}[text[-1]]
    return int(float(text[:-1]) * factor)


def dbt_select() -> list[str]:
    return ["--select", " ".join(f"+{mart}" for mart in MARTS)]


def tool_command(
    tool: str, landing: Path, out: Path, temp_dir: Path, options: RaceOptions
) -> list[str]:
    python = sys.executable
    if tool == "pandas":
        return [
            python,
            "-m",
            "userops.bench_pandas",
            "--landing-dir",
            str(landing),
            "--out",
            str(out),
        ]
    if tool == "polars":
        return [
            python,
            "-m",
            "userops.bench_polars",
            "--landing-dir",
            str(landing),
            "--out",
            str(out),
        ]
    if tool == "duckdb":
        return [
            python,
            "-m",
            "userops.bench_duckdb",
            "--landing-dir",
            str(landing),
            "--out",
            str(out),
            "--memory-limit",
            options.memory_limit,
            "--temp-dir",
            str(temp_dir),
        ]
    if tool == "dbt":
        from userops.dbt import dbt_executable

        # Tests of the selected models only: a test that also reads a model outside the
        # lineage (cautious selection leaves it out) would fail on the fresh warehouse.
        return [
            dbt_executable(),
            "build",
            *dbt_select(),
            "--indirect-selection",
            "cautious",
            "--exclude-resource-type",
            "unit_test",
            "--target-path",
            str(out / "target"),
            "--log-path",
            str(out / "logs"),
        ]
    raise ValueError(f"unknown race tool {tool!r}; choose from {', '.join(TOOLS)}")


def tool_env(
    tool: str, landing: Path, out: Path, temp_dir: Path, options: RaceOptions
) -> dict[str, str]:
    from userops.dbt import dbt_env

    env = dbt_env(landing, out / "warehouse.duckdb")
    env["USEROPS_DUCKDB_TEMP_DIR"] = str(temp_dir)
    env["USEROPS_DUCKDB_MEMORY_LIMIT"] = options.memory_limit
    env["USEROPS_DUCKDB_THREADS"] = str(options.dbt_threads)
    if tool == "polars":
        # Polars' out-of-core budget and spill folder (unstable settings of its streaming
        # engine); without them it holds every group of a group-by in memory.
        env["POLARS_OOC_MEMORY_BUDGET_MB"] = str(memory_limit_mb(options.memory_limit))
        env["POLARS_OOC_SPILL_DIR"] = str(temp_dir)
        env["POLARS_TEMP_DIR"] = str(temp_dir)
    return env


def run_tool(
    tool: str,
    landing: Path,
    reference_warehouse: Path | None,
    work: Path,
    options: RaceOptions,
) -> tuple[LimitedRun, dict | None, float]:
    """Run one tool in its own process under the limits; compare its outputs with the marts of
    `reference_warehouse` (none: not compared). Returns the run, the agreement (None when it
    produced nothing or was not compared) and the load average before it started."""
    out = work / tool
    temp_dir = work / "tmp" / tool
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(temp_dir, ignore_errors=True)
    out.mkdir(parents=True)
    temp_dir.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    run = run_limited(
        tool_command(tool, landing, out, temp_dir, options),
        env=tool_env(tool, landing, out, temp_dir, options),
        log=work / f"{tool}.log",
        memory_ceiling_mb=options.memory_ceiling_mb,
        timeout_s=options.timeout_s,
    )
    run_results = out / "target" / "run_results.json"
    if tool == "dbt" and run_results.exists():
        from userops.bench import node_timings

        run.profile = node_timings(run_results)
    agreement = None
    if run.outcome == "ok":
        if tool == "dbt":
            export_marts(out / "warehouse.duckdb", out)
        if reference_warehouse is not None:
            agreement = compare(out, reference_warehouse)
    if not options.keep_outputs:
        # The fresh dbt warehouse and any spill files are large at 100M events.
        for leftover in (out / "warehouse.duckdb", out / "warehouse.duckdb.wal", temp_dir):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
    return run, agreement, load_before


def race_scale(
    landing: Path,
    reference_warehouse: Path,
    work: Path,
    options: RaceOptions,
    record: Callable[..., None],
) -> None:
    """Every tool, `options.repeats` times, each result passed to `record(step, seconds, peak,
    returncode, **detail)` (userops.bench's recorder) as step `race_<tool>`."""
    for repeat in range(1, options.repeats + 1):
        for tool in options.tools:
            run, agreement, load_before = run_tool(
                tool, landing, reference_warehouse, work, options
            )
            record(
                f"race_{tool}",
                run.seconds,
                run.peak_rss_mb,
                run.returncode,
                repeat=repeat,
                outcome=run.outcome,
                note=run.note,
                agreement=agreement,
                load_average_before=round(load_before, 2),
                memory_ceiling_mb=options.memory_ceiling_mb,
                memory_limit=options.memory_limit,
                timeout_s=options.timeout_s,
                **({"dbt_profile": run.profile} if run.profile else {}),
            )


# --- the race table -------------------------------------------------------------------------


def race_cell(records: list[dict]) -> str:
    """One tool at one scale: median seconds (median peak MB) of the repeats, or what stopped
    it (the first stopped repeat's note)."""
    if not records:
        return "–"
    stopped = [r for r in records if r["detail"].get("outcome", "ok") != "ok" or r["returncode"]]
    if stopped:
        detail = stopped[0]["detail"]
        return (
            f"{detail.get('note') or 'failed'} after {stopped[0]['seconds']:.0f} s"
            f" (peak {stopped[0]['peak_rss_mb']:,.0f} MB)"
        )
    seconds = statistics.median(r["seconds"] for r in records)
    peak = statistics.median(r["peak_rss_mb"] for r in records)
    return f"{seconds:.1f} ({peak:,.0f})"


def summarise_race(records: list[dict], scales: list[str]) -> str:
    """Markdown: tool x scale -> seconds (peak MB); the agreement with the marts and the load
    average before each run; the ratios the issue's targets are about."""
    race = [r for r in records if r["step"].startswith("race_")]
    if not race:
        return ""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for record in race:
        by_key.setdefault((record["step"].removeprefix("race_"), record["scale"]), []).append(
            record
        )
    present = [scale for scale in scales if any(key[1] == scale for key in by_key)]
    tools = [tool for tool in TOOLS if any(key[0] == tool for key in by_key)]
    lines = [
        "| tool | " + " | ".join(f"{scale} s (peak MB)" for scale in present) + " |",
        "|---|" + "---:|" * len(present),
    ]
    for tool in tools:
        cells = [race_cell(by_key.get((tool, scale), [])) for scale in present]
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")

    def median_ok(tool: str, scale: str) -> float | None:
        runs = by_key.get((tool, scale), [])
        if not runs or any(
            r["detail"].get("outcome", "ok") != "ok" or r["returncode"] for r in runs
        ):
            return None
        return statistics.median(r["seconds"] for r in runs)

    for numerator, denominator in (("dbt", "duckdb"), ("dbt", "polars")):
        if numerator in tools and denominator in tools:
            ratios = []
            for scale in present:
                top, bottom = median_ok(numerator, scale), median_ok(denominator, scale)
                ratios.append(f"{top / bottom:.2f}×" if top and bottom else "–")
            lines.append(f"| {numerator} / {denominator} | " + " | ".join(ratios) + " |")
    lines.append("")
    lines.append("| tool | scale | repeat | agreement with the marts | load average before |")
    lines.append("|---|---|---:|---|---:|")
    for scale in present:
        for tool in tools:
            for record in by_key.get((tool, scale), []):
                detail = record["detail"]
                lines.append(
                    f"| {tool} | {scale} | {detail.get('repeat', 1)} |"
                    f" {agreement_text(detail.get('agreement'))} |"
                    f" {detail.get('load_average_before', '–')} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Race the tools on existing landing files against an existing build of them (the full
    benchmark runs the race itself: python -m userops.bench)."""
    parser = argparse.ArgumentParser(prog="python -m userops.bench_race", description=main.__doc__)
    parser.add_argument("--landing-dir", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True, help="dbt build of those files")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--scale", default="custom", help="label of the records")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--memory-ceiling-mb", type=float, default=DEFAULT_CEILING_MB)
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--dbt-threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, help="append the records to <out>/results.json (the bench's format)"
    )
    args = parser.parse_args(argv)
    options = RaceOptions(
        tools=tuple(args.tools.split(",")),
        memory_limit=args.memory_limit,
        memory_ceiling_mb=args.memory_ceiling_mb,
        timeout_s=args.timeout_s,
        dbt_threads=args.dbt_threads,
        repeats=args.repeats,
    )
    args.work_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []

    def record(step: str, seconds: float, peak: float, code: int, **detail) -> None:
        detail["load_average_after"] = round(os.getloadavg()[0], 2)
        detail["dbt_threads"] = options.dbt_threads
        records.append(
            {
                "scale": args.scale,
                "step": step,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "returncode": code,
                "detail": detail,
            }
        )
        print(json.dumps(records[-1], ensure_ascii=False), flush=True)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            with (args.out / "results.json").open("a") as handle:
                handle.write(json.dumps(records[-1]) + "\n")

    race_scale(args.landing_dir, args.warehouse, args.work_dir, options, record)
    print(summarise_race(records, [args.scale]), end="")
    return 0 if all(r["detail"]["outcome"] == "ok" for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
