"""`userops mf`: MetricFlow's `mf` CLI over this project, without an activated venv.

`mf` reads the semantic manifest that `dbt parse` writes to `<project>/target/` and connects
through the dbt profile, so it only works from the project root after a parse, with the venv's
executables at hand. This wrapper parses when the manifest is missing or older than the project's
files, points `mf` at the project and the warehouse, and runs it in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from userops.dbt import TELEMETRY_OFF, dbt_executable
from userops.paths import PROJECT_DIR

SEMANTIC_MANIFEST = Path("target") / "semantic_manifest.json"
# What `dbt parse` reads: a change to any of these can change the semantic manifest.
PARSED_FOLDERS = ("models", "macros", "seeds", "tests", "snapshots", "analyses")
PARSED_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
PARSED_FILES = ("dbt_project.yml", "profiles.yml")


def project_dir() -> Path:
    """dbt's own DBT_PROJECT_DIR when set (dbt and mf honour it too), else this checkout."""
    return Path(os.environ.get("DBT_PROJECT_DIR", PROJECT_DIR)).resolve()


def parsed_files(project: Path) -> Iterable[Path]:
    for name in PARSED_FILES:
        if (project / name).is_file():
            yield project / name
    for folder in PARSED_FOLDERS:
        if (project / folder).is_dir():
            yield from (
                path
                for path in (project / folder).rglob("*")
                if path.suffix in PARSED_SUFFIXES and path.is_file()
            )


def manifest_is_stale(project: Path) -> bool:
    """True when target/semantic_manifest.json is missing or older than a file dbt parses."""
    manifest = project / SEMANTIC_MANIFEST
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    return any(path.stat().st_mtime > built for path in parsed_files(project))


def mf_environment(
    project: Path, warehouse_path: Path, base: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment for dbt parse and mf: the project, its profile, the warehouse, no telemetry."""
    env = dict(os.environ if base is None else base)
    env.update(TELEMETRY_OFF)
    env["DBT_PROJECT_DIR"] = str(project)
    env["DBT_PROFILES_DIR"] = str(project)
    env["USEROPS_DUCKDB_PATH"] = str(Path(warehouse_path).resolve())
    # mf reads the manifest from <project>/target only.
    env.pop("DBT_TARGET_PATH", None)
    return env


def parse_project(project: Path, env: dict[str, str]) -> None:
    print(
        "userops mf: parsing the dbt project (the semantic manifest is out of date)",
        file=sys.stderr,
    )
    result = subprocess.run(
        [dbt_executable(), "parse", "--quiet"],
        cwd=project,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"userops mf: dbt parse failed (exit code {result.returncode})")


def reads_warehouse(argv: Sequence[str]) -> bool:
    """Whether `mf <argv>` runs SQL (and would create an empty DuckDB file where none is)."""
    if "--help" in argv:
        return False
    command = list(argv[:2])
    if command[:1] in (["query"], ["health-checks"]):
        return True
    if command == ["list", "dimension-values"]:
        return True
    return command[:1] == ["validate-configs"] and "--skip-dw" not in argv


def _no_update_check(self: object, package_name: str, package_version: str) -> None:
    return None


def run_mf(argv: Sequence[str], warehouse_path: Path) -> int:
    """Run `mf <argv>` against the warehouse; returns mf's exit code."""
    project = project_dir()
    if reads_warehouse(argv) and not Path(warehouse_path).is_file():
        raise SystemExit(
            f"userops mf: no warehouse at {warehouse_path}: build it first (make demo or "
            "userops build), or pass --warehouse / set USEROPS_DUCKDB_PATH"
        )
    env = mf_environment(project, warehouse_path)
    if manifest_is_stale(project):
        parse_project(project, env)
    os.environ.update(env)
    os.environ.pop("DBT_TARGET_PATH", None)

    import update_checker

    # mf asks pypi.org for a newer dbt-metricflow on every run (update_checker, cached for an
    # hour); no setting turns that off, and this project sends nothing anywhere.
    update_checker.UpdateChecker.check = _no_update_check  # type: ignore[method-assign]

    from dbt_metricflow.cli.main import cli

    previous_dir = Path.cwd()
    os.chdir(project)
    try:
        cli.main(args=list(argv), prog_name="userops mf", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        os.chdir(previous_dir)
    return 0
