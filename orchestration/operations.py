"""Operations-loop assets (docs/operations_loop.md): the daily audience delivery, a Python
step after the dbt marts it reads, and the sample-ratio check of the experiment results.

- `audience_deliveries` sends the selected members of marts.delivery_plans of the run's
  business day (the latest planned day on or before the partition) to the destinations of
  destinations.yml ($USEROPS_DESTINATIONS), logging every batch in ops.deliveries. A batch that
  failed for good fails the step with the reasons (after every other batch was sent).
- `experiments_have_no_sample_ratio_mismatch`, a warning check on the dbt mart
  marts.experiment_results (the experiment engine in SQL): no experiment's split differs from
  its plan.

Merged into the code location by orchestration/definitions.py. Paths come from the
environment when a step runs; importing this module does no work.
"""

from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Definitions,
    Failure,
    MaterializeResult,
    asset,
    asset_check,
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


EXPERIMENT_RESULTS = AssetKey(["experiment_results"])


def mismatched_experiments(warehouse_path: str) -> list[str]:
    """Experiments of marts.experiment_results whose split differs from the plan (has_srm)."""
    import duckdb

    with duckdb.connect(warehouse_path, read_only=True) as connection:
        rows = connection.execute(
            "select distinct experiment_id from marts.experiment_results where has_srm"
            " order by experiment_id"
        ).fetchall()
    return [str(row[0]) for row in rows]


@asset_check(
    asset=EXPERIMENT_RESULTS,
    name="experiments_have_no_sample_ratio_mismatch",
    blocking=False,
    description="No experiment's split differs from its planned shares (marts.experiment_results"
    ".has_srm: chi-square p below var experiment_srm_alpha); a mismatch means the assignment is "
    "broken and the experiment's results should not be trusted.",
)
def experiments_have_no_sample_ratio_mismatch(warehouse: Warehouse) -> AssetCheckResult:
    mismatched = mismatched_experiments(str(warehouse.warehouse_path()))
    return AssetCheckResult(
        passed=not mismatched,
        severity=AssetCheckSeverity.WARN,
        metadata={"experiments_with_srm": ", ".join(mismatched) or "none"},
    )


defs = Definitions(
    assets=[audience_deliveries], asset_checks=[experiments_have_no_sample_ratio_mismatch]
)
