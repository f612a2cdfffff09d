"""The Dagster code location: `dagster dev -m orchestration.definitions` (see `make dagster`).

Merges the small modules, each owning one concern: dbt assets (dbt_assets), landing sources and
freshness (landing), Great Expectations checks (quality), churn assets (ml, another module's
`defs`, merged when present), delivery and experiment assets (operations), jobs, schedules and
sensors (automation). Loading does no
database work; the dbt manifest is parsed first if missing.
"""

from __future__ import annotations

import logging

from dagster import AssetKey, Definitions, in_process_executor

from orchestration.alerts import build_alert_checks, build_alert_sensor
from orchestration.automation import (
    build_jobs,
    build_landing_sensor,
    build_schedules,
    run_failure_log_sensor,
)
from orchestration.dbt_assets import build_dbt_assets
from orchestration.landing import build_freshness_check, landing_files_observation
from orchestration.quality import build_quality_checks
from orchestration.report import build_report_asset
from orchestration.resources import default_resources

logger = logging.getLogger(__name__)


def ml_definitions() -> Definitions | None:
    """orchestration/ml.py's `defs`, or None when the module is absent or does not import (the
    rest of the code location must keep loading)."""
    try:
        from orchestration.ml import defs
    except ModuleNotFoundError as error:
        if error.name == "orchestration.ml":
            return None
        logger.warning("orchestration.ml not merged: %s", error)
        return None
    except Exception as error:  # a broken churn module must not take the whole location down
        logger.warning("orchestration.ml not merged: %r", error)
        return None
    return defs


def ml_asset_keys(ml_defs: Definitions | None) -> list[AssetKey]:
    if ml_defs is None:
        return []
    keys: list[AssetKey] = []
    for asset in ml_defs.assets or []:
        keys.extend(getattr(asset, "keys", []))
    return keys


def operations_definitions() -> Definitions:
    """The operations-loop assets (orchestration/operations.py): delivery, experiments."""
    from orchestration.operations import defs

    return defs


def build_definitions() -> Definitions:
    ml_defs = ml_definitions()
    jobs = build_jobs(ml_asset_keys(ml_defs))
    freshness = build_freshness_check()
    core = Definitions(
        assets=[
            landing_files_observation,
            *build_dbt_assets(),
            build_report_asset(ml_asset_keys(ml_defs)),
        ],
        asset_checks=[
            *build_quality_checks(),
            *build_alert_checks(),
            *([freshness] if freshness else []),
        ],
        jobs=list(jobs.values()),
        schedules=build_schedules(jobs),
        sensors=[
            build_landing_sensor(jobs["userops_daily"]),
            run_failure_log_sensor,
            build_alert_sensor(),
        ],
        resources=default_resources(),
        # Two cores: one process per step would cost ~8 s of imports each.
        executor=in_process_executor,
    )
    core = Definitions.merge(core, operations_definitions())
    return Definitions.merge(core, ml_defs) if ml_defs is not None else core


defs = build_definitions()
