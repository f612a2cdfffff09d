"""Great Expectations suites as Dagster asset checks (userops.quality).

Landing checks target the landing source assets and marts checks the mart assets; all are
`blocking`: when a check fails with severity ERROR, the assets downstream of the checked asset
are not materialized in that run (the warehouse keeps the previous tables, still readable).
Warnings never block. Every rule's outcome is appended to ops.data_quality_results.
"""

from collections.abc import Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from orchestration.landing import LANDING_TABLES, MANDATORY_TABLES
from orchestration.project import landing_key, load_manifest, mart_models
from orchestration.resources import Warehouse
from userops.quality.results import quality_rows, write_quality_results
from userops.quality.validate import CheckOutcome, worst

MAX_MESSAGES = 8


def outcome_table(outcomes: Sequence[CheckOutcome]) -> str:
    """Markdown table of every rule for the Dagster UI."""
    lines = ["| rule | severity | passed | observed | message |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        observed = "" if outcome.observed_value is None else f"{outcome.observed_value:.4g}"
        message = outcome.message.replace("|", "\\|")
        lines.append(
            f"| {outcome.suite}.{outcome.check} | {outcome.severity} | {outcome.passed} "
            f"| {observed} | {message} |"
        )
    return "\n".join(lines)


def to_check_result(
    asset_key: AssetKey, check_name: str, outcomes: Sequence[CheckOutcome]
) -> AssetCheckResult:
    passed, severity = worst(outcomes)
    failed = [outcome for outcome in outcomes if not outcome.passed]
    # Errors first: the description is what an operator reads in the run and asset views.
    failed.sort(key=lambda outcome: outcome.severity != "error")
    description = (
        "; ".join(f"[{outcome.severity}] {outcome.message}" for outcome in failed[:MAX_MESSAGES])
        if failed
        else f"all {len(outcomes)} rules passed"
    )
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR if severity == "error" else AssetCheckSeverity.WARN,
        description=description[:2000],
        metadata={
            "rules": MetadataValue.md(outcome_table(outcomes)),
            "failed_errors": sum(outcome.severity == "error" for outcome in failed),
            "failed_warnings": sum(outcome.severity == "warn" for outcome in failed),
        },
    )


def no_table_result(
    asset_key: AssetKey, check_name: str, what: str, fail: bool
) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=not fail,
        severity=AssetCheckSeverity.ERROR,
        description=what,
        metadata={"message": what},
    )


def landing_check(table: str) -> AssetChecksDefinition:
    key = landing_key(table)

    @asset_check(
        asset=key,
        name="gx_landing_suite",
        blocking=True,
        description=f"Great Expectations suite landing_{table}: schema (required columns per "
        "file), required values, id uniqueness, accepted values and ranges (errors above the "
        "dq_* thresholds block the dbt models; smaller defects are warnings).",
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        from userops.quality.landing import check_landing_table

        outcomes = check_landing_table(warehouse.landing_path(), table)
        if outcomes is None:
            mandatory = table in MANDATORY_TABLES
            return no_table_result(
                key,
                "gx_landing_suite",
                f"no landing files for {table}"
                + (" (mandatory table)" if mandatory else " (optional table: read as empty)"),
                fail=mandatory,
            )
        write_quality_results(
            warehouse.warehouse_path(),
            quality_rows(context.run.run_id, key.to_user_string(), "gx_landing_suite", outcomes),
        )
        return to_check_result(key, "gx_landing_suite", outcomes)

    return _check


def mart_check(schema: str, table: str) -> AssetChecksDefinition:
    key = AssetKey([table])

    @asset_check(
        asset=key,
        name="gx_mart_suite",
        blocking=True,
        description=f"Great Expectations suite on {schema}.{table}: no PII columns, *_rate / "
        "*_share in [0, 1], and the table's own invariants (userops/quality/marts.py).",
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        from userops.quality.marts import check_mart

        outcomes = check_mart(str(warehouse.warehouse_path()), schema, table)
        if outcomes is None:
            return no_table_result(
                key, "gx_mart_suite", f"{schema}.{table} does not exist in the warehouse", True
            )
        write_quality_results(
            warehouse.warehouse_path(),
            quality_rows(context.run.run_id, key.to_user_string(), "gx_mart_suite", outcomes),
        )
        return to_check_result(key, "gx_mart_suite", outcomes)

    return _check


def build_quality_checks() -> list[AssetChecksDefinition]:
    checks = [landing_check(table) for table in LANDING_TABLES]
    checks += [mart_check(schema, table) for schema, table in mart_models(load_manifest())]
    return checks
