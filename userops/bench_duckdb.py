"""The race's best case on this engine: one hand-written DuckDB SQL script (bench_duckdb.sql) in
one process, reading the landing Parquet files directly, writing the three marts' figures as
the files of userops.bench_race.OUTPUTS. Definitions and rules: userops/bench_race.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from string import Template

from userops.bench_race import definitions, landing_glob

SCRIPT = Path(__file__).with_name("bench_duckdb.sql")


def render(landing_dir: Path, out: Path) -> str:
    """The script with paths and definitions filled in."""
    rules = definitions()
    return Template(SCRIPT.read_text()).substitute(
        events=landing_glob(landing_dir, "events"),
        orders=landing_glob(landing_dir, "orders"),
        users=landing_glob(landing_dir, "users"),
        event_mapping=str(rules.event_mapping_csv),
        out=str(Path(out).resolve()),
        business_timezone=rules.business_timezone,
        min_valid_timestamp=rules.min_valid_timestamp,
        max_future_days=rules.max_future_days,
        rfm_window_days=rules.rfm_window_days,
        max_periods_month=rules.max_periods_month,
    )


def run(landing_dir: Path, out: Path, memory_limit: str, temp_dir: Path) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "temp_directory": str(temp_dir),
            "preserve_insertion_order": False,
        }
    )
    # Landing timestamps are UTC; the business day is converted explicitly. (Set after
    # connecting: as a connect option DuckDB cannot autoload ICU for it.)
    connection.execute("set TimeZone = 'UTC'")
    connection.execute(render(landing_dir, out))
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m userops.bench_duckdb", description=__doc__)
    parser.add_argument("--landing-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--temp-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    run(args.landing_dir, args.out, args.memory_limit, args.temp_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
