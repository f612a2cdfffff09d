"""Daily audience delivery (人群投放): send each audience's selected members of a day to its
destinations, exactly once per batch. docs/operations_loop.md.

What is sent: marts.delivery_plans rows of the day with is_selected (the holdout, opted-out
users and users past the frequency cap are already excluded there; a selected holdout row would
stop the run before anything is sent).

How a run stays exactly-once (the outbox pattern):
1. plan: for every (audience, channel, destination) of the day, the selected users that are in
   no batch of ops.delivery_recipients yet are cut into new batches (sorted by user_id,
   `batch_size` each). Batch and recipients are written as `pending` before anything is sent.
2. send: every batch of the day that is `pending` or `failed` is sent with its recorded
   recipients and its idempotency key (userops.delivery_ids.idempotency_key). Success marks it
   `sent`; the last failed attempt marks it `failed` with the error.
Re-running a day therefore sends nothing that is `sent`. A crash after the receiver accepted a
batch but before `sent` was written leaves it `pending`: the next run sends it again with the
same key, and the receiver drops the copy (webhook receivers must dedupe on the key; files are
overwritten with identical content under the same name).

Each step writes the warehouse through a short connection: DuckDB allows one writing process,
so this runs after dbt has exited (the Dagster asset depends on delivery_plans).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from userops.alerts import UNUSABLE_URL_ERRORS, redacted_url, scrub_secrets, webhook_request
from userops.delivery_ids import idempotency_key
from userops.paths import PROJECT_DIR, default_warehouse_path
from userops.quality.results import OPS_SCHEMA, utc_now

DEFAULT_DESTINATIONS = PROJECT_DIR / "destinations.yml"
FILE_FORMATS = ("csv", "parquet")
FILE_COLUMNS = ("message_id", "user_id", "audience_id", "channel", "delivery_date")

DELIVERIES_DDL = f"""
create table if not exists {OPS_SCHEMA}.deliveries (
    batch_id varchar primary key,
    delivery_date date not null,
    audience_id varchar not null,
    channel varchar not null,
    destination_id varchar not null,
    destination_kind varchar not null,
    batch_number integer not null,
    recipients integer not null,
    status varchar not null,
    attempts integer not null,
    planned_at timestamp not null,
    sent_at timestamp,
    target varchar,
    last_error varchar,
    run_id varchar
)
"""
RECIPIENTS_DDL = f"""
create table if not exists {OPS_SCHEMA}.delivery_recipients (
    batch_id varchar not null,
    delivery_date date not null,
    audience_id varchar not null,
    channel varchar not null,
    destination_id varchar not null,
    user_id varchar not null,
    message_id varchar not null,
    primary key (destination_id, message_id)
)
"""


class DeliveryError(RuntimeError):
    """A delivery that could not be completed; the message says which batches and why."""


class ConfigError(ValueError):
    """A destinations file that cannot be used."""


@dataclass(frozen=True)
class Destination:
    destination_id: str
    kind: str
    audiences: tuple[str, ...] | None  # None = all
    channels: tuple[str, ...] | None
    path: Path | None = None
    formats: tuple[str, ...] = FILE_FORMATS
    url: str | None = None
    url_env: str | None = None
    batch_size: int = 0  # 0 = one batch per audience, channel and day
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0

    def serves(self, audience_id: str, channel: str) -> bool:
        return (self.audiences is None or audience_id in self.audiences) and (
            self.channels is None or channel in self.channels
        )

    @property
    def target(self) -> str:
        """Where batches go, as ops.deliveries records it: a webhook by scheme and host only
        (its URL carries the provider's token, which no table or log may show)."""
        return str(self.path) if self.kind == "file" else redacted_url(str(self.url))


def default_outbox_dir(warehouse_path: Path | None = None) -> Path:
    """$USEROPS_OUTBOX_DIR, else `outbox` in the warehouse's folder (data/warehouse/outbox)."""
    if os.environ.get("USEROPS_OUTBOX_DIR"):
        return Path(os.environ["USEROPS_OUTBOX_DIR"]).resolve()
    warehouse = Path(warehouse_path or default_warehouse_path()).resolve()
    return warehouse.parent / "outbox"


def _names(value: Any, field_name: str, destination_id: str) -> tuple[str, ...] | None:
    if value in (None, "all", "*"):
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"destination {destination_id}: {field_name} must be 'all' or a list")


def load_destinations(
    path: Path | None = None, outbox_dir: Path | None = None
) -> tuple[list[Destination], list[str]]:
    """Destinations in use, and a note for each configured one that is not (webhook URL unset)."""
    path = Path(path or os.environ.get("USEROPS_DESTINATIONS") or DEFAULT_DESTINATIONS)
    if not path.exists():
        raise ConfigError(f"no destinations file {path}")
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = document.get("destinations")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty list under `destinations`")
    outbox = Path(outbox_dir or default_outbox_dir())
    destinations, notes, seen = [], [], set()
    for entry in entries:
        destination_id = str(entry.get("id") or "")
        if not destination_id or destination_id in seen:
            raise ConfigError(f"{path}: every destination needs a unique id ({destination_id!r})")
        seen.add(destination_id)
        kind = entry.get("kind")
        common = {
            "destination_id": destination_id,
            "kind": kind,
            "audiences": _names(entry.get("audiences"), "audiences", destination_id),
            "channels": _names(entry.get("channels"), "channels", destination_id),
            "batch_size": int(entry.get("batch_size", 0)),
            "max_attempts": int(entry.get("max_attempts", 5)),
            "backoff_seconds": float(entry.get("backoff_seconds", 1.0)),
            "timeout_seconds": float(entry.get("timeout_seconds", 10.0)),
        }
        if common["batch_size"] < 0 or common["max_attempts"] < 1:
            raise ConfigError(f"destination {destination_id}: batch_size >= 0, max_attempts >= 1")
        if kind == "file":
            formats = tuple(entry.get("formats") or FILE_FORMATS)
            unknown = set(formats) - set(FILE_FORMATS)
            if unknown:
                raise ConfigError(f"destination {destination_id}: unknown formats {unknown}")
            target = Path(str(entry.get("path") or "."))
            full = target if target.is_absolute() else outbox / target
            destinations.append(Destination(**common, path=full.resolve(), formats=formats))
        elif kind == "webhook":
            url_env = entry.get("url_env")
            url = entry.get("url") or (os.environ.get(url_env) if url_env else None)
            if not url:
                notes.append(f"{destination_id}: not used, ${url_env} is not set")
                continue
            if not str(url).startswith(("http://", "https://")):
                # Named by where it came from, never printed: the value is a secret.
                source = f"${url_env}" if not entry.get("url") and url_env else "its url"
                raise ConfigError(
                    f"destination {destination_id}: {source} is not an http(s) URL"
                    " (it does not start with http:// or https://)"
                )
            destinations.append(Destination(**common, url=str(url), url_env=url_env))
        else:
            raise ConfigError(f"destination {destination_id}: kind must be file or webhook")
    return destinations, notes


# ----------------------------------------------------------------------------- sending
@dataclass(frozen=True)
class Batch:
    batch_id: str
    delivery_date: date
    audience_id: str
    channel: str
    destination_id: str
    batch_number: int
    recipients: tuple[tuple[str, str], ...]  # (user_id, message_id)

    def payload(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.batch_id,
            "audience_id": self.audience_id,
            "delivery_date": self.delivery_date.isoformat(),
            "channel": self.channel,
            "batch_number": self.batch_number,
            "messages": [
                {"message_id": message_id, "user_id": user_id}
                for user_id, message_id in self.recipients
            ],
        }


@dataclass(frozen=True)
class SendResult:
    ok: bool
    attempts: int
    error: str | None = None
    target: str | None = None


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder and rename it into place (atomic on one
    file system): a reader sees the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def batch_table(batch: Batch) -> pa.Table:
    return pa.table(
        {
            "message_id": [m for _, m in batch.recipients],
            "user_id": [u for u, _ in batch.recipients],
            "audience_id": [batch.audience_id] * len(batch.recipients),
            "channel": [batch.channel] * len(batch.recipients),
            "delivery_date": pa.array([batch.delivery_date] * len(batch.recipients), pa.date32()),
        }
    )


def send_to_files(destination: Destination, batch: Batch) -> SendResult:
    assert destination.path is not None
    folder = destination.path / batch.audience_id / batch.channel / batch.delivery_date.isoformat()
    table = batch_table(batch)
    written = []
    try:
        for file_format in destination.formats:
            path = folder / f"batch-{batch.batch_number:05d}.{file_format}"
            if file_format == "csv":
                write_atomically(path, lambda tmp: pacsv.write_csv(table, tmp))
            else:
                write_atomically(path, lambda tmp: pq.write_table(table, tmp))
            written.append(str(path))
    except OSError as error:
        return SendResult(False, 1, f"cannot write {folder}: {error}", str(folder))
    return SendResult(True, 1, None, ", ".join(written))


def check_answer(status: int, body: bytes, expected: int) -> str | None:
    """None when the receiver's answer confirms the batch, else what is wrong with it."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"malformed answer (HTTP {status}, not JSON: {body[:80]!r})"
    if not isinstance(answer, dict) or answer.get("accepted") != expected:
        return f"malformed answer (HTTP {status}: expected accepted={expected}, got {answer!r})"[
            :300
        ]
    return None


def _is_permanent(status: int | None) -> bool:
    """4xx other than timeout / conflict / too-early / rate limit: resending cannot help."""
    return status is not None and 400 <= status < 500 and status not in (408, 409, 425, 429)


def send_to_webhook(
    destination: Destination, batch: Batch, sleep: Callable[[float], None] = time.sleep
) -> SendResult:
    assert destination.url is not None
    body = json.dumps(batch.payload()).encode("utf-8")
    error = "not sent"
    for attempt in range(1, destination.max_attempts + 1):
        status: int | None = None
        try:
            request = webhook_request(
                destination.url,
                body,
                {"Content-Type": "application/json", "Idempotency-Key": batch.batch_id},
            )
            with urllib.request.urlopen(request, timeout=destination.timeout_seconds) as answer:
                status = answer.status
                problem = check_answer(status, answer.read(), len(batch.recipients))
        except UNUSABLE_URL_ERRORS as bad_url:
            # Its message quotes the URL (userops.alerts.UNUSABLE_URL_ERRORS); resending
            # cannot help.
            source = f"${destination.url_env}" if destination.url_env else "its url"
            error = (
                f"{type(bad_url).__name__}: {source} is not a usable URL"
                " (the details are withheld, they quote the URL)"
            )
            return SendResult(False, attempt, error, destination.target)
        except urllib.error.HTTPError as http_error:
            status = http_error.code
            problem = f"HTTP {http_error.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as io_error:
            reason = getattr(io_error, "reason", io_error)
            problem = f"{type(reason).__name__}: {reason}"
        if problem is None:
            return SendResult(True, attempt, None, destination.target)
        # The receiver's answer is quoted in the error: never with the URL's secret in it.
        error = scrub_secrets(problem, destination.url)
        if _is_permanent(status) or attempt == destination.max_attempts:
            return SendResult(False, attempt, error, destination.target)
        sleep(destination.backoff_seconds * 2 ** (attempt - 1))
    return SendResult(False, destination.max_attempts, error, destination.target)


# ----------------------------------------------------------------------------- the run
@dataclass
class DeliveryReport:
    delivery_date: date | None
    planned_users: int = 0
    new_batches: int = 0
    sent_batches: int = 0
    sent_messages: int = 0
    already_sent_batches: int = 0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        day = self.delivery_date.isoformat() if self.delivery_date else "-"
        lines = [
            f"userops deliver {day}: {self.planned_users} selected users; {self.new_batches} new "
            f"batches; sent {self.sent_batches} batches ({self.sent_messages} messages); "
            f"{self.already_sent_batches} batches were already sent",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  FAILED: {failure}" for failure in self.failed]
        return lines


def _ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(f"create schema if not exists {OPS_SCHEMA}").fetchall()
    connection.execute(DELIVERIES_DDL).fetchall()
    connection.execute(RECIPIENTS_DDL).fetchall()


def read_plan(
    connection: duckdb.DuckDBPyConnection, delivery_date: date | None
) -> tuple[date | None, list[tuple[str, str, str, str]]]:
    """(day, selected rows (audience_id, channel, user_id, message_id)) of marts.delivery_plans;
    the latest day when none is given."""
    try:
        if delivery_date is None:
            delivery_date = connection.execute(
                "select max(delivery_date) from marts.delivery_plans"
            ).fetchone()[0]
        holdout = connection.execute(
            "select count(*) from marts.delivery_plans where delivery_date = ? and is_selected"
            " and assignment_group <> 'treatment'",
            [delivery_date],
        ).fetchone()[0]
        rows = connection.execute(
            "select audience_id, channel, user_id, message_id from marts.delivery_plans"
            " where delivery_date = ? and is_selected and assignment_group = 'treatment'"
            " order by audience_id, channel, user_id",
            [delivery_date],
        ).fetchall()
    except duckdb.CatalogException as error:
        raise DeliveryError(
            f"marts.delivery_plans is not in the warehouse ({error}); build it first"
            " (userops build, or the Dagster job)"
        ) from error
    if holdout:
        # The mart's own test forbids this; sending nothing is the only safe answer.
        raise DeliveryError(
            f"marts.delivery_plans selects {holdout} holdout rows on {delivery_date}: nothing sent"
        )
    return delivery_date, rows


def _plan_batches(
    connection: duckdb.DuckDBPyConnection,
    delivery_date: date,
    rows: Sequence[tuple[str, str, str, str]],
    destinations: Sequence[Destination],
    run_id: str,
) -> int:
    """Write-ahead: cut the not-yet-batched users into pending batches. Returns new batches."""
    by_group: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for audience_id, channel, user_id, message_id in rows:
        by_group.setdefault((audience_id, channel), []).append((user_id, message_id))
    planned_at = utc_now()
    new = 0
    for destination in destinations:
        for (audience_id, channel), recipients in sorted(by_group.items()):
            if not destination.serves(audience_id, channel):
                continue
            batched = {
                user_id
                for (user_id,) in connection.execute(
                    f"select user_id from {OPS_SCHEMA}.delivery_recipients where delivery_date = ?"
                    " and audience_id = ? and channel = ? and destination_id = ?",
                    [delivery_date, audience_id, channel, destination.destination_id],
                ).fetchall()
            }
            todo = [r for r in recipients if r[0] not in batched]
            if not todo:
                continue
            last = connection.execute(
                f"select coalesce(max(batch_number), 0) from {OPS_SCHEMA}.deliveries"
                " where delivery_date = ? and audience_id = ? and channel = ?"
                " and destination_id = ?",
                [delivery_date, audience_id, channel, destination.destination_id],
            ).fetchone()[0]
            size = destination.batch_size or len(todo)
            for offset in range(0, len(todo), size):
                number = last + 1 + offset // size
                chunk = todo[offset : offset + size]
                key = idempotency_key(
                    audience_id, delivery_date.isoformat(), channel,
                    destination.destination_id, number,
                )  # fmt: skip
                connection.execute("begin transaction").fetchall()
                connection.execute(
                    f"insert into {OPS_SCHEMA}.deliveries values"
                    " (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, null, ?, null, ?)",
                    [key, delivery_date, audience_id, channel, destination.destination_id,
                     destination.kind, number, len(chunk), planned_at, destination.target,
                     run_id],
                ).fetchall()  # fmt: skip
                connection.executemany(
                    f"insert into {OPS_SCHEMA}.delivery_recipients values (?, ?, ?, ?, ?, ?, ?)",
                    [[key, delivery_date, audience_id, channel, destination.destination_id,
                      user_id, message_id] for user_id, message_id in chunk],
                ).fetchall()  # fmt: skip
                connection.execute("commit").fetchall()
                new += 1
    return new


def _open_batches(
    connection: duckdb.DuckDBPyConnection, delivery_date: date
) -> list[tuple[Batch, str]]:
    batches = connection.execute(
        f"select batch_id, audience_id, channel, destination_id, batch_number"
        f" from {OPS_SCHEMA}.deliveries where delivery_date = ? and status in ('pending', 'failed')"
        " order by destination_id, audience_id, channel, batch_number",
        [delivery_date],
    ).fetchall()
    result = []
    for batch_id, audience_id, channel, destination_id, number in batches:
        recipients = connection.execute(
            f"select user_id, message_id from {OPS_SCHEMA}.delivery_recipients"
            " where batch_id = ? order by user_id",
            [batch_id],
        ).fetchall()
        batch = Batch(
            batch_id, delivery_date, audience_id, channel, destination_id, number,
            tuple((u, m) for u, m in recipients),
        )  # fmt: skip
        result.append((batch, destination_id))
    return result


def mark_batch(warehouse_path: Path, batch: Batch, result: SendResult, run_id: str) -> None:
    """Record the outcome of one batch (its own short write connection)."""
    with duckdb.connect(str(warehouse_path)) as connection:
        connection.execute(
            f"update {OPS_SCHEMA}.deliveries set status = ?, attempts = attempts + ?,"
            " sent_at = ?, target = coalesce(?, target), last_error = ?, run_id = ?"
            " where batch_id = ?",
            [
                "sent" if result.ok else "failed",
                result.attempts,
                utc_now() if result.ok else None,
                result.target,
                result.error,
                run_id,
                batch.batch_id,
            ],
        ).fetchall()


def deliver(
    warehouse_path: Path | None = None,
    *,
    delivery_date: date | None = None,
    destinations: Sequence[Destination] | None = None,
    notes: Sequence[str] = (),
    run_id: str = "cli",
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Plan and send one day; raises DeliveryError (after sending everything it can) when a batch
    failed for good. Re-running a day sends only batches that are not `sent` yet."""
    warehouse_path = Path(warehouse_path or default_warehouse_path())
    if destinations is None:
        destinations, loaded_notes = load_destinations(
            outbox_dir=default_outbox_dir(warehouse_path)
        )
        notes = [*notes, *loaded_notes]
    by_id = {destination.destination_id: destination for destination in destinations}
    with duckdb.connect(str(warehouse_path)) as connection:
        day, rows = read_plan(connection, delivery_date)
        report = DeliveryReport(day, planned_users=len({r[2] for r in rows}), notes=list(notes))
        if day is None:
            report.notes.append("marts.delivery_plans is empty: nothing to deliver")
            return report
        _ensure_tables(connection)
        report.new_batches = _plan_batches(connection, day, rows, destinations, run_id)
        open_batches = _open_batches(connection, day)
        report.already_sent_batches = connection.execute(
            f"select count(*) from {OPS_SCHEMA}.deliveries where delivery_date = ?"
            " and status = 'sent'",
            [day],
        ).fetchone()[0]
    for batch, destination_id in open_batches:
        destination = by_id.get(destination_id)
        if destination is None:
            report.failed.append(
                f"batch {batch.batch_id}: destination {destination_id} is no longer configured"
            )
            continue
        if destination.kind == "file":
            result = send_to_files(destination, batch)
        else:
            result = send_to_webhook(destination, batch, sleep=sleep)
        mark_batch(warehouse_path, batch, result, run_id)
        if result.ok:
            report.sent_batches += 1
            report.sent_messages += len(batch.recipients)
        else:
            report.failed.append(
                f"{destination_id} batch {batch.batch_number} of {batch.audience_id}/"
                f"{batch.channel} on {day} ({len(batch.recipients)} messages) failed after "
                f"{result.attempts} attempt(s): {result.error}"
            )
    if report.failed:
        raise DeliveryError("\n".join(report.lines()))
    return report
