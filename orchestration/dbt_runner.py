"""dbt inside the run's process: dbt's programmatic runner with the project parsed once.

dagster-dbt's DbtCliResource starts a dbt process per step. Each one imports dbt, loads the
partial parse, re-parses what reads the day window, and dagster-dbt opens a second adapter in
the Dagster process to describe it: a fixed cost of several seconds per step, times five steps
and the freshness check per run (docs/orchestration.md measured a Dagster day run at 2.77x the
plain dbt run). Here every step of a run calls `dbtRunner(manifest=...)` in the run's process
with a manifest parsed once per process (from the code location's partial parse), so a step
costs what its nodes cost.

dbt's structured events (the JSON lines dbt prints with `--log-format json`) come through a
callback and become Dagster events with dagster-dbt's own conversion (DbtCoreCliEventMessage),
so materializations, asset checks and their metadata are what dagster-dbt would report.

The window still comes in environment variables, and dbt renders some of what reads it when
it parses (the incremental models' delete pre-hooks are config, rendered into the manifest): so
the manifest is cached per environment, window included. A run parses once per environment
(its steps, and the freshness check, share the run's window), starting from a copy of the code
location's partial parse, so a windowed parse re-reads only the files that read the window;
`orchestration.materialize` parses the code location with the run's environment first, so its
run parses nothing. Steps run one
at a time (the in-process executor), which dbt's process-wide state (flags, adapters,
invocation context) needs.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from userops.paths import PROJECT_DIR

# Environment variables a parse reads (paths in the profile and the landing source, the day
# window in the pre-hooks): a manifest parsed under other values describes another build.
PARSE_ENV_PREFIXES = ("USEROPS_", "DBT_")
# Read per command, never by a parse.
STEP_ONLY_ENV = {"DBT_INDIRECT_SELECTION"}
# dbt events a step needs: node results (dagster-dbt's conversion), node completion.
FORWARDED_EVENTS = {
    "LogModelResult",
    "LogSeedResult",
    "LogSnapshotResult",
    "LogTestResult",
    "NodeFinished",
}
# Manifests kept per process: a run needs two (without and with its window).
MAX_MANIFESTS = 4

_LOCK = threading.Lock()
_MANIFESTS: dict[tuple[Any, ...], Any] = {}


class DbtRunError(RuntimeError):
    """dbt could not run at all (bad arguments, no profile, a parse error)."""


def project_args() -> list[str]:
    return ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]


def parse_key(manifest_json: Path, environ: Mapping[str, str]) -> tuple[Any, ...]:
    """What a parsed manifest depends on: the code location's manifest (a new `dbt parse` writes
    a new one) and the environment a parse reads."""
    stat = manifest_json.stat() if manifest_json.exists() else None
    env = tuple(
        sorted(
            (name, value)
            for name, value in environ.items()
            if name.startswith(PARSE_ENV_PREFIXES) and name not in STEP_ONLY_ENV
        )
    )
    return (str(manifest_json), stat.st_mtime_ns if stat else None, env)


def parse_folder(key: tuple[Any, ...]) -> str:
    return f"parse-{hashlib.sha256(repr(key).encode()).hexdigest()[:12]}"


def parsed_manifest(manifest_json: Path, target_root: Path) -> Any:
    """The project's dbt Manifest for this process's environment (window included), parsed once
    per process and environment and reused by every step with that environment. Each parse
    starts from a copy of the code location's partial parse (next to manifest_json), so the
    code location's own file is never rewritten with a run's window."""
    from dbt.cli.main import dbtRunner

    key = parse_key(manifest_json, os.environ)
    with _LOCK:
        if key not in _MANIFESTS:
            # One folder per environment (its dbt.log says what the parse re-read).
            target_path = target_root / parse_folder(key)
            target_path.mkdir(parents=True, exist_ok=True)
            saved = manifest_json.parent / "partial_parse.msgpack"
            if saved.exists():
                shutil.copyfile(saved, target_path / "partial_parse.msgpack")
            args = ["parse", *project_args(), "--target-path", str(target_path)]
            args += ["--log-path", str(target_path)]
            result = dbtRunner().invoke(args)
            if not result.success or result.result is None:
                raise DbtRunError(f"dbt parse failed: {result.exception}")
            if len(_MANIFESTS) >= MAX_MANIFESTS:
                _MANIFESTS.clear()
            _MANIFESTS[key] = result.result
        return _MANIFESTS[key]


def parse_code_location(manifest_json: Path) -> None:
    """`dbt parse` into the code location's target folder (manifest.json and its partial
    parse), in this process and with its environment, keeping the parsed manifest for the steps
    that run with the same environment: a run started right after (`make demo`) parses nothing
    more. The other way, a `dbt parse` process (userops.manifest) and then the run's own parse,
    cost the demo ~5 s more."""
    from dbt.cli.main import dbtRunner

    target = manifest_json.parent
    target.mkdir(parents=True, exist_ok=True)
    args = ["parse", "--quiet", *project_args(), "--target-path", str(target)]
    args += ["--log-path", str(target)]
    result = dbtRunner().invoke(args)
    if not result.success or result.result is None:
        raise DbtRunError(f"dbt parse failed: {result.exception}")
    with _LOCK:
        if len(_MANIFESTS) >= MAX_MANIFESTS:
            _MANIFESTS.clear()
        _MANIFESTS[parse_key(manifest_json, os.environ)] = result.result


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the process (its `_ENV`), so the
    step's Python code (quality results, ML assets) can open the file with its own settings.
    A dbt process closed it by exiting; in process, dbt-duckdb only drops its reference
    (close_all_connections), which leaves the database open until garbage collection and
    fails the next connect with "different configuration than existing connections"."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter (Spark): nothing held by this process's DuckDB
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if environment is not None:
        environment.close()


@dataclass
class Invocation:
    """One dbt command run in process: its raw structured events, as they arrive."""

    args: list[str]
    target_path: Path
    success: bool = False
    exception: BaseException | None = None
    error_messages: list[str] = field(default_factory=list)

    def failure_description(self) -> str:
        text = f"dbt {' '.join(self.args)} failed"
        if self.exception is not None:
            text += f": {self.exception}"
        if self.error_messages:
            text += "\n" + "\n".join(self.error_messages[:20])
        return text


def invoke(
    args: Sequence[str], target_path: Path, manifest_json: Path
) -> tuple[Invocation, Iterator[dict[str, Any]]]:
    """Run `dbt <args>` in this process against the cached manifest; returns the invocation and
    an iterator of dbt's structured events (dicts, as in dbt's JSON log) while it runs. The
    invocation's outcome is set once the iterator is exhausted."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    target_path.mkdir(parents=True, exist_ok=True)
    full_args = [*args, *project_args(), "--target-path", str(target_path)]
    full_args += ["--log-path", str(target_path)]
    invocation = Invocation(args=list(full_args), target_path=target_path)
    manifest = parsed_manifest(manifest_json, manifest_json.parent / "runs")
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def callback(message: Any) -> None:
        # dbt fires tens of thousands of events per build (every statement, at debug level);
        # converting each to a dict would cost the build CPU under the same GIL.
        info = message.info
        if info.name in FORWARDED_EVENTS or info.level == "error":
            events.put(msg_to_dict(message))

    def run() -> None:
        try:
            result = dbtRunner(manifest=manifest, callbacks=[callback]).invoke(list(full_args))
            invocation.success = result.success
            invocation.exception = result.exception
        except BaseException as error:  # reported by the step, never lost in the thread
            invocation.exception = error
        finally:
            release_warehouse()
            events.put(None)

    def stream() -> Iterator[dict[str, Any]]:
        thread = threading.Thread(target=run, name="dbt", daemon=True)
        thread.start()
        while (event := events.get()) is not None:
            if event.get("info", {}).get("level") == "error":
                invocation.error_messages.append(event["info"].get("msg", ""))
            yield event
        thread.join()

    return invocation, stream()
