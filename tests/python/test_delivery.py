"""`userops deliver` against a real HTTP receiver on 127.0.0.1 and real files.

The receiver (http.server in a thread) is scripted per request: HTTP 500, a reply slower than
the client's timeout (the receiver has processed the batch, the client does not know), a
malformed body, a 400, or a normal answer. It dedupes on the Idempotency-Key header, as the
contract in docs/operations_loop.md asks of receivers, and records every request, so the tests
see both what was sent and what the receiver kept.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import Build

from userops import delivery
from userops.delivery import (
    DeliveryError,
    Destination,
    check_answer,
    deliver,
    load_destinations,
    write_atomically,
)

DAY = date(2026, 6, 30)
CLIENT_TIMEOUT = 0.5


class Receiver:
    """A webhook receiver with a script of answers (consumed one per request, then 'ok')."""

    def __init__(self, script: list[str] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict] = []  # every request body, in order
        self.kept: dict[str, dict] = {}  # idempotency key -> first accepted body
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                with receiver.lock:
                    action = receiver.script.pop(0) if receiver.script else "ok"
                    receiver.requests.append({"key": key, "action": action, "body": body})
                if action == "500":
                    self._answer(500, b'{"error": "boom"}')
                    return
                if action == "400":
                    self._answer(400, b'{"error": "bad batch"}')
                    return
                with receiver.lock:  # processed (kept once per key) before answering
                    receiver.kept.setdefault(key, body)
                if action == "slow":
                    time.sleep(CLIENT_TIMEOUT * 3)
                if action == "malformed":
                    self._answer(200, b"<html>gateway says hi</html>")
                    return
                if action == "echo":  # a gateway that repeats what it was sent
                    self._answer(200, f"<html>no route for {self.path}</html>".encode())
                    return
                answer = {"accepted": len(body["messages"]), "duplicate": key in receiver.kept}
                self._answer(200, json.dumps(answer).encode())

            def _answer(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): fine

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/batches"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kept_messages(self) -> list[str]:
        return [m["message_id"] for body in self.kept.values() for m in body["messages"]]

    def sent_user_ids(self) -> set[str]:
        return {m["user_id"] for r in self.requests for m in r["body"]["messages"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def plan_warehouse(path: Path, treatment: int = 23, holdout: int = 4) -> Path:
    """A warehouse with marts.delivery_plans of one day: two audiences, holdout and capped rows."""
    rows = []
    for i in range(treatment):
        rows.append(("a", f"t{i:03d}", "treatment", "push", None))
    for i in range(holdout):
        rows.append(("a", f"h{i:03d}", "holdout", "push", "holdout"))
    rows.append(("b", "t000", "treatment", "sms", "frequency_cap"))
    rows.append(("b", "s001", "treatment", "sms", None))
    rows.append(("b", "s002", "treatment", "sms", "opted_out"))
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts")
        connection.execute(
            "create table marts.delivery_plans (audience_id varchar, delivery_date date,"
            " user_id varchar, assignment_group varchar, channel varchar, exclusion_reason"
            " varchar, is_selected boolean, message_id varchar)"
        )
        connection.executemany(
            "insert into marts.delivery_plans values (?, ?, ?, ?, ?, ?, ?, ?)",
            [[a, DAY, u, g, c, r, r is None, f"{a}:{DAY}:{c}:{u}"] for a, u, g, c, r in rows],
        )
    return path


def webhook(url: str, batch_size: int = 5, attempts: int = 4) -> Destination:
    return Destination(
        destination_id="hook",
        kind="webhook",
        audiences=None,
        channels=None,
        url=url,
        batch_size=batch_size,
        max_attempts=attempts,
        backoff_seconds=0.01,
        timeout_seconds=CLIENT_TIMEOUT,
    )


def batches(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(
            "select batch_id, status, attempts, recipients, last_error from ops.deliveries"
            " order by batch_id"
        ).fetchall()


def test_retries_deliver_every_batch_exactly_once_and_never_the_holdout(tmp_path: Path) -> None:
    warehouse = plan_warehouse(tmp_path / "w.duckdb")
    # Batches of 5: a has 23 selected users (5 batches), b has 1 (1 batch). The first batch
    # meets a 500, then a slow answer (processed, but the client times out), then succeeds; a
    # later batch gets a malformed body first.
    server = Receiver(["500", "slow", "ok", "ok", "malformed", "ok"])
    waits: list[float] = []
    try:
        report = deliver(warehouse, destinations=[webhook(server.url)], sleep=waits.append)
        assert report.new_batches == 6 and report.sent_batches == 6 and not report.failed
        kept = server.kept_messages()
        assert len(kept) == len(set(kept)) == 24  # every selected user once, at the receiver
        assert {m.split(":")[-1] for m in kept} == {f"t{i:03d}" for i in range(23)} | {"s001"}
        # The holdout, the opted-out and the capped user are never in any request.
        assert not server.sent_user_ids() & {"h000", "h001", "h002", "h003", "s002"}
        assert "t000" not in {
            m["user_id"]
            for r in server.requests
            if r["body"]["audience_id"] == "b"
            for m in r["body"]["messages"]
        }
        # 6 batches, 3 extra requests: the 500, the timeout and the malformed answer.
        assert len(server.requests) == 9
        first_key = server.requests[0]["key"]
        assert [r["key"] for r in server.requests[:3]] == [first_key] * 3
        # The timed-out request reached the receiver; its resend was dropped there by key.
        assert len(server.kept) == 6
        assert waits == [0.01, 0.02, 0.01]  # backoff doubles per attempt of one batch
        assert all(status == "sent" for _, status, *_ in batches(warehouse))
        assert sorted(a for _, _, a, _, _ in batches(warehouse)) == [1, 1, 1, 1, 2, 3]

        # Re-running the day sends nothing.
        before = len(server.requests)
        again = deliver(warehouse, destinations=[webhook(server.url)], sleep=waits.append)
        assert (again.new_batches, again.sent_batches, again.already_sent_batches) == (0, 0, 6)
        assert len(server.requests) == before
    finally:
        server.close()


def test_a_destination_that_is_down_fails_clearly_and_recovers_on_rerun(tmp_path: Path) -> None:
    warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=3, holdout=1)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/batches"
    waits: list[float] = []
    with pytest.raises(DeliveryError) as failure:
        deliver(warehouse, destinations=[webhook(dead, attempts=3)], sleep=waits.append)
    message = str(failure.value)
    assert "failed after 3 attempt(s)" in message and "ConnectionRefusedError" in message
    assert waits == [0.01, 0.02, 0.01, 0.02]  # two batches, 3 attempts each
    assert {status for _, status, *_ in batches(warehouse)} == {"failed"}

    # The receiver is back (at another address): the same batches go out with the same keys.
    server = Receiver()
    try:
        keys = [batch_id for batch_id, *_ in batches(warehouse)]
        report = deliver(warehouse, destinations=[webhook(server.url)], sleep=waits.append)
        assert (report.new_batches, report.sent_batches) == (0, 2)
        assert sorted(server.kept) == sorted(keys)
        assert sorted(server.kept_messages()) == sorted(
            [f"a:{DAY}:push:t{i:03d}" for i in range(3)] + [f"b:{DAY}:sms:s001"]
        )
    finally:
        server.close()


def test_malformed_answers_and_rejections_fail_with_the_reason(
    tmp_path: Path, receiver: Receiver
) -> None:
    warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=2, holdout=0)
    receiver.script = ["malformed"] * 3 + ["400"]
    with pytest.raises(DeliveryError) as failure:
        deliver(warehouse, destinations=[webhook(receiver.url, attempts=3)], sleep=lambda _: None)
    lines = str(failure.value).splitlines()
    assert any("failed after 3 attempt(s): malformed answer" in line for line in lines)
    # A 400 says the receiver rejects the batch itself: not retried.
    assert any("failed after 1 attempt(s): HTTP 400" in line for line in lines)
    assert len(receiver.requests) == 4


def test_a_crash_between_the_answer_and_the_log_resends_under_the_same_key(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=2, holdout=0)
    real_mark = delivery.mark_batch

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed after the receiver answered")

    monkeypatch.setattr(delivery, "mark_batch", crash)
    with pytest.raises(KeyboardInterrupt):
        deliver(warehouse, destinations=[webhook(receiver.url)], sleep=lambda _: None)
    assert len(receiver.requests) == 1 and len(receiver.kept) == 1
    assert {status for _, status, *_ in batches(warehouse)} == {"pending"}

    monkeypatch.setattr(delivery, "mark_batch", real_mark)
    report = deliver(warehouse, destinations=[webhook(receiver.url)], sleep=lambda _: None)
    assert report.sent_batches == 2
    # The first batch was sent twice with one key; the receiver kept it once.
    keys = [r["key"] for r in receiver.requests]
    assert keys[0] == keys[1] and len(keys) == 3
    assert len(receiver.kept) == 2 and len(receiver.kept_messages()) == 3


def test_files_are_written_atomically_per_audience_channel_and_day(tmp_path: Path) -> None:
    warehouse = plan_warehouse(tmp_path / "w.duckdb")
    outbox = Destination("outbox", "file", None, None, path=tmp_path / "outbox")
    deliver(warehouse, destinations=[outbox])
    day = tmp_path / "outbox" / "a" / "push" / DAY.isoformat()
    table = pq.read_table(day / "batch-00001.parquet")
    assert table.num_rows == 23 and set(table["user_id"].to_pylist()).isdisjoint({"h000"})
    assert pacsv.read_csv(day / "batch-00001.csv").num_rows == 23
    assert not list((tmp_path / "outbox").rglob(".*tmp*"))
    # A second run writes nothing new; a day with a new selected user adds a second batch.
    deliver(warehouse, destinations=[outbox])
    assert sorted(p.name for p in day.iterdir()) == ["batch-00001.csv", "batch-00001.parquet"]
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "insert into marts.delivery_plans values ('a', ?, 'late1', 'treatment', 'push',"
            " null, true, 'a:2026-06-30:push:late1')",
            [DAY],
        )
    report = deliver(warehouse, destinations=[outbox])
    assert report.new_batches == 1 and report.sent_messages == 1
    assert pq.read_table(day / "batch-00002.parquet")["user_id"].to_pylist() == ["late1"]


def test_write_atomically_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "f.csv"
    target.write_text("old")

    def broken(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically(target, broken)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_a_plan_that_selects_a_holdout_user_sends_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=2, holdout=1)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("update marts.delivery_plans set is_selected = true")
    with pytest.raises(DeliveryError, match="selects 1 holdout rows"):
        deliver(warehouse, destinations=[webhook(receiver.url)])
    assert receiver.requests == []


def test_check_answer() -> None:
    assert check_answer(200, b'{"accepted": 3}', 3) is None
    assert check_answer(200, b'{"accepted": 2}', 3).startswith("malformed answer")
    assert check_answer(200, b"[]", 3).startswith("malformed answer")
    assert check_answer(503, b"", 3) == "HTTP 503"


def test_destinations_file_and_unset_webhooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USEROPS_PUSH_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("USEROPS_SMS_WEBHOOK_URL", "http://127.0.0.1:9/sms")
    destinations, notes = load_destinations(outbox_dir=tmp_path)
    assert [d.destination_id for d in destinations] == ["outbox", "sms_provider"]
    assert destinations[0].path == tmp_path.resolve()
    assert notes == ["push_provider: not used, $USEROPS_PUSH_WEBHOOK_URL is not set"]
    bad = tmp_path / "bad.yml"
    bad.write_text("destinations:\n  - {id: x, kind: ftp}\n")
    with pytest.raises(delivery.ConfigError, match="kind must be file or webhook"):
        load_destinations(bad)


def test_delivery_of_the_sample_build_sends_its_treatment_members(
    sample_build: Build, tmp_path: Path
) -> None:
    """The real plan of the dbt build: what the outbox holds is exactly the selected rows, none
    of the holdout, and a rerun adds nothing."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(sample_build.warehouse_path, warehouse)
    outbox = Destination("outbox", "file", None, None, path=tmp_path / "outbox")
    report = deliver(warehouse, destinations=[outbox])
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        latest = connection.execute(
            "select max(delivery_date) from marts.delivery_plans"
        ).fetchone()
        selected = set(
            connection.execute(
                "select message_id from marts.delivery_plans where delivery_date = ?"
                " and is_selected",
                [latest[0]],
            ).fetchall()
        )
        holdout = {
            m
            for (m,) in connection.execute(
                "select message_id from marts.delivery_plans where assignment_group = 'holdout'"
            ).fetchall()
        }
    files = list((tmp_path / "outbox").rglob("*.parquet"))
    sent = [m for f in files for m in pq.read_table(f)["message_id"].to_pylist()]
    assert report.sent_messages == len(sent) == len(set(sent)) == len(selected) > 0
    assert {(m,) for m in sent} == selected
    assert holdout and not set(sent) & holdout
    assert deliver(warehouse, destinations=[outbox]).sent_batches == 0


def test_the_dagster_asset_delivers_the_runs_business_day() -> None:
    from orchestration.operations import run_partition_day

    assert run_partition_day({"dagster/partition": "2026-06-30"}) == DAY
    assert run_partition_day({"dagster/asset_partition_range_end": "2026-06-30"}) == DAY
    assert run_partition_day({}) is None


def test_a_webhook_token_reaches_neither_the_ops_tables_nor_an_error(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No secrets in logs (issue 14): a provider's webhook URL carries its token in the path or
    query. ops.deliveries.target keeps scheme and host (what userops.alerts.redacted_url shows),
    and a misconfigured URL is named by its variable, never printed, because the Dagster step
    logs whatever delivery raises."""
    warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=2, holdout=0)
    secret_url = receiver.url.replace("/batches", "/send/pushtoken123?key=pushkey456")
    report = deliver(warehouse, destinations=[webhook(secret_url)], sleep=lambda _: None)
    assert report.sent_batches == 2 and len(receiver.kept) == 2  # it was sent to that URL
    port = secret_url.split(":")[2].split("/")[0]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        targets = connection.execute("select distinct target from ops.deliveries").fetchall()
        logged = connection.execute(
            "select string_agg(cast(d as varchar), '|') from ops.deliveries as d"
        ).fetchone()[0]
    assert targets == [(f"http://127.0.0.1:{port}/…",)]
    for token in ("pushtoken123", "pushkey456"):
        assert token not in logged and token not in "\n".join(report.lines()), token

    destinations = tmp_path / "destinations.yml"
    destinations.write_text(
        "destinations:\n  - {id: push_provider, kind: webhook, url_env: USEROPS_PUSH_WEBHOOK_URL}\n"
    )
    monkeypatch.setenv("USEROPS_PUSH_WEBHOOK_URL", "hooks.example.com/send/pushtoken123?k=x")
    with pytest.raises(delivery.ConfigError) as raised:
        load_destinations(destinations, outbox_dir=tmp_path)
    assert str(raised.value) == (
        "destination push_provider: $USEROPS_PUSH_WEBHOOK_URL is not an http(s) URL"
        " (it does not start with http:// or https://)"
    )


def test_an_unusable_webhook_url_fails_its_batch_without_quoting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http.client refuses some URLs before sending, with a message that quotes them ("URL
    can't contain control characters. '/send/push token123'", "nonnumeric port:
    'password@host'"). The batch fails at once, named by its variable; neither the error
    Dagster stores nor ops.deliveries shows the token."""
    from dagster._utils.error import serializable_error_info_from_exc_info

    warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=2, holdout=0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    destinations = tmp_path / "destinations.yml"
    destinations.write_text(
        "destinations:\n  - {id: push_provider, kind: webhook, url_env: USEROPS_PUSH_WEBHOOK_URL,"
        " backoff_seconds: 0.01}\n"
    )
    monkeypatch.setenv("USEROPS_PUSH_WEBHOOK_URL", f"http://127.0.0.1:{port}/send/push token123")
    loaded, _ = load_destinations(destinations, outbox_dir=tmp_path)
    with pytest.raises(DeliveryError) as failure:
        deliver(warehouse, destinations=loaded)
    stored = serializable_error_info_from_exc_info(
        (failure.type, failure.value, failure.tb)
    ).to_string()
    assert (
        "failed after 1 attempt(s): InvalidURL: $USEROPS_PUSH_WEBHOOK_URL is not a usable URL"
        in stored
    )
    assert "token123" not in stored
    assert [(status, attempts) for _, status, attempts, *_ in batches(warehouse)] == [
        ("failed", 1),
        ("failed", 1),
    ]
    assert "token123" not in str(batches(warehouse))


def test_a_receivers_answer_that_repeats_the_token_is_stored_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ops.deliveries.last_error quotes a malformed answer; a gateway that echoes the request
    path (the token) must not put the token there."""
    server = Receiver(["echo", "echo"])
    try:
        warehouse = plan_warehouse(tmp_path / "w.duckdb", treatment=2, holdout=0)
        destinations = tmp_path / "destinations.yml"
        destinations.write_text(
            "destinations:\n  - {id: push_provider, kind: webhook, url_env: "
            "USEROPS_PUSH_WEBHOOK_URL, max_attempts: 1}\n"
        )
        monkeypatch.setenv(
            "USEROPS_PUSH_WEBHOOK_URL", f"{server.url}/tok_secret_987?key=q%20secret654"
        )
        loaded, _ = load_destinations(destinations, outbox_dir=tmp_path)
        with pytest.raises(DeliveryError) as failure:
            deliver(warehouse, destinations=loaded)
    finally:
        server.close()
    assert {r["action"] for r in server.requests} == {"echo"}  # it was sent and answered
    stored = str(batches(warehouse)) + str(failure.value)
    assert "malformed answer" in stored and "no route for" in stored
    for secret in ("tok_secret_987", "secret654"):
        assert secret not in stored
