"""Publish the marts to a serving folder that BI tools read while builds run.

DuckDB allows one writer per file, so BI never reads the working warehouse: after a build and
its tests pass, `publish` writes the served schemas as Parquet into an immutable build folder
and switches readers to it. The serving folder (docs/serving.md has the details):

    userops.duckdb                  entry file: views only, one per served table
    parquet/<build_id>/             one complete build: marts/<table>.parquet,
                                    meta/publication.parquet, _COMPLETE (written last)
    parquet/current -> <build_id>   symlink, switched with one atomic rename
    .publish.lock                   one publish at a time

Why views over `parquet/current` and not a fresh DuckDB copy per build: DuckDB keeps one open
database per process and path. A BI process (SQLAlchemy's pool, Metabase) that has the entry
file open gets that same database object on every new connection, so a replaced DuckDB file
stays invisible to it for as long as it runs. A view is bound again at every query, and its
`read_parquet` follows the symlink then, so the next query of such a process reads the new build.
The entry file itself changes only in which views it holds: a process that keeps a connection
open sees a new table (or stops seeing a dropped one) after all its connections have closed.

A build becomes visible only whole: its folder is written under a hidden temporary name and
renamed into place complete, before `current` moves to it. A publish that is killed leaves
hidden leftovers (a partial folder, a temporary entry file and its WAL) or a complete build that
never became current; one that fails (disk full) removes its own. The next publish sweeps the
leftovers before it starts (under the lock, so never another publish's work) and, after its
switch, keeps two builds: the new one and the one readers saw until then. A build that was never
current does not take the previous one's place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from userops.sql import sql_identifier, sql_string_literal

SERVING_FILE = "userops.duckdb"
# Schemas copied from the warehouse. `meta` (the publication record) is written by publish.
SERVED_SCHEMAS = ("marts",)
META_SCHEMA = "meta"
COMPLETE_MARKER = "_COMPLETE"
LOCK_FILE = ".publish.lock"
PARTIAL_PREFIX = ".partial-"
CURRENT = "current"
# A connection that runs `set variable userops_build = '<build_id>'` reads that build (while it
# is kept) instead of `current`: a snapshot across several queries. Publish uses it to bind the
# new views against the new build before it becomes current.
PIN_VARIABLE = "userops_build"
# Fault injection for tests/python/test_serving_faults.py: with USEROPS_PUBLISH_PAUSE_AT=<point>,
# publish stops at that point (and waits to be killed) so a test can SIGKILL it exactly there.
PAUSE_ENV = "USEROPS_PUBLISH_PAUSE_AT"
PAUSE_POINTS = (
    "swept",  # lock held, leftovers swept, nothing written yet
    "exporting",  # the first Parquet file of the build is written, the others are not
    "exported",  # every Parquet file is written, _COMPLETE is not
    "completed",  # the build folder is renamed into place, the entry file is not written
    "entry",  # the new entry file holds its views but is not checkpointed (a .wal exists)
    "entry_written",  # the new entry file is closed, `current` still points to the old build
    "switched",  # `current` points to the new build, the entry file is not replaced yet
    "replaced",  # the entry file is replaced, old builds are not removed yet
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DISK_FULL = ("no space left", "file too large", "disk quota")


class PublishError(Exception):
    """A publish that could not complete; the message says what readers see and what to do."""


@dataclass(frozen=True)
class ServingLocation:
    path: Path
    reason: str  # why this folder, for the output: "--serving-dir", "$USEROPS_SERVING_DIR", ...


@dataclass(frozen=True)
class Publication:
    build_id: str
    database: Path
    parquet_dir: Path
    tables: dict[str, int]
    seconds: float = 0.0
    swept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    location: ServingLocation | None = None


def serving_location(
    warehouse_path: Path | None = None,
    serving_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServingLocation:
    """Where a warehouse publishes: --serving-dir, else $USEROPS_SERVING_DIR, else its own folder.

    The project's default warehouse (data/warehouse/userops.duckdb) publishes to data/serving;
    any other warehouse publishes to `serving/` in the warehouse's folder (next to the `tmp/`
    spill folder dbt gets there), so a scratch build never replaces what BI reads.
    """
    from userops.paths import PROJECT_DIR, default_warehouse_path

    environ = os.environ if environ is None else environ
    if serving_dir is not None:
        return ServingLocation(Path(serving_dir).resolve(), "--serving-dir")
    if environ.get("USEROPS_SERVING_DIR"):
        return ServingLocation(
            Path(environ["USEROPS_SERVING_DIR"]).resolve(), "$USEROPS_SERVING_DIR"
        )
    warehouse = Path(warehouse_path or default_warehouse_path()).resolve()
    project_warehouse = (PROJECT_DIR / "data" / "warehouse" / SERVING_FILE).resolve()
    if warehouse == project_warehouse:
        return ServingLocation(
            (PROJECT_DIR / "data" / "serving").resolve(), "the default warehouse's serving folder"
        )
    return ServingLocation((warehouse.parent / "serving").resolve(), f"next to {warehouse}")


def default_serving_dir(warehouse_path: Path | None = None) -> Path:
    return serving_location(warehouse_path).path


def new_build_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------ publish
def publish(
    warehouse_path: Path,
    serving_dir: Path | None = None,
    build_id: str | None = None,
) -> Publication:
    """Publish the served schemas of a finished build; readers switch to it all at once.

    Raises PublishError (with a message for the operator) when the warehouse cannot be read or
    the serving folder cannot be written; readers then still see the previous build.
    """
    started = time.perf_counter()
    warehouse_path = Path(warehouse_path).resolve()
    location = serving_location(warehouse_path, serving_dir)
    serving_dir = location.path
    build_id = build_id or new_build_id()
    if not _NAME.fullmatch(build_id):
        raise PublishError(f"build id {build_id!r} is not a plain name ([A-Za-z0-9_.-])")
    parquet_root = serving_dir / "parquet"
    partial = parquet_root / f"{PARTIAL_PREFIX}{build_id}"
    entry_tmp = serving_dir / f".{SERVING_FILE}.{build_id}.tmp"
    previous: str | None = None
    renamed = switched = False
    try:
        parquet_root.mkdir(parents=True, exist_ok=True)
        with _publish_lock(serving_dir):
            previous = _served_or_none(serving_dir)
            previous_folder = _current_target(parquet_root)
            swept = sweep(serving_dir)
            _pause("swept")
            if (parquet_root / build_id).exists():
                raise PublishError(f"build {build_id} already exists in {parquet_root}")
            tables = _export(warehouse_path, partial, build_id)
            _sync_tree(partial)
            os.rename(partial, parquet_root / build_id)
            renamed = True
            _fsync_dir(parquet_root)
            _pause("completed")
            _write_entry(entry_tmp, parquet_root, build_id, list(tables))
            _pause("entry_written")
            _point_current(parquet_root, build_id)
            switched = True
            _pause("switched")
            os.replace(entry_tmp, serving_dir / SERVING_FILE)
            _fsync_dir(serving_dir)
            _pause("replaced")
            removed = _remove_old_builds(parquet_root, keep={build_id, previous_folder or ""})
    except (OSError, duckdb.Error, PublishError) as error:
        if renamed and not switched:
            # Complete but never current: nobody reads it, and a full disk wants the space.
            shutil.rmtree(parquet_root / build_id, ignore_errors=True)
        if isinstance(error, PublishError):
            raise
        raise PublishError(
            _failure_message(error, build_id, serving_dir, previous, switched)
        ) from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        for leftover in (entry_tmp, Path(f"{entry_tmp}.wal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return Publication(
        build_id,
        serving_dir / SERVING_FILE,
        parquet_root / build_id,
        tables,
        seconds=time.perf_counter() - started,
        swept=swept,
        removed=removed,
        location=location,
    )


def _export(warehouse_path: Path, target: Path, build_id: str) -> dict[str, int]:
    """Write every served table and the publication record as Parquet under `target`."""
    published_at = datetime.now(UTC).replace(tzinfo=None)
    tables: dict[str, int] = {}
    with duckdb.connect() as connection:
        try:
            connection.execute(
                f"attach {sql_string_literal(warehouse_path)} as working (read_only)"
            )
        except duckdb.Error as error:
            raise PublishError(
                f"cannot open the warehouse {warehouse_path} read-only ({_first_line(error)}). "
                "Run `userops build` first, or wait until the build using it has finished."
            ) from error
        served = connection.execute(
            """
            select table_schema, table_name
            from information_schema.tables
            where table_catalog = 'working' and list_contains(?, table_schema)
            order by table_schema, table_name
            """,
            [list(SERVED_SCHEMAS)],
        ).fetchall()
        if not served:
            raise PublishError(
                f"the warehouse {warehouse_path} has no {', '.join(SERVED_SCHEMAS)} tables: "
                "run `userops build` first. Nothing was published."
            )
        for schema, table in served:
            if not (_NAME.fullmatch(schema) and _NAME.fullmatch(table)):
                raise PublishError(f"cannot serve {schema}.{table}: not a plain table name")
            relation = f"working.{sql_identifier(schema)}.{sql_identifier(table)}"
            rows = _copy(connection, f"select * from {relation}", target, schema, table)
            tables[f"{schema}.{table}"] = rows
            _pause("exporting")
        connection.execute("detach working")
        connection.execute(
            "create temp table publication as select ?::varchar as build_id, "
            "?::timestamp as published_at",
            [build_id, published_at],
        )
        _copy(connection, "select * from publication", target, META_SCHEMA, "publication")
    _pause("exported")
    marker = {
        "build_id": build_id,
        "published_at": published_at.isoformat(),
        "warehouse": str(warehouse_path),
        "tables": tables,
    }
    (target / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return tables


def _copy(
    connection: duckdb.DuckDBPyConnection, query: str, target: Path, schema: str, table: str
) -> int:
    path = target / schema / f"{table}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    [(rows,)] = connection.execute(
        f"copy ({query}) to {sql_string_literal(path)} (format parquet)"
    ).fetchall()
    return int(rows)


def _view_sql(parquet_root: Path, schema: str, table: str) -> str:
    # read_parquet binds again at every query: the path follows `current` (or a pinned build)
    # when the query runs, not when the view was made. Absolute, because DuckDB resolves a
    # relative path against the reader's working directory, not the entry file's folder.
    prefix = sql_string_literal(f"{parquet_root}/")
    suffix = sql_string_literal(f"/{schema}/{table}.parquet")
    build = f"coalesce(getvariable('{PIN_VARIABLE}'), '{CURRENT}')"
    return (
        f"create view {sql_identifier(schema)}.{sql_identifier(table)} as "
        f"select * from read_parquet({prefix} || {build} || {suffix})"
    )


def _write_entry(entry: Path, parquet_root: Path, build_id: str, tables: list[str]) -> None:
    served = [name.split(".", 1) for name in tables] + [[META_SCHEMA, "publication"]]
    with duckdb.connect(str(entry)) as connection:
        # Views are bound when created; bind them against the new build, which is not current.
        connection.execute(f"set variable {PIN_VARIABLE} = ?", [build_id])
        connection.execute("begin")  # one commit (one WAL sync) for all views, not one each
        for schema in sorted({schema for schema, _ in served}):
            connection.execute(f"create schema {sql_identifier(schema)}")
        for schema, table in served:
            connection.execute(_view_sql(parquet_root, schema, table))
        connection.execute("commit")
        _pause("entry")
        connection.execute("checkpoint")


def _point_current(parquet_root: Path, build_id: str) -> None:
    link = parquet_root / CURRENT
    temporary = parquet_root / f".{CURRENT}.{build_id}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(build_id, target_is_directory=True)
    os.replace(temporary, link)  # atomic: a reader resolves either the old or the new build
    _fsync_dir(parquet_root)


def _remove_old_builds(parquet_root: Path, keep: set[str]) -> list[str]:
    """Remove every build folder but the new one and the one that was current before it: a
    reader that resolved `current` a moment ago (or pinned that build) still has its files."""
    removed = []
    for path in sorted(parquet_root.iterdir()):
        if path.name.startswith(".") or path.is_symlink() or path.name in keep:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


# ---------------------------------------------------------------------------- state and sweep
def complete_builds(parquet_root: Path) -> list[Path]:
    """Build folders with their _COMPLETE marker, oldest publication first."""
    builds = []
    if not parquet_root.is_dir():
        return []
    for path in parquet_root.iterdir():
        marker = path / COMPLETE_MARKER
        if path.name.startswith(".") or path.is_symlink() or not marker.is_file():
            continue
        try:
            published_at = str(json.loads(marker.read_text())["published_at"])
        except (OSError, ValueError, KeyError):
            continue  # an unreadable marker is no marker
        builds.append((published_at, path.name, path))
    return [path for _, _, path in sorted(builds)]


def sweep(serving_dir: Path) -> list[str]:
    """Remove what interrupted publishes left: temporary entry files and their WAL, hidden
    partial build folders and symlinks, build folders without _COMPLETE. Call it holding the
    publish lock: then none of these belongs to a publish still running."""
    swept = []
    for leftover in serving_dir.glob(f".{SERVING_FILE}.*.tmp*"):
        leftover.unlink(missing_ok=True)
        swept.append(leftover.name)
    parquet_root = serving_dir / "parquet"
    if not parquet_root.is_dir():
        return swept
    current = _current_target(parquet_root)
    complete = {path.name for path in complete_builds(parquet_root)}
    for path in sorted(parquet_root.iterdir()):
        if path.name == CURRENT:
            continue
        if path.is_symlink() or path.is_file():
            if path.name.startswith("."):
                path.unlink(missing_ok=True)
                swept.append(f"parquet/{path.name}")
        elif path.name not in complete and path.name != current:
            shutil.rmtree(path, ignore_errors=True)
            swept.append(f"parquet/{path.name}")
    return swept


def served_build_id(serving_dir: Path | None = None) -> str | None:
    """The build readers currently see, or None before the first publication."""
    serving_dir = Path(serving_dir).resolve() if serving_dir else default_serving_dir()
    parquet_root = serving_dir / "parquet"
    current = _current_target(parquet_root)
    marker = parquet_root / (current or "") / COMPLETE_MARKER
    if current and marker.is_file():
        return str(json.loads(marker.read_text())["build_id"])
    database = serving_dir / SERVING_FILE
    if not database.exists():
        return None
    # A serving folder written before the _COMPLETE marker existed.
    with duckdb.connect(str(database), read_only=True) as connection:
        return str(connection.execute("select build_id from meta.publication").fetchall()[0][0])


def _served_or_none(serving_dir: Path) -> str | None:
    # For the failure message only: a legacy entry file held read-write by a BI tool must not
    # stop the publish that replaces it.
    try:
        return served_build_id(serving_dir)
    except (OSError, ValueError, KeyError, duckdb.Error):
        return None


def _current_target(parquet_root: Path) -> str | None:
    try:
        return os.readlink(parquet_root / CURRENT)
    except OSError:
        return None


# ------------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _publish_lock(serving_dir: Path) -> Iterator[None]:
    # flock: released by the kernel when the holder dies, so a killed publish never blocks
    # the next one.
    with open(serving_dir / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishError(
                f"another publish into {serving_dir} is running (it holds {LOCK_FILE}); "
                "run this one again when it has finished."
            ) from None
        yield


def _sync_tree(root: Path) -> None:
    """fsync every file and folder of a build before it is renamed into place, so that after a
    power loss a folder with _COMPLETE has its data too."""
    for folder, _, names in os.walk(root):
        for name in names:
            descriptor = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _pause(point: str) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        print(f"userops publish: paused at {point}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)


def _first_line(error: BaseException) -> str:
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    # DuckDB wraps some IO errors: `IO Error: Async write failed for range [...]: {"exception_type":
    # "IO","exception_message":"Could not write file ...: File too large","errno":"27"}`.
    if "{" in line:
        with contextlib.suppress(ValueError):
            details = json.loads(line[line.index("{") :])
            if isinstance(details, dict) and details.get("exception_message"):
                return str(details["exception_message"])
    return line


def _failure_message(
    error: BaseException, build_id: str, serving_dir: Path, previous: str | None, switched: bool
) -> str:
    reason = _first_line(error)
    if switched:
        # Only the entry file's replacement and clean-up come after the switch.
        seen = (
            f"Readers already see build {build_id} through parquet/current, but "
            f"{serving_dir / SERVING_FILE} may still list the previous build's tables."
        )
    elif previous:
        seen = f"Nothing changed for readers: they still see build {previous}."
    else:
        seen = "Nothing was published (there is no serving copy yet)."
    if any(words in reason.lower() for words in _DISK_FULL):
        todo = "Free disk space (or raise the file size limit) and publish again"
    else:
        todo = "Fix that and publish again"
    return (
        f"could not publish build {build_id} to {serving_dir}: {reason}. {seen} {todo}; "
        "the next publish removes what this one left."
    )
