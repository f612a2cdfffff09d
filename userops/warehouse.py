"""Opening the working warehouse from the CLI: one clear line instead of a traceback.

DuckDB allows one writer per file, and a reader blocks a writer too. A second `userops build`, or
a BI tool or notebook holding the working file open, makes DuckDB raise "Could not set lock on
file ...: Conflicting lock is held in <program> (PID n)"; dbt prints that under a page of
traceback. The CLI checks first and says who holds the file and what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseUnavailable(Exception):
    """The warehouse cannot be opened; str() is the one line to show."""


def serving_database(warehouse: Path) -> Path:
    """The serving copy BI tools read for this warehouse: the only place the CLI and the summary
    ask userops.serving where it lives ($USEROPS_SERVING_DIR, else the folder that follows the
    warehouse, docs/serving.md)."""
    from userops.serving import SERVING_FILE, default_serving_dir

    return default_serving_dir(warehouse) / SERVING_FILE


def _command_line(pid: int) -> str | None:
    """The holder's command line on Linux (None elsewhere or when it has gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    text = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
    return text[:120] + ("…" if len(text) > 120 else "") if text else None


def describe_lock(warehouse: Path, error: duckdb.Error) -> str | None:
    """The one line for a lock conflict, or None when the error is not one."""
    message = str(error)
    if "Could not set lock" not in message:
        return None
    match = LOCK_HOLDER.search(message)
    if match:
        pid = int(match.group("pid"))
        what = _command_line(pid) or match.group("program")
        holder = f"process {pid} ({what})"
    else:
        holder = "another process"
    return (
        f"the warehouse {warehouse} is locked by {holder}: another build, or a BI tool or "
        "notebook holding it open. Wait for that build to finish or close the tool; point BI "
        f"tools at the serving copy {serving_database(warehouse)}, which never blocks a build."
    )


def check_writable(warehouse: Path) -> None:
    """Open the warehouse for writing and close it at once (creating it when absent, as dbt
    would); raise WarehouseUnavailable when another process holds it."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        duckdb.connect(str(warehouse)).close()
    except duckdb.Error as error:
        raise WarehouseUnavailable(describe_lock(warehouse, error) or str(error)) from error


def connect_read_only(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection, or WarehouseUnavailable saying why not."""
    if not warehouse.exists():
        raise WarehouseUnavailable(
            f"there is no warehouse at {warehouse}: build one first (userops build, or make "
            "demo), or pass the file with --warehouse (default $USEROPS_DUCKDB_PATH)"
        )
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as error:
        raise WarehouseUnavailable(describe_lock(warehouse, error) or str(error)) from error
