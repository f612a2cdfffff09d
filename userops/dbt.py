"""Running dbt against a chosen landing folder and warehouse file.

dbt reads its paths from environment variables (profiles.yml, the landing source), so every
caller (CLI, Dagster, tests) points a run somewhere else without editing project files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from userops.paths import PROJECT_DIR

TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
# A day-partitioned run's business days [start, end) as the macros in
# macros/incremental/day_windows.sql read them. Not `--vars`: dbt keys its partial parse on the
# command line's vars, so a new day would make it re-parse the whole project.
WINDOW_START_ENV = "USEROPS_WINDOW_START"
WINDOW_END_ENV = "USEROPS_WINDOW_END"


def window_env(start: date | None, end: date | None) -> dict[str, str]:
    """The environment variables of a run's day window (empty: no window, all history)."""
    if start is None:
        return {}
    env = {WINDOW_START_ENV: start.isoformat()}
    if end is not None:
        env[WINDOW_END_ENV] = end.isoformat()
    return env


def dbt_env(
    landing_dir: Path, warehouse_path: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for a dbt process: absolute paths, telemetry off, DuckDB spill folder."""
    env = dict(os.environ if base is None else base)
    # A window only when the caller asks for one (run_dbt's `window`), never from the shell.
    env.pop(WINDOW_START_ENV, None)
    env.pop(WINDOW_END_ENV, None)
    warehouse_path = Path(warehouse_path).resolve()
    env.update(TELEMETRY_OFF)
    env["DBT_PROFILES_DIR"] = str(PROJECT_DIR)
    env["DBT_PROJECT_DIR"] = str(PROJECT_DIR)
    env["USEROPS_LANDING_DIR"] = str(Path(landing_dir).resolve())
    env["USEROPS_DUCKDB_PATH"] = str(warehouse_path)
    env.setdefault("USEROPS_DUCKDB_TEMP_DIR", str(warehouse_path.parent / "tmp"))
    return env


def dbt_executable() -> str:
    """The dbt next to this interpreter, so a venv's dbt is used even when not on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    args: Sequence[str],
    *,
    landing_dir: Path,
    warehouse_path: Path,
    dbt_vars: Mapping[str, object] | None = None,
    window: tuple[date, date] | None = None,
    capture: bool = False,
    target_path: Path | None = None,
    log_path: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one dbt command in the project directory; never raises on a failed build. `window`:
    the business days [start, end) of a day-partitioned run, as Dagster passes them."""
    warehouse_path = Path(warehouse_path).resolve()
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    env = dbt_env(landing_dir, warehouse_path)
    env.update(window_env(*window) if window else {})
    Path(env["USEROPS_DUCKDB_TEMP_DIR"]).mkdir(parents=True, exist_ok=True)
    command = [dbt_executable(), *args]
    if dbt_vars:
        command += ["--vars", json.dumps(dict(dbt_vars))]
    if target_path is not None:
        # Separate target folders let tests run builds without sharing compiled state.
        command += ["--target-path", str(target_path)]
    if log_path is not None:
        command += ["--log-path", str(log_path)]
    return subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )
