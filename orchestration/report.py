"""The HTML report (userops.report) as an asset materialized after the marts it draws.

Its materialization links the page in the asset's metadata (path and a file:// URL), so the
Dagster UI opens the newest report of the run.
"""

from collections.abc import Sequence

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset
from dagster import MetadataValue as Meta

from orchestration.project import load_manifest
from orchestration.resources import Warehouse

# The marts (dbt models) the page reads; those absent from the project are skipped.
REPORT_MARTS = (
    "daily_metrics",
    "metric_baselines",
    "alerts",
    "alert_explanations",
    "retention_cohorts",
    "value_cohorts",
    "user_layers",
    "layer_migrations",
    "funnel_conversions",
    "event_paths",
    "dau_change_decompositions",
    "audience_outcomes",
    "landing_row_accounting",
    "quarantined_rows",
)


def report_deps(ml_keys: Sequence[AssetKey]) -> list[AssetKey]:
    models = {
        node["name"]
        for node in load_manifest()["nodes"].values()
        if node["resource_type"] == "model"
    }
    keys = [AssetKey([name]) for name in REPORT_MARTS if name in models]
    # The churn panel reads ml.churn_model_calibration, which the training asset writes.
    return keys + [key for key in ml_keys if key.path[-1] == "churn_model"]


def build_report_asset(ml_keys: Sequence[AssetKey]) -> AssetsDefinition:
    @asset(
        name="report",
        group_name="reports",
        deps=report_deps(ml_keys),
        description="One self-contained HTML page of the marts (userops report; docs/report.md).",
    )
    def _report(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        from userops.report import write_report

        report = write_report(warehouse.warehouse_path())
        context.log.info(f"report written to {report.path}")
        return MaterializeResult(
            metadata={
                "path": Meta.path(str(report.path)),
                "open": Meta.url(report.path.as_uri()),
                "bytes": report.bytes,
                "seconds": report.seconds,
                "charts": len(report.rendered),
                "empty_charts": Meta.json(report.empty),
            }
        )

    return _report
