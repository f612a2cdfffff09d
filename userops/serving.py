"""Publish the marts to a read-only serving copy so BI readers and builds never block each other.

DuckDB allows one writer per file: a BI tool holding the working warehouse open blocks
`dbt build`, and a build in progress blocks readers. After a build and its tests pass, the
marts are copied into a new DuckDB file next to the serving path, which then replaces the
serving file with one atomic rename. A reader that opened the old file keeps reading that
complete copy; the next connection sees the new one. Nobody ever sees a half-built state.
Each publication also writes the marts as Parquet under `parquet/<build_id>/` and repoints the
`parquet/current` symlink atomically, for tools that read Parquet.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

SERVING_FILE = "userops.duckdb"
SERVED_SCHEMAS = ("marts",)
KEEP_PARQUET_BUILDS = 2


@dataclass(frozen=True)
class Publication:
    build_id: str
    database: Path
    parquet_dir: Path
    tables: dict[str, int]


def default_serving_dir() -> Path:
    from userops.paths import PROJECT_DIR

    return Path(os.environ.get("USEROPS_SERVING_DIR", PROJECT_DIR / "data" / "serving")).resolve()


def new_build_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _served_tables(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    schemas = ", ".join(f"'{schema}'" for schema in SERVED_SCHEMAS)
    return connection.execute(
        f"""
        select table_schema, table_name
        from information_schema.tables
        where table_catalog = 'working' and table_schema in ({schemas})
        order by table_schema, table_name
        """
    ).fetchall()


def publish(
    warehouse_path: Path, serving_dir: Path | None = None, build_id: str | None = None
) -> Publication:
    """Copy the served schemas of a finished build into the serving copy, atomically."""
    serving_dir = (serving_dir or default_serving_dir()).resolve()
    serving_dir.mkdir(parents=True, exist_ok=True)
    build_id = build_id or new_build_id()
    staging_file = serving_dir / f".{SERVING_FILE}.{build_id}.tmp"
    parquet_dir = serving_dir / "parquet" / build_id
    tables: dict[str, int] = {}
    try:
        with duckdb.connect(str(staging_file)) as connection:
            connection.execute(f"attach '{Path(warehouse_path).resolve()}' as working (read_only)")
            for schema, table in _served_tables(connection):
                connection.execute(f'create schema if not exists "{schema}"')
                qualified = f'"{schema}"."{table}"'
                connection.execute(f"create table {qualified} as select * from working.{qualified}")
                (rows,) = connection.execute(
                    f'select count(*) from "{schema}"."{table}"'
                ).fetchall()[0]
                tables[f"{schema}.{table}"] = int(rows)
                target = parquet_dir / schema / f"{table}.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                connection.execute(f'copy "{schema}"."{table}" to \'{target}\' (format parquet)')
            connection.execute("detach working")
            connection.execute("create schema if not exists meta")
            connection.execute(
                "create table meta.publication as select ? as build_id, ? as published_at",
                [build_id, datetime.now(UTC).replace(tzinfo=None)],
            )
            connection.execute("checkpoint")
        # The swap: rename is atomic on one file system; open readers keep the old inode.
        os.replace(staging_file, serving_dir / SERVING_FILE)
    finally:
        staging_file.unlink(missing_ok=True)
        Path(f"{staging_file}.wal").unlink(missing_ok=True)
    _point_current(serving_dir / "parquet", build_id)
    return Publication(build_id, serving_dir / SERVING_FILE, parquet_dir, tables)


def served_build_id(serving_dir: Path | None = None) -> str | None:
    """The build readers currently see, or None before the first publication."""
    database = (serving_dir or default_serving_dir()).resolve() / SERVING_FILE
    if not database.exists():
        return None
    with duckdb.connect(str(database), read_only=True) as connection:
        return str(connection.execute("select build_id from meta.publication").fetchall()[0][0])


def _point_current(parquet_root: Path, build_id: str) -> None:
    link = parquet_root / "current"
    temporary = parquet_root / f".current.{build_id}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(build_id, target_is_directory=True)
    os.replace(temporary, link)
    builds = sorted(p for p in parquet_root.iterdir() if p.is_dir() and not p.is_symlink())
    # Keep the previous build too: a reader that resolved `current` a moment ago still has it.
    for old in builds[:-KEEP_PARQUET_BUILDS]:
        if old.name != build_id:
            shutil.rmtree(old, ignore_errors=True)
