"""`userops` command line: generate sample data, import your own, build, summarise."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from userops.paths import default_landing_dir, default_warehouse_path


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
    _add_paths(importer, warehouse=False)

    build = commands.add_parser("build", help="dbt build against the landing folder")
    _add_paths(build)
    build.add_argument("dbt_args", nargs=argparse.REMAINDER, help="extra dbt arguments")

    build.add_argument("--no-publish", action="store_true", help="skip publishing the serving copy")

    publish = commands.add_parser("publish", help="publish the marts to the read-only serving copy")
    _add_paths(publish)

    summary = commands.add_parser("summary", help="rows per layer of the last build")
    _add_paths(summary)

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
    _add_generate_options(demo)
    return parser


def resolve_mapping(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled = Path(__file__).parent / "mappings" / f"{name_or_path}.yml"
    if bundled.exists():
        return bundled
    raise SystemExit(
        f"userops import: no mapping file {name_or_path!r} (nor a bundled one of that name)"
    )


def _generate(args: argparse.Namespace, landing_dir: Path) -> None:
    from userops.generate import generate

    end_date = args.end_date or (datetime.now(UTC).date() - timedelta(days=1))
    started = time.perf_counter()
    counts = generate(
        landing_dir,
        users=args.users,
        days=args.days,
        end_date=end_date,
        seed=args.seed,
        bad_row_share=args.bad_row_share,
    )
    seconds = time.perf_counter() - started
    print(f"Generated {sum(counts.values()):,} rows in {seconds:.1f} s into {landing_dir}:")
    for table, rows in counts.items():
        print(f"  {table:<16} {rows:>12,}")


def _build(landing_dir: Path, warehouse: Path, extra: list[str], *, publish: bool = True) -> int:
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
            _publish(warehouse)
        return 0
    _report_failed_build(result.returncode, publish=publish)
    # A dbt killed by a signal reports -N; exit 128 + N as a shell does, never a negative code.
    return 128 - result.returncode if result.returncode < 0 else result.returncode


def _report_failed_build(returncode: int, *, publish: bool) -> None:
    import duckdb

    from userops.serving import SERVING_FILE, default_serving_dir, served_build_id

    if returncode < 0:
        try:
            how = f"was stopped by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was stopped by signal {-returncode}"
    else:
        how = f"failed (exit code {returncode}; the errors are listed above)"
    message = f"userops build: dbt build {how}."
    if publish:
        database = default_serving_dir() / SERVING_FILE
        try:
            served = served_build_id()
        except duckdb.Error as error:  # the report must not hide the build's own failure
            served = f"(unknown: {error})"
        message += (
            f" Nothing was published: readers still see build {served} in {database}."
            if served
            else " Nothing was published (there is no serving copy yet)."
        )
    print(message, file=sys.stderr)


def _publish(warehouse: Path) -> None:
    from userops.serving import publish

    publication = publish(warehouse)
    print(
        f"Published build {publication.build_id}: {len(publication.tables)} tables to "
        f"{publication.database} (Parquet: {publication.parquet_dir.parent / 'current'})"
    )


def _summary(warehouse: Path) -> None:
    from userops.summary import format_summary, layer_row_counts

    print(format_summary(layer_row_counts(warehouse), warehouse))


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
        report = deliver(
            warehouse, delivery_date=args.date, destinations=destinations, notes=notes
        )
    except (ConfigError, DeliveryError) as error:
        print(error, file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    landing_dir = (args.landing_dir or default_landing_dir()).resolve()
    warehouse = (getattr(args, "warehouse", None) or default_warehouse_path()).resolve()

    if args.command == "generate":
        _generate(args, landing_dir)
    elif args.command == "import":
        from userops.importer import import_data

        report = import_data(args.source, resolve_mapping(args.mapping), landing_dir)
        print(
            json.dumps(
                report.as_dict() if hasattr(report, "as_dict") else vars(report),
                indent=2,
                default=str,
            )
        )
    elif args.command == "build":
        extra = [arg for arg in args.dbt_args if arg != "--"]
        return _build(landing_dir, warehouse, extra, publish=not args.no_publish)
    elif args.command == "publish":
        _publish(warehouse)
    elif args.command == "summary":
        _summary(warehouse)
    elif args.command == "deliver":
        return _deliver(args, warehouse)
    elif args.command == "demo":
        _generate(args, landing_dir)
        code = _build(landing_dir, warehouse, [])
        if code != 0:
            print("dbt build failed; see the log above.", file=sys.stderr)
            return code
        _summary(warehouse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
