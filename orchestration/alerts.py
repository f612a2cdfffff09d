"""Metric alerts in Dagster: one asset check per daily catalogue metric on the `alerts` asset,
and a sensor that delivers new alerts after every successful run (userops.alerts).

A check passes when the newest data day has no alert for its metric; otherwise it fails, with
severity WARN, or ERROR when var alert_check_severity says `error` for that metric (or its
`default`) and an alert reached alert_error_score. It describes each alert with its
explanation. The checks never block: an alert is news about the business, not a fault of the
data.
"""

import csv
from collections.abc import Iterator, Mapping
from datetime import timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    multi_asset_check,
    run_status_sensor,
)

from orchestration.resources import Warehouse
from userops.paths import PROJECT_DIR
from userops.quality.settings import dbt_var

ALERTS_ASSET = AssetKey(["alerts"])
METRIC_CATALOGUE_CSV = PROJECT_DIR / "seeds" / "metric_catalogue.csv"


def daily_metric_codes() -> list[str]:
    """The catalogue's daily metrics: the ones metric_values (and so the alerts) carry."""
    with METRIC_CATALOGUE_CSV.open(newline="", encoding="utf-8") as handle:
        return [row["metric_code"] for row in csv.DictReader(handle) if row["grain"] == "day"]


def check_name(metric_code: str) -> str:
    return f"no_alert_{metric_code}"


def check_severity(metric_code: str, settings: Mapping[str, str]) -> str:
    """warn or error: var alert_check_severity's entry for the metric, else its `default`."""
    value = str(settings.get(metric_code, settings.get("default", "warn")))
    if value not in ("warn", "error"):
        raise ValueError(f"var alert_check_severity: {metric_code}: {value!r} is not warn or error")
    return value


def metric_check_results(
    warehouse: Warehouse,
    metric_codes: list[str],
    severities: Mapping[str, str] | None = None,
) -> list[AssetCheckResult]:
    from userops.alerts import read_alerts

    settings = dict(dbt_var("alert_check_severity") if severities is None else severities)
    latest = read_alerts(warehouse.warehouse_path(), latest_only=True)
    results = []
    for metric_code in metric_codes:
        alerts = [alert for alert in latest if alert["metric_code"] == metric_code]
        # An error-level alert fails the check with ERROR only where the var says so.
        severity = (
            AssetCheckSeverity.ERROR
            if check_severity(metric_code, settings) == "error"
            and any(alert["severity"] == "error" for alert in alerts)
            else AssetCheckSeverity.WARN
        )
        results.append(
            AssetCheckResult(
                asset_key=ALERTS_ASSET,
                check_name=check_name(metric_code),
                passed=not alerts,
                severity=severity,
                description=(
                    "; ".join(alert.message() for alert in alerts[:5])[:2000]
                    if alerts
                    else f"no {metric_code} alert on the latest day"
                ),
                metadata={
                    "alerts": len(alerts),
                    "details": MetadataValue.md(
                        "\n".join(f"- {alert.message()}" for alert in alerts) or "none"
                    ),
                },
            )
        )
    return results


def build_alert_checks() -> list[AssetChecksDefinition]:
    metric_codes = daily_metric_codes()

    @multi_asset_check(
        name="metric_alert_checks",
        specs=[
            AssetCheckSpec(
                check_name(code),
                asset=ALERTS_ASSET,
                blocking=False,
                description=f"The latest day has no {code} alert (marts.alerts; docs/alerts.md).",
            )
            for code in metric_codes
        ],
    )
    def _checks(
        context: AssetCheckExecutionContext, warehouse: Warehouse
    ) -> Iterator[AssetCheckResult]:
        yield from metric_check_results(warehouse, metric_codes)

    return [_checks]


def build_alert_sensor() -> SensorDefinition:
    @run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name="alert_notification_sensor",
        description="After each successful run, sends the alerts of the last alert_notify_days "
        "days not sent yet to USEROPS_ALERT_FILE / USEROPS_ALERT_WEBHOOK_URL and records them "
        "in ops.alerts.",
        default_status=DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: RunStatusSensorContext) -> SkipReason | None:
        from userops.alerts import configured_sinks, notify_new_alerts, read_alerts

        warehouse = Warehouse().warehouse_path()
        if not warehouse.exists():
            return SkipReason(f"no warehouse at {warehouse}")
        newest = max((alert["metric_date"] for alert in read_alerts(warehouse)), default=None)
        if newest is None:
            return SkipReason("no alerts in marts.alerts")
        since = newest - timedelta(days=int(dbt_var("alert_notify_days")) - 1)
        sent = notify_new_alerts(warehouse, configured_sinks(), since=since)
        context.log.info(
            f"{len(sent)} new alerts since {since} sent after run {context.dagster_run.run_id}"
        )
        return None

    return _sensor
