"""Metric alerts end to end: a generated data set with a known incident (one channel's
conversion halves on the last day) builds into an alert on that day that names the channel,
the Dagster checks fail for that metric, and the notification step sends each new alert once,
through a webhook that fails some requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from userops.alerts import (
    SinkError,
    file_sink,
    notify_new_alerts,
    read_alerts,
    webhook_sink,
)
from userops.dbt import run_dbt
from userops.generate import Incident, generate

INCIDENT_DAY = date(2026, 6, 30)
INCIDENT_CHANNEL = "paid_search"


@dataclass(frozen=True)
class IncidentBuild:
    landing_dir: Path
    warehouse_path: Path


@pytest.fixture(scope="module")
def incident_build(tmp_path_factory: pytest.TempPathFactory) -> IncidentBuild:
    """40,000 users over 45 days: the first day with a full baseline is day 43 (7 days of
    level, 3 weeks of weekday factors, 14 days of residuals), and a channel of ~4,000 daily
    active users is large enough for its halved conversion to stand out of the noise
    (docs/alerts.md: what an alert can detect)."""
    root = tmp_path_factory.mktemp("incident")
    generate(
        root / "landing",
        users=40_000,
        days=45,
        end_date=INCIDENT_DAY,
        seed=3,
        bad_row_share=0.0,
        incident=Incident(INCIDENT_CHANNEL, INCIDENT_DAY, 0.5),
    )
    warehouse = root / "warehouse.duckdb"
    result = run_dbt(
        [
            "build",
            "--select",
            "+alert_explanations",
            "resource_type:seed",
            "--exclude",
            "resource_type:test",
        ],
        landing_dir=root / "landing",
        warehouse_path=warehouse,
        capture=True,
        target_path=root / "target",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return IncidentBuild(root / "landing", warehouse)


def query(warehouse: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, parameters or []).fetchall()


def test_incident_is_recorded_as_ground_truth(incident_build: IncidentBuild) -> None:
    truth = json.loads(
        (incident_build.landing_dir.parent / "ground_truth" / "incident.json").read_text()
    )
    assert truth == {
        "channel": INCIDENT_CHANNEL,
        "day": INCIDENT_DAY.isoformat(),
        "pay_factor": 0.5,
        "metric": "paying_rate",
        "dimension": "acquisition_channel",
    }


def test_the_incident_day_alerts_on_the_channel_and_ranks_it_first(
    incident_build: IncidentBuild,
) -> None:
    alerts = query(
        incident_build.warehouse_path,
        "select metric_code, severity, direction, robust_score, top_dimension,"
        " top_dimension_value, segment_rank_in_dimension, is_latest_day from marts.alerts"
        " where metric_date = ? and dimension = 'acquisition_channel' and dimension_value = ?",
        [INCIDENT_DAY, INCIDENT_CHANNEL],
    )
    by_metric = {row[0]: row for row in alerts}
    assert "paying_rate" in by_metric, alerts
    _, severity, direction, score, top_dimension, top_value, rank, latest = by_metric["paying_rate"]
    assert direction == "down" and score <= -4 and severity in ("warn", "error")
    assert (top_dimension, top_value, rank, latest) == (
        "acquisition_channel",
        INCIDENT_CHANNEL,
        1,
        True,
    )
    # The channel's paying rate halved against the same weekday a week before, and across
    # channels it moved the overall paying rate most, by mix and rate.
    (rank, current, comparison) = query(
        incident_build.warehouse_path,
        "select contribution_rank, current_value, comparison_value"
        " from marts.metric_change_attributions where metric_code = 'paying_rate'"
        " and metric_date = ? and dimension = 'acquisition_channel' and dimension_value = ?",
        [INCIDENT_DAY, INCIDENT_CHANNEL],
    )[0]
    assert rank == 1
    assert 0.3 < current / comparison < 0.7


def test_no_other_channel_alerts_on_its_paying_rate_that_day(incident_build: IncidentBuild) -> None:
    others = query(
        incident_build.warehouse_path,
        "select dimension_value from marts.alerts where metric_date = ? and metric_code ="
        " 'paying_rate' and dimension = 'acquisition_channel' and dimension_value <> ?",
        [INCIDENT_DAY, INCIDENT_CHANNEL],
    )
    assert others == []


def test_the_days_before_the_incident_are_scored_and_quiet_for_the_channel(
    incident_build: IncidentBuild,
) -> None:
    rows = query(
        incident_build.warehouse_path,
        "select metric_date, robust_score, severity from marts.metric_baselines"
        " where metric_code = 'paying_rate' and dimension = 'acquisition_channel'"
        " and dimension_value = ? and is_scored order by metric_date",
        [INCIDENT_CHANNEL],
    )
    assert [row[0] for row in rows][-1] == INCIDENT_DAY
    assert len(rows) >= 3
    assert all(severity is None for _, _, severity in rows[:-1]), rows


def test_explanations_of_dau_and_gmv_alerts_add_up(incident_build: IncidentBuild) -> None:
    mismatches = query(
        incident_build.warehouse_path,
        "select a.alert_id, a.week_over_week_change, sum(e.contribution)"
        " from marts.alerts as a inner join marts.alert_explanations as e using (alert_id)"
        " where e.explanation_kind in ('dau_identity', 'metric_tree')"
        " group by all having abs(sum(e.contribution) - a.week_over_week_change)"
        " > 1e-6 * (1 + abs(a.week_over_week_change))",
    )
    assert mismatches == []
    # The metric tree of the north star adds up on every row, not only on alerts.
    (rows, off) = query(
        incident_build.warehouse_path,
        "select count(*), count(*) filter (where abs(active_users_effect + paying_rate_effect"
        " + orders_per_payer_effect + aov_effect - gmv_change) > 1e-6 * (1 + abs(gmv_change)))"
        " from marts.north_star_decompositions",
    )[0]
    assert rows > 1000 and off == 0


def test_alert_checks_fail_for_the_alerting_metric_only(incident_build: IncidentBuild) -> None:
    from orchestration.alerts import check_name, metric_check_results
    from orchestration.resources import Warehouse

    patch = pytest.MonkeyPatch()
    patch.setenv("USEROPS_DUCKDB_PATH", str(incident_build.warehouse_path))
    try:
        warn = metric_check_results(Warehouse(), ["paying_rate", "referral_invites"])
        strict = metric_check_results(
            Warehouse(), ["paying_rate"], {"default": "warn", "paying_rate": "error"}
        )
    finally:
        patch.undo()
    by_name = {result.check_name: result for result in warn}
    paying = by_name[check_name("paying_rate")]
    assert not paying.passed and paying.severity.value == "WARN"
    assert INCIDENT_CHANNEL in (paying.description or "")
    assert paying.metadata["alerts"].value >= 1
    # With the var set to error for the metric, an error-level alert fails it with ERROR.
    worst = max(
        abs(alert["robust_score"])
        for alert in read_alerts(incident_build.warehouse_path, latest_only=True)
        if alert["metric_code"] == "paying_rate"
    )
    assert strict[0].severity.value == ("ERROR" if worst >= 6 else "WARN")


class FlakyWebhook(BaseHTTPRequestHandler):
    """Fails the first request of every batch with a 503, then accepts it; records bodies."""

    received: list[dict] = []
    failures_left: dict[str, int] = {}

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers["Idempotency-Key"]
        if self.failures_left.setdefault(key, 1) > 0:
            self.failures_left[key] -= 1
            self.send_response(503)
            self.end_headers()
            return
        self.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[str]:
    FlakyWebhook.received = []
    FlakyWebhook.failures_left = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyWebhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()


def test_new_alerts_are_sent_once_through_a_flaky_webhook_and_a_file(
    incident_build: IncidentBuild, tmp_path: Path, webhook: str
) -> None:
    import shutil

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incident_build.warehouse_path, warehouse)
    inbox = tmp_path / "alerts.jsonl"
    waits: list[float] = []
    sinks = {
        "file": file_sink(inbox),
        "webhook": webhook_sink(webhook, backoff_seconds=0.01, sleep=waits.append),
    }
    expected = read_alerts(warehouse, since=INCIDENT_DAY)
    sent = notify_new_alerts(warehouse, sinks, since=INCIDENT_DAY)
    assert {alert.alert_id for alert in sent} == {alert.alert_id for alert in expected}
    assert len(FlakyWebhook.received) == 1 and waits == [0.01]
    delivered = FlakyWebhook.received[0]["alerts"]
    assert {alert["alert_id"] for alert in delivered} == {alert.alert_id for alert in expected}
    paying = next(
        alert
        for alert in delivered
        if alert["metric_code"] == "paying_rate" and alert["dimension_value"] == INCIDENT_CHANNEL
    )
    assert INCIDENT_CHANNEL in paying["message"] and paying["explanation"]
    lines = inbox.read_text().splitlines()
    assert len(lines) == len(expected)
    # A second call finds every alert in ops.alerts and sends nothing.
    assert notify_new_alerts(warehouse, sinks, since=INCIDENT_DAY) == []
    assert len(FlakyWebhook.received) == 1 and len(inbox.read_text().splitlines()) == len(lines)
    (recorded,) = query(warehouse, "select count(*) from ops.alerts")[0]
    assert recorded == len(expected)


def test_a_webhook_that_stays_down_fails_clearly_and_records_nothing(
    incident_build: IncidentBuild, tmp_path: Path
) -> None:
    import shutil

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incident_build.warehouse_path, warehouse)
    # Port 9 (discard) on loopback: nothing listens, every attempt is refused.
    sink = webhook_sink("http://127.0.0.1:9/alerts", attempts=3, sleep=lambda _: None)
    with pytest.raises(SinkError, match="failed after 3 attempts"):
        notify_new_alerts(warehouse, {"webhook": sink}, since=INCIDENT_DAY)
    tables = query(
        warehouse, "select count(*) from information_schema.tables where table_schema = 'ops'"
    )
    assert tables == [(0,)]


def test_a_failing_webhook_names_its_host_never_its_token() -> None:
    import socket

    from userops.alerts import SinkError, redacted_url, webhook_sink

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://bot:hunter2@127.0.0.1:{port}/services/T0/B0/hooktoken123?sign=abc987"
    send = webhook_sink(url, attempts=2, sleep=lambda _: None, timeout_seconds=2)
    with pytest.raises(SinkError) as raised:
        send([])
    message = str(raised.value)
    assert f"127.0.0.1:{port}/…" in message
    for secret in ("hunter2", "hooktoken123", "abc987", "bot"):
        assert secret not in message, secret
    assert redacted_url("https://hooks.example.com") == "https://hooks.example.com"


def test_an_unusable_webhook_url_is_named_by_host_never_quoted() -> None:
    """http.client's own message for a URL it refuses quotes it (the password, for a user and
    password with no port; the path, for a space in it); the sink's error, as Dagster stores
    it with its causes, shows the host only. A user and password with a port are sent as
    Basic authorization (the Dagster test in test_orchestration.py sees them arrive)."""
    from dagster._utils.error import serializable_error_info_from_exc_info

    for url in (
        "http://127.0.0.1:9/services/hook token123",
        "http://bot:hunter2@[::1/services/hooktoken123",
    ):
        send = webhook_sink(url, attempts=3, sleep=lambda _: None, timeout_seconds=2)
        with pytest.raises(SinkError) as raised:
            send([])
        stored = serializable_error_info_from_exc_info(
            (raised.type, raised.value, raised.tb)
        ).to_string()
        assert "is not a usable URL" in stored, stored
        for secret in ("token123", "hunter2"):
            assert secret not in stored, (url, stored)
