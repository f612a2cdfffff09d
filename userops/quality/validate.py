"""Run a list of graded expectations on a pandas frame with an ephemeral GX context."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

Severity = Literal["error", "warn"]


@dataclass(frozen=True)
class Rule:
    """One expectation and how a failure is graded.

    `error_share`: a failure whose unexpected share of rows exceeds it is an error (0.0: every
    failure is an error); a smaller failure is a warning. None: failures are only warnings.
    """

    name: str
    expectation_type: str
    kwargs: dict[str, Any]
    description: str
    error_share: float | None = 0.0


@dataclass(frozen=True)
class CheckOutcome:
    suite: str
    check: str
    severity: Severity
    passed: bool
    observed_value: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def grade(rule: Rule, success: bool, unexpected_share: float | None) -> Severity:
    """Severity of a rule's outcome. A passed rule reports the worst severity it could have."""
    if rule.error_share is None:
        return "warn"
    if success or unexpected_share is None:
        return "error"
    return "error" if unexpected_share > rule.error_share else "warn"


def _expectation(rule: Rule) -> Any:
    import great_expectations as gx

    # ExpectColumnValuesToBeInSet etc.: the class name is the type in CamelCase.
    class_name = "".join(part.capitalize() for part in rule.expectation_type.split("_"))
    # meta carries the rule name: GX does not return results in the suite's order.
    return getattr(gx.expectations, class_name)(**rule.kwargs, meta={"rule": rule.name})


def _describe(rule: Rule, success: bool, result: dict[str, Any]) -> tuple[float | None, str]:
    """Observed value and a sentence an operator can act on."""
    if "unexpected_count" in result and result.get("element_count"):
        count, total = int(result["unexpected_count"]), int(result["element_count"])
        share = count / total
        if success:
            return share, f"{rule.description}: ok ({total} rows checked)"
        # A null has nothing to show; other rules show a few offending values.
        values = (
            []
            if rule.expectation_type.endswith("not_be_null")
            else result.get("partial_unexpected_list")
        )
        examples = ", ".join(str(value) for value in (values or [])[:5])
        return share, (
            f"{rule.description}: {count} of {total} rows ({share:.1%}) fail"
            + (f", e.g. {examples}" if examples else "")
        )
    observed = result.get("observed_value")
    number = float(observed) if isinstance(observed, int | float) else None
    state = "ok" if success else "FAILED"
    suffix = f" (observed {observed})" if observed is not None else ""
    return number, f"{rule.description}: {state}{suffix}"


COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")


def columns_needed(rules: Sequence[Rule], columns: Sequence[str]) -> list[str] | None:
    """Which of `columns` the rules read, in their order; None when a rule looks at the table's
    columns as a whole (then every column is needed)."""
    needed: set[str] = set()
    for rule in rules:
        if rule.expectation_type.startswith("expect_table_column"):
            return None
        for key in COLUMN_KWARGS:
            value = rule.kwargs.get(key)
            needed.update([value] if isinstance(value, str) else value or [])
    return [column for column in columns if column in needed] or None


def run_rules(suite: str, frame: pd.DataFrame, rules: Sequence[Rule]) -> list[CheckOutcome]:
    """Validate `frame` against `rules` in one GX suite; one outcome per rule."""
    if not rules:
        return []
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    # In-memory stores and no progress bars: results go to Dagster and the warehouse, not disk.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_definition = (
        context.data_sources.add_pandas(f"{suite}_source")
        .add_dataframe_asset(name=suite)
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    expectations = gx.ExpectationSuite(name=suite)
    for rule in rules:
        expectations.add_expectation(_expectation(rule))
    # GX fingerprints every batch under 1 GB by hashing all of it (pandas_data_fingerprint, for
    # stored results this project does not keep): 2.5 s of the events landing suite's 5.5 s on
    # the demo's 1.7 M events. The rules' columns alone also make its row selections cheaper.
    pandas_execution_engine.HASH_THRESHOLD = 0
    columns = columns_needed(rules, list(frame.columns))
    if columns is not None:
        frame = frame[columns]
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(expectations, result_format="SUMMARY")
    by_rule = {result.expectation_config.meta["rule"]: result for result in validation.results}
    outcomes = []
    for rule in rules:
        result = by_rule[rule.name]
        success = bool(result.success)
        body = dict(result.result or {})
        if result.exception_info and result.exception_info.get("raised_exception"):
            success = False
            body = {"observed_value": result.exception_info.get("exception_message")}
        share = (
            int(body["unexpected_count"]) / int(body["element_count"])
            if body.get("element_count") and "unexpected_count" in body
            else None
        )
        observed, message = _describe(rule, success, body)
        outcomes.append(
            CheckOutcome(
                suite=suite,
                check=rule.name,
                severity=grade(rule, success, share),
                passed=success,
                observed_value=observed,
                message=message,
                details={"expectation": rule.expectation_type, **rule.kwargs},
            )
        )
    return outcomes


def worst(outcomes: Sequence[CheckOutcome]) -> tuple[bool, Severity]:
    """Check-level verdict: passed when every rule passed; error when any error rule failed."""
    failed = [outcome for outcome in outcomes if not outcome.passed]
    if not failed:
        return True, "warn"
    return False, "error" if any(o.severity == "error" for o in failed) else "warn"
