"""Operations-loop assets (docs/operations_loop.md): the daily audience delivery and the
experiment analysis, both Python steps after the dbt marts they read.

- `audience_deliveries` sends the selected members of marts.delivery_plans of the run's
  business day (the latest planned day on or before the partition) to the destinations of
  destinations.yml ($USEROPS_DESTINATIONS), logging every batch in ops.deliveries. A batch that
  failed for good fails the step with the reasons (after every other batch was sent).
- `experiment_results` runs the experiment engine (userops/experiments.py) over
  marts.experiment_user_metrics into ops.experiment_results; a sample-ratio mismatch is a
  warning check.

Merged into the code location by orchestration/definitions.py. Paths come from the
environment when a step runs; importing this module does no work.
"""

from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Definitions,
    Failure,
    MaterializeResult,
    asset,
)

from orchestration.resources import Warehouse


def delivery_day(warehouse_path: str, partition_day: date | None) -> date | None:
    """The latest planned day on or before the partition's day (the whole plan without one)."""
    import duckdb

    with duckdb.connect(warehouse_path) as connection:
        if partition_day is None:
            query, params = "select max(delivery_date) from marts.delivery_plans", []
        else:
            query = "select max(delivery_date) from marts.delivery_plans where delivery_date <= ?"
            params = [partition_day]
        return connection.execute(query, params).fetchone()[0]


def run_partition_day(tags: dict[str, str]) -> date | None:
    """The business day of the run: its partition, or the last day of a backfill range; None
    for an unpartitioned run. (The asset itself is unpartitioned: it reads the tags.)"""
    key = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
    return date.fromisoformat(key) if key else None


@asset(
    key="audience_deliveries",
    deps=[AssetKey(["delivery_plans"])],
    group_name="operations",
    kinds={"python", "duckdb"},
    description=(
        "Sends each audience's selected members of the day (delivery_plans: holdout, opt-outs "
        "and the frequency cap already excluded) to the destinations of destinations.yml, "
        "exactly once per batch (ops.deliveries, ops.delivery_recipients)."
    ),
)
def audience_deliveries(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    from userops.delivery import DeliveryError, deliver

    partition_day = run_partition_day(context.run.tags)
    warehouse_path = warehouse.warehouse_path()
    day = delivery_day(str(warehouse_path), partition_day)
    try:
        report = deliver(warehouse_path, delivery_date=day, run_id=context.run_id)
    except DeliveryError as error:
        raise Failure(description=str(error)) from error
    for line in report.lines():
        context.log.info(line)
    return MaterializeResult(
        metadata={
            "delivery_date": str(report.delivery_date or ""),
            "selected_users": report.planned_users,
            "new_batches": report.new_batches,
            "sent_batches": report.sent_batches,
            "sent_messages": report.sent_messages,
            "already_sent_batches": report.already_sent_batches,
            "notes": "; ".join(report.notes) or "none",
        }
    )


@asset(
    key="experiment_results",
    deps=[AssetKey(["experiment_user_metrics"]), AssetKey(["experiment_arms"])],
    group_name="operations",
    kinds={"python", "scipy", "duckdb"},
    description=(
        "A/B tests and audience holdouts analysed by one engine: SRM, CUPED, intervals for the "
        "difference and relative lift, Holm across a test's metrics, always-valid intervals "
        "(ops.experiment_results)."
    ),
    check_specs=[
        AssetCheckSpec(
            "experiments_have_no_sample_ratio_mismatch",
            asset="experiment_results",
            description="No experiment's split differs from its planned shares (chi-square "
            "p < 0.001).",
        )
    ],
)
def experiment_results(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    from userops.experiments import run

    results = run(warehouse.warehouse_path())
    mismatched = sorted({r.experiment_id for r in results if r.has_srm})
    significant = [
        f"{r.experiment_id}/{r.variant}/{r.metric_code}"
        for r in results
        if r.is_significant and r.experiment_kind == "ab_test"
    ]
    return MaterializeResult(
        metadata={
            "result_rows": len(results),
            "experiments": len({r.experiment_id for r in results}),
            "significant_ab_results": ", ".join(significant) or "none",
        },
        check_results=[
            AssetCheckResult(
                check_name="experiments_have_no_sample_ratio_mismatch",
                passed=not mismatched,
                severity=AssetCheckSeverity.WARN,
                metadata={"experiments_with_srm": ", ".join(mismatched) or "none"},
            )
        ],
    )


defs = Definitions(assets=[audience_deliveries, experiment_results])
