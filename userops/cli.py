"""`userops` command line: generate sample data, import your own, build, summarise."""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from userops.paths import PROJECT_DIR, default_landing_dir, default_warehouse_path
from userops.warehouse import WarehouseUnavailable


def _add_paths(parser: argparse.ArgumentParser, *, warehouse: bool = True) -> None:
    parser.add_argument(
        "--landing-dir",
        type=Path,
        default=None,
        help="landing folder (default: $USEROPS_LANDING_DIR or data/landing)",
    )
    if warehouse:
        parser.add_argument(
            "--warehouse",
            type=Path,
            default=None,
            help="DuckDB file (default: $USEROPS_DUCKDB_PATH or data/warehouse/userops.duckdb)",
        )


def _add_serving_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serving-dir",
        type=Path,
        default=None,
        help="folder BI reads (default: $USEROPS_SERVING_DIR, else data/serving for the default"
        " warehouse, else serving/ next to the warehouse file)",
    )


def _add_generate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument(
        "--end-date",
        type=date.fromisoformat,
        default=None,
        help="last day of data, YYYY-MM-DD (default: yesterday, UTC)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-row-share", type=float, default=0.01)
    parser.add_argument(
        "--incident",
        default=None,
        metavar="CHANNEL:DAY[:FACTOR]",
        help="inject a known incident: that channel's chance to pay times FACTOR (default 0.5) "
        "on business day DAY (YYYY-MM-DD, `last` or -N days before the end; ground truth in "
        "ground_truth/incident.json)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="userops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a deterministic sample data set")
    _add_paths(generate, warehouse=False)
    _add_generate_options(generate)

    importer = commands.add_parser("import", help="map your own log to the landing contract")
    importer.add_argument("source", type=Path, help="a CSV/Parquet file, folder or glob")
    importer.add_argument(
        "--mapping",
        required=True,
        help="mapping YAML path, or the name of a bundled mapping (e.g. online_retail)",
    )
    importer.add_argument(
        "--json",
        action="store_true",
        help="print the full report (every partition and file) as JSON instead of a summary",
    )
    _add_paths(importer, warehouse=False)

    build = commands.add_parser("build", help="dbt build against the landing folder")
    _add_paths(build)
    build.add_argument("dbt_args", nargs=argparse.REMAINDER, help="extra dbt arguments")

    build.add_argument("--no-publish", action="store_true", help="skip publishing the serving copy")
    _add_serving_dir(build)

    publish = commands.add_parser("publish", help="publish the marts to the read-only serving copy")
    _add_paths(publish)
    _add_serving_dir(publish)

    summary = commands.add_parser(
        "summary",
        help="latest day's headline numbers, rows staged and quarantined, rows per layer",
    )
    _add_paths(summary)

    report = commands.add_parser("report", help="write the HTML report of the marts")
    _add_paths(report)
    report.add_argument(
        "--output",
        type=Path,
        default=None,
        help="HTML file (default: reports/userops_report.html beside the warehouse folder)",
    )
    report.add_argument(
        "--if-missing",
        action="store_true",
        help="only print the path when the report exists (the Dagster run wrote it)",
    )

    alerts = commands.add_parser("alerts", help="print the latest metric alerts; --notify sends")
    _add_paths(alerts)
    alerts.add_argument("--days", type=int, default=7, help="alerts of the newest N data days")
    alerts.add_argument(
        "--notify",
        action="store_true",
        help="send alerts not sent yet to USEROPS_ALERT_FILE / USEROPS_ALERT_WEBHOOK_URL and "
        "record them in ops.alerts (what the Dagster sensor does)",
    )
    # --- deliver (docs/operations_loop.md) ---
    deliver = commands.add_parser(
        "deliver", help="send the day's audience members (delivery_plans) to their destinations"
    )
    _add_paths(deliver)
    deliver.add_argument(
        "--date",
        type=date.fromisoformat,
        default=None,
        help="delivery day, YYYY-MM-DD (default: the latest day of marts.delivery_plans)",
    )
    deliver.add_argument(
        "--destinations",
        type=Path,
        default=None,
        help="destinations YAML (default: $USEROPS_DESTINATIONS or destinations.yml)",
    )
    # --- end deliver ---

    demo = commands.add_parser("demo", help="generate sample data, build, summarise")
    _add_paths(demo)
    _add_serving_dir(demo)
    _add_generate_options(demo)

    mf = commands.add_parser(
        "mf",
        help="MetricFlow's mf over the warehouse (parses the dbt project first when needed)",
    )
    _add_paths(mf)
    mf.add_argument("mf_args", nargs=argparse.REMAINDER, help="mf arguments, e.g. query --help")
    return parser


def resolve_mapping(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    folder = Path(__file__).parent / "mappings"
    bundled = folder / f"{name_or_path}.yml"
    if bundled.exists():
        return bundled
    names = ", ".join(sorted(p.stem for p in folder.glob("*.yml")))
    raise FileNotFoundError(
        f"no mapping file {name_or_path!r} (nor a bundled mapping of that name: {names})"
    )


# Exit code of a failed `userops import` (bad mapping, bad source, failed write), as argparse
# uses for bad arguments: the message says what to fix.
IMPORT_FAILED = 2


def _import(args: argparse.Namespace, landing_dir: Path) -> int:
    from userops.importer import format_report, import_data

    try:
        report = import_data(args.source, resolve_mapping(args.mapping), landing_dir)
    except (ValueError, OSError) as error:
        # The importer's messages are one line naming the mapping key, source or file; a
        # traceback would only bury it.
        print(f"userops import: {error}", file=sys.stderr)
        return IMPORT_FAILED
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 0


def _generate(args: argparse.Namespace, landing_dir: Path) -> None:
    from userops.generate import Incident, generate

    end_date = args.end_date or (datetime.now(UTC).date() - timedelta(days=1))
    try:
        incident = Incident.parse(args.incident, end_date) if args.incident else None
    except ValueError as error:
        raise SystemExit(f"userops generate: {error}") from None
    started = time.perf_counter()
    counts = generate(
        landing_dir,
        users=args.users,
        days=args.days,
        end_date=end_date,
        seed=args.seed,
        bad_row_share=args.bad_row_share,
        incident=incident,
    )
    seconds = time.perf_counter() - started
    print(f"Generated {sum(counts.values()):,} rows in {seconds:.1f} s into {landing_dir}:")
    for table, rows in counts.items():
        print(f"  {table:<16} {rows:>12,}")


def _build(
    landing_dir: Path,
    warehouse: Path,
    extra: list[str],
    *,
    publish: bool = True,
    serving_dir: Path | None = None,
) -> int:
    from userops.dbt import run_dbt

    # Unit tests check the SQL on fixed inputs and run in CI (make test); a build of the data
    # runs every model and data test.
    result = run_dbt(
        ["build", "--exclude-resource-type", "unit_test", *extra],
        landing_dir=landing_dir,
        warehouse_path=warehouse,
    )
    # Only a build whose models and tests all passed replaces what BI tools read.
    if result.returncode == 0:
        if publish:
            return _publish(warehouse, serving_dir, command="build")
        return 0
    _report_failed_build(
        result.returncode, publish=publish, warehouse=warehouse, serving_dir=serving_dir
    )
    # A dbt killed by a signal reports -N; exit 128 + N as a shell does, never a negative code.
    return 128 - result.returncode if result.returncode < 0 else result.returncode


def dbt_vars_of(extra: list[str]) -> dict[str, Any]:
    """The vars a dbt build with these arguments sets with `--vars` (they win over
    dbt_project.yml, as in dbt; the last --vars given wins)."""
    import yaml

    found: dict[str, Any] = {}
    for index, arg in enumerate(extra):
        if arg.startswith("--vars="):
            text = arg.removeprefix("--vars=")
        elif arg == "--vars" and index + 1 < len(extra):
            text = extra[index + 1]
        else:
            continue
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # dbt reports a malformed --vars itself
        if isinstance(values, dict):
            found = {str(name): value for name, value in values.items()}
    return found


def landing_format_of(extra: list[str]) -> str:
    """The landing format a dbt build with these arguments reads: `--vars` wins over
    dbt_project.yml, as in dbt."""
    from userops.quality.settings import landing_format

    values = dbt_vars_of(extra)
    return str(values["landing_format"]) if "landing_format" in values else landing_format()


def input_problem(landing_dir: Path, warehouse: Path, extra: list[str] | None = None) -> str | None:
    """What would make a build fail before it does any work, one line per fault (None: nothing).
    Checked before dbt starts: a missing mandatory table otherwise surfaces only after every
    model that does not read it has run, a locked warehouse under dbt's traceback, and a faulty
    CSV file (userops/landing_csv.py) with a misleading message or none."""
    from userops.landing_csv import csv_problems
    from userops.quality.settings import (
        landing_contract,
        landing_glob,
        mandatory_tables,
        missing_mandatory_message,
        required_columns,
    )
    from userops.warehouse import check_writable

    file_format = landing_format_of(extra or [])
    for table in mandatory_tables():
        if not glob.glob(landing_glob(landing_dir, table, file_format)):
            message = missing_mandatory_message(landing_dir, table, file_format)
            if not landing_dir.exists():
                message += f" (The landing folder {landing_dir} does not exist.)"
            return message
    if file_format == "csv":
        problems = csv_problems(
            landing_dir, {table: required_columns(table) for table in landing_contract()}
        )
        if problems:
            # One line per faulty file (the first fault of each), the first ten.
            lines = [f"landing file {problem}" for problem in problems[:10]]
            if len(problems) > 10:
                lines.append(f"... and {len(problems) - 10} more faulty files")
            lines.append("Nothing was built. The CSV rules: docs/landing_contract.md.")
            return "\n".join(lines)
    try:
        check_writable(warehouse)
    except WarehouseUnavailable as error:
        return str(error)
    return None


def _run_results(extra: list[str]) -> Path:
    """dbt's run_results.json of a build with these extra arguments."""
    target = os.environ.get("DBT_TARGET_PATH", "target")
    if "--target-path" in extra[:-1]:
        target = extra[extra.index("--target-path") + 1]
    return (PROJECT_DIR / target / "run_results.json").resolve()


def built_in_this_run(model: str, run_results: Path, since: float) -> bool:
    """Whether dbt built `model` successfully in the run that started at `since` (epoch s)."""
    try:
        if run_results.stat().st_mtime < since:
            return False
        results = json.loads(run_results.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return False
    return any(
        result.get("unique_id", "").startswith("model.")
        and result["unique_id"].endswith(f".{model}")
        and result.get("status") == "success"
        for result in results
    )


def _print_landing(warehouse: Path, extra: list[str]) -> None:
    from userops.summary import format_landing, read_landing

    try:
        print("\n".join(["", *format_landing(read_landing(warehouse), dbt_vars_of(extra))]))
    except WarehouseUnavailable as error:  # the build's own outcome matters more
        print(f"(no landing report: {error})", file=sys.stderr)


def _checked_build(
    landing_dir: Path,
    warehouse: Path,
    extra: list[str],
    *,
    publish: bool = True,
    report_landing: bool = True,
    serving_dir: Path | None = None,
) -> int:
    """Check the inputs, build, then say what got in: after a build that passed, and after one
    that failed once marts.landing_row_accounting was built (e.g. a quarantine test failed)."""
    problem = input_problem(landing_dir, warehouse, extra)
    if problem:
        print(f"userops build: {problem}", file=sys.stderr)
        return 1
    started = time.time()
    code = _build(landing_dir, warehouse, extra, publish=publish, serving_dir=serving_dir)
    if report_landing and (
        code == 0 or built_in_this_run("landing_row_accounting", _run_results(extra), started)
    ):
        _print_landing(warehouse, extra)
    return code


def _report_failed_build(
    returncode: int, *, publish: bool, warehouse: Path, serving_dir: Path | None = None
) -> None:
    import duckdb

    from userops.serving import SERVING_FILE, served_build_id, serving_location

    if returncode < 0:
        try:
            how = f"was stopped by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was stopped by signal {-returncode}"
    else:
        how = f"failed (exit code {returncode}; the errors are listed above)"
    message = f"userops build: dbt build {how}."
    if publish:
        serving = serving_location(warehouse, serving_dir).path
        database = serving / SERVING_FILE
        try:
            served = served_build_id(serving)
        except duckdb.Error as error:  # the report must not hide the build's own failure
            served = f"(unknown: {error})"
        message += (
            f" Nothing was published: readers still see build {served} in {database}."
            if served
            else " Nothing was published (there is no serving copy yet)."
        )
    print(message, file=sys.stderr)


def _publish(warehouse: Path, serving_dir: Path | None = None, *, command: str = "publish") -> int:
    from userops.serving import CURRENT, PublishError, publish

    try:
        publication = publish(warehouse, serving_dir)
    except PublishError as error:
        # An IO error (disk full) or an unreadable warehouse: one line, not a traceback.
        prefix = "dbt build passed, but " if command == "build" else ""
        print(f"userops {command}: {prefix}{error}", file=sys.stderr)
        return 1
    location = publication.location
    rows = sum(publication.tables.values())
    print(
        f"Published build {publication.build_id}: {len(publication.tables)} tables, {rows:,} rows"
        f" in {publication.seconds:.1f} s to {location.path if location else publication.database}"
        f" ({location.reason if location else 'serving folder'})."
    )
    print(f"  BI (DuckDB, read-only): {publication.database}")
    print(f"  Parquet: {publication.parquet_dir.parent / CURRENT}/marts/<table>.parquet")
    if publication.swept:
        print(f"  Removed leftovers of an interrupted publish: {', '.join(publication.swept)}")
    return 0


def _summary(warehouse: Path) -> None:
    from userops.summary import format_summary, read_summary

    print(format_summary(read_summary(warehouse), warehouse))


def _report(warehouse: Path, output: Path | None, *, if_missing: bool = False) -> None:
    from userops.report import default_report_path, write_report

    existing = output or default_report_path(warehouse)
    if if_missing and existing.exists():
        print(f"Report: {existing.resolve()} ({existing.stat().st_size / 1e6:.1f} MB)")
        return
    try:
        report = write_report(warehouse, output)
    except FileNotFoundError as error:
        raise SystemExit(f"userops report: {error}") from None
    print(
        f"Report: {report.path} ({report.bytes / 1e6:.1f} MB, {len(report.rendered)} charts, "
        f"{report.seconds:.1f} s)"
    )
    for key, reason in report.empty.items():
        print(f"  {key}: {reason}")


def _alerts(warehouse: Path, days: int, notify: bool) -> None:
    from userops.alerts import configured_sinks, notify_new_alerts, read_alerts

    if not warehouse.exists():
        raise SystemExit(f"userops alerts: no warehouse at {warehouse}: build it first")
    alerts = read_alerts(warehouse)
    if not alerts:
        print("No metric alerts.")
        return
    since = alerts[0]["metric_date"] - timedelta(days=days - 1)
    recent = [alert for alert in alerts if alert["metric_date"] >= since]
    print(f"{len(recent)} metric alerts since {since} ({len(alerts)} in all):")
    for alert in recent:
        print(f"  {alert.message()}")
    if notify:
        sinks = configured_sinks()
        sent = notify_new_alerts(warehouse, sinks, since=since)
        print(f"Sent {len(sent)} new alerts to {', '.join(sinks) or 'ops.alerts only'}.")


def _deliver(args: argparse.Namespace, warehouse: Path) -> int:
    from userops.delivery import (
        ConfigError,
        DeliveryError,
        default_outbox_dir,
        deliver,
        load_destinations,
    )

    try:
        destinations, notes = load_destinations(
            args.destinations, outbox_dir=default_outbox_dir(warehouse)
        )
        report = deliver(warehouse, delivery_date=args.date, destinations=destinations, notes=notes)
    except (ConfigError, DeliveryError) as error:
        print(error, file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except WarehouseUnavailable as error:
        print(f"userops {args.command}: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    landing_dir = (args.landing_dir or default_landing_dir()).resolve()
    warehouse = (getattr(args, "warehouse", None) or default_warehouse_path()).resolve()

    if args.command == "generate":
        _generate(args, landing_dir)
    elif args.command == "import":
        return _import(args, landing_dir)
    elif args.command == "build":
        extra = [arg for arg in args.dbt_args if arg != "--"]
        return _checked_build(
            landing_dir,
            warehouse,
            extra,
            publish=not args.no_publish,
            serving_dir=args.serving_dir,
        )
    elif args.command == "publish":
        return _publish(warehouse, args.serving_dir)
    elif args.command == "summary":
        _summary(warehouse)
    elif args.command == "mf":
        from userops.semantic import run_mf

        return run_mf([arg for arg in args.mf_args if arg != "--"], warehouse)
    elif args.command == "report":
        _report(warehouse, args.output, if_missing=args.if_missing)
    elif args.command == "alerts":
        _alerts(warehouse, args.days, args.notify)
    elif args.command == "deliver":
        return _deliver(args, warehouse)
    elif args.command == "demo":
        _generate(args, landing_dir)
        code = _checked_build(
            landing_dir, warehouse, [], report_landing=False, serving_dir=args.serving_dir
        )
        if code != 0:
            print("userops demo: the build or its publication failed (see above).", file=sys.stderr)
            return code
        _summary(warehouse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
