"""Metric alerts out of the warehouse: what the Dagster checks report and what gets sent.

dbt computes the alerts (marts.alerts, marts.alert_explanations; docs/alerts.md). This module
reads them and delivers the new ones: each alert is written once to ops.alerts (its id is the
hash of metric, segment and day, so a re-run never repeats one) and to the configured sinks,
a JSON-lines file (USEROPS_ALERT_FILE) and/or a webhook (USEROPS_ALERT_WEBHOOK_URL, one POST
per batch, retried with backoff, the batch's alert ids as its idempotency key).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from userops.quality.results import OPS_SCHEMA, utc_now

ALERTS_DDL = f"""
create table if not exists {OPS_SCHEMA}.alerts (
    alert_id varchar not null,
    metric_date date not null,
    metric_code varchar not null,
    dimension varchar not null,
    dimension_value varchar not null,
    severity varchar not null,
    robust_score double,
    message varchar not null,
    sinks varchar not null,
    notified_at timestamp not null
)
"""
ALERT_COLUMNS = (
    "alert_id",
    "metric_date",
    "metric_code",
    "metric_name_en",
    "metric_name_zh",
    "dimension",
    "dimension_value",
    "severity",
    "direction",
    "metric_value",
    "baseline_value",
    "robust_score",
    "comparison_date",
    "comparison_value",
    "week_over_week_change",
    "overall_change",
    "explanation_kind",
    "top_dimension",
    "top_dimension_value",
    "top_contribution",
    "top_part_of_change",
    "segment_rank_in_dimension",
    "is_latest_day",
)


@dataclass(frozen=True)
class Alert:
    """One row of marts.alerts with its explanation parts."""

    values: Mapping[str, Any]
    parts: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def alert_id(self) -> str:
        return str(self.values["alert_id"])

    def message(self) -> str:
        return format_alert(self.values, self.parts)

    def payload(self) -> dict[str, Any]:
        return {
            **{key: _jsonable(value) for key, value in self.values.items()},
            "message": self.message(),
            "explanation": [
                {key: _jsonable(value) for key, value in part.items()} for part in self.parts
            ],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _number(value: Any, share: bool = False) -> str:
    if value is None:
        return "n/a"
    if share:
        return f"{value:.0%}"
    magnitude = abs(float(value))
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def _signed(value: Any) -> str:
    text = _number(value)
    return text if text.startswith("-") or text == "n/a" else f"+{text}"


def format_alert(alert: Mapping[str, Any], parts: Sequence[Mapping[str, Any]] = ()) -> str:
    """One line an operator can act on: what moved, how far from normal, and why."""
    segment = (
        "overall"
        if alert["dimension"] == "overall"
        else f"{alert['dimension']}={alert['dimension_value']}"
    )
    text = (
        f"[{alert['severity']}] {alert['metric_name_en']} ({alert['metric_code']}, {segment}) "
        f"on {_jsonable(alert['metric_date'])}: {_number(alert['metric_value'])} against a "
        f"baseline of {_number(alert['baseline_value'])} (score {alert['robust_score']:+.1f})"
    )
    kind = alert.get("explanation_kind")
    own = [part for part in parts if part.get("explanation_kind") == kind]
    if kind in ("dau_identity", "metric_tree") and own:
        terms = ", ".join(f"{part['component']} {_signed(part['contribution'])}" for part in own)
        text += f"; week over week {_signed(alert['week_over_week_change'])} = {terms}"
    if alert.get("top_dimension"):
        text += (
            f"; week over week the overall moved {_signed(alert['overall_change'])}, "
            f"{_number(alert['top_part_of_change'], share=True)} of it from "
            f"{alert['top_dimension']}={alert['top_dimension_value']} "
            f"({_signed(alert['top_contribution'])})"
        )
    return text


def read_alerts(
    warehouse_path: Path | str, *, since: date | None = None, latest_only: bool = False
) -> list[Alert]:
    """Alerts of the warehouse, newest first, with their explanation parts; [] when the marts
    are not built yet."""
    conditions, parameters = ["true"], []
    if since is not None:
        conditions.append("metric_date >= ?")
        parameters.append(since)
    if latest_only:
        conditions.append("is_latest_day")
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        present = {
            name
            for (name,) in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        if not {"alerts", "alert_explanations"} <= present:
            return []
        cursor = connection.execute(
            f"select {', '.join(ALERT_COLUMNS)} from marts.alerts"
            f" where {' and '.join(conditions)}"
            " order by metric_date desc, abs(robust_score) desc, alert_id",
            parameters,
        )
        rows = [dict(zip(ALERT_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
        if not rows:
            return []
        cursor = connection.execute(
            "select alert_id, explanation_kind, dimension, component, contribution,"
            " part_of_change, part_rank from marts.alert_explanations"
            " where alert_id in (select unnest(?))"
            " order by alert_id, explanation_kind, dimension, part_rank",
            [[row["alert_id"] for row in rows]],
        )
        names = [column[0] for column in cursor.description]
        parts: dict[str, list[dict[str, Any]]] = {}
        for part in cursor.fetchall():
            record = dict(zip(names, part, strict=True))
            parts.setdefault(record["alert_id"], []).append(record)
    return [Alert(row, tuple(parts.get(row["alert_id"], ()))) for row in rows]


def notified_alert_ids(warehouse_path: Path | str) -> set[str]:
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        exists = connection.execute(
            "select count(*) from information_schema.tables"
            " where table_schema = ? and table_name = 'alerts'",
            [OPS_SCHEMA],
        ).fetchone()[0]
        if not exists:
            return set()
        rows = connection.execute(f"select alert_id from {OPS_SCHEMA}.alerts").fetchall()
        return {row[0] for row in rows}


# ------------------------------------------------------------------ sinks
class SinkError(RuntimeError):
    """A sink did not accept a batch after its last retry."""


def file_sink(path: Path) -> Callable[[Sequence[Alert]], None]:
    """Append one JSON line per alert (the file is the operator's inbox)."""

    def send(alerts: Sequence[Alert]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for alert in alerts:
                handle.write(json.dumps(alert.payload(), ensure_ascii=False, sort_keys=True))
                handle.write("\n")

    return send


def batch_key(alerts: Sequence[Alert]) -> str:
    """Idempotency key of a batch: the same alerts give the same key on every retry."""
    return hashlib.sha256("|".join(sorted(a.alert_id for a in alerts)).encode()).hexdigest()


def redacted_url(url: str) -> str:
    """A webhook URL as logs and errors show it: scheme and host only. Webhook URLs carry their
    secret in the path or query (Slack, Feishu, DingTalk tokens) and sometimes a password;
    none of it may reach Dagster's run logs or ops tables."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unusable host or port ("Invalid IPv6 URL", a port out of range)
        return "(an unusable URL)"
    hidden = "/…" if (parts.path not in ("", "/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def secret_parts(url: str) -> list[str]:
    """The pieces of a webhook URL that may be its secret (user, password, path, query, each
    path segment and query value, as written and decoded), longest first."""
    try:
        parts = urllib.parse.urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return [url]
    pieces = [user, password, parts.path, parts.query, *parts.path.split("/")]
    pieces += [value for _, value in urllib.parse.parse_qsl(parts.query)]
    pieces += [urllib.parse.unquote(piece) for piece in pieces if piece]
    return sorted({piece for piece in pieces if piece and len(piece) >= 3}, key=len, reverse=True)


def scrub_secrets(text: str, url: str) -> str:
    """`text` (e.g. a receiver's answer quoted in an error) with any piece of the URL's secret
    replaced by ***: a provider's error reply may repeat the token it was sent."""
    for piece in secret_parts(url):
        text = text.replace(piece, "***")
    return text


# What urllib and http.client raise for a URL they cannot use, before anything is sent. Their
# messages quote the URL ("nonnumeric port: 'password@host'", "URL can't contain control
# characters. '/path/token …'"): a sender reports the type only, never the message or a cause.
UNUSABLE_URL_ERRORS = (http.client.InvalidURL, ValueError)


def webhook_request(url: str, body: bytes, headers: Mapping[str, str]) -> urllib.request.Request:
    """The POST of `body` to a webhook URL. A user and password in the URL are sent as Basic
    authorization (urllib alone would take them for part of the host name, and its error
    message would quote the password)."""
    parts = urllib.parse.urlsplit(url)
    headers = dict(headers)
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        credentials = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    return urllib.request.Request(url, data=body, method="POST", headers=headers)


def webhook_sink(
    url: str,
    *,
    attempts: int = 4,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[[Sequence[Alert]], None]:
    """POST {"alerts": [...]} with an Idempotency-Key header; retries 5xx, timeouts and
    refused connections with exponential backoff, fails on a 4xx or after the last attempt."""

    def send(alerts: Sequence[Alert]) -> None:
        body = json.dumps(
            {"idempotency_key": batch_key(alerts), "alerts": [a.payload() for a in alerts]},
            ensure_ascii=False,
        ).encode()
        last_error = "no attempt made"
        for attempt in range(1, attempts + 1):
            try:
                request = webhook_request(
                    url,
                    body,
                    {"Content-Type": "application/json", "Idempotency-Key": batch_key(alerts)},
                )
                with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                    if 200 <= response.status < 300:
                        return
                    last_error = f"HTTP {response.status}"
            except UNUSABLE_URL_ERRORS as error:
                raise SinkError(
                    f"alert webhook {redacted_url(url)} is not a usable URL"
                    f" ({type(error).__name__}; the details are withheld, they quote the URL)"
                ) from None
            except urllib.error.HTTPError as error:
                if 400 <= error.code < 500:
                    raise SinkError(
                        f"alert webhook {redacted_url(url)} refused the batch: HTTP {error.code}"
                    ) from None
                last_error = f"HTTP {error.code}"
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                last_error = str(getattr(error, "reason", error))
            if attempt < attempts:
                sleep(backoff_seconds * 2 ** (attempt - 1))
        raise SinkError(
            f"alert webhook {redacted_url(url)} failed after {attempts} attempts: "
            f"{scrub_secrets(last_error, url)}"
        )

    return send


def configured_sinks(
    environ: Mapping[str, str] | None = None,
) -> dict[str, Callable[[Sequence[Alert]], None]]:
    """Sinks named by USEROPS_ALERT_FILE and USEROPS_ALERT_WEBHOOK_URL (none: ops.alerts only)."""
    environ = os.environ if environ is None else environ
    sinks: dict[str, Callable[[Sequence[Alert]], None]] = {}
    if environ.get("USEROPS_ALERT_FILE"):
        sinks["file"] = file_sink(Path(environ["USEROPS_ALERT_FILE"]))
    if environ.get("USEROPS_ALERT_WEBHOOK_URL"):
        sinks["webhook"] = webhook_sink(environ["USEROPS_ALERT_WEBHOOK_URL"])
    return sinks


def notify_new_alerts(
    warehouse_path: Path | str,
    sinks: Mapping[str, Callable[[Sequence[Alert]], None]],
    *,
    since: date | None = None,
) -> list[Alert]:
    """Send the alerts not yet in ops.alerts (from `since` on) to every sink, then record them.
    A sink that fails raises before anything is recorded, so the next call sends them again
    (the webhook's idempotency key lets a receiver drop a repeat)."""
    sent = notified_alert_ids(warehouse_path)
    alerts = read_alerts(warehouse_path, since=since)
    new = [alert for alert in alerts if alert.alert_id not in sent]
    if not new:
        return []
    for send in sinks.values():
        send(new)
    notified_at = utc_now()
    rows = [
        [
            alert.alert_id,
            alert["metric_date"],
            alert["metric_code"],
            alert["dimension"],
            alert["dimension_value"],
            alert["severity"],
            alert["robust_score"],
            alert.message(),
            ",".join(sinks) or "ops.alerts",
            notified_at,
        ]
        for alert in new
    ]
    with duckdb.connect(str(warehouse_path)) as connection:
        connection.execute(f"create schema if not exists {OPS_SCHEMA}")
        connection.execute(ALERTS_DDL)
        connection.executemany(
            f"insert into {OPS_SCHEMA}.alerts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    return new
