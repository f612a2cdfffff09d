"""Tell failed checks that flag the generator's deliberate bad rows from real failures.

`userops generate --bad-row-share` adds bad rows to every landing table on purpose, so the
landing suites warn on every generated data set. A failed landing check counts as expected only
when all of this holds, else it is reported as a failure:
- it is a warning (an error blocks models, whatever caused it);
- the generator's `injected_defects.json` sits next to the landing folder (ground_truth/);
- every failed rule of the check (ops.data_quality_results of the run) flags a defect kind the
  generator injected into that table (userops.quality.landing.rule_reasons);
- marts.quarantined_rows holds, per reason, exactly the rows injected for that reason (a data set
  imported over an old generated one does not match), and for events the unknown event names
  staging kept equal the injected ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from userops.quality.landing import rule_reasons

UNKNOWN_EVENT_NAME = "unknown_event_name"
LANDING_SUITE = "gx_landing_suite"
MAX_DESCRIPTION = 300


@dataclass(frozen=True)
class FailedCheck:
    asset_key: str  # e.g. landing/orders, metric_values
    check_name: str
    severity: str  # warn or error
    description: str

    def line(self) -> str:
        text = f"{self.asset_key}:{self.check_name} [{self.severity.upper()}] {self.description}"
        return text[:MAX_DESCRIPTION]


@dataclass(frozen=True)
class ExpectedCheck:
    check: FailedCheck
    explanation: str


@dataclass(frozen=True)
class CheckReport:
    expected: list[ExpectedCheck]
    failed: list[FailedCheck]
    defects_file: Path | None


def injected_defects_file(landing_dir: Path) -> Path:
    """Where userops.generate writes the counts of the bad rows it injected."""
    return Path(landing_dir).parent / "ground_truth" / "injected_defects.json"


def load_injected_defects(landing_dir: Path) -> dict[str, dict[str, int]] | None:
    path = injected_defects_file(landing_dir)
    if not path.exists():
        return None
    return {
        table: {reason: int(count) for reason, count in reasons.items()}
        for table, reasons in json.loads(path.read_text()).items()
    }


def _exists(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    (count,) = connection.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(count)


@dataclass(frozen=True)
class WarehouseFacts:
    """What the run left in the warehouse, per landing table."""

    failed_rules: dict[str, list[str]]  # asset_key -> rule names failed in this run
    quarantined: dict[str, dict[str, int]]  # table -> reason -> rows
    unknown_events: int | None


def read_facts(warehouse: Path, run_id: str) -> WarehouseFacts:
    failed_rules: dict[str, list[str]] = {}
    quarantined: dict[str, dict[str, int]] = {}
    unknown: int | None = None
    if not Path(warehouse).exists():
        return WarehouseFacts(failed_rules, quarantined, unknown)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        if _exists(connection, "ops", "data_quality_results"):
            for asset_key, rule in connection.execute(
                "select asset_key, rule_name from ops.data_quality_results"
                " where run_id = ? and check_name = ? and not passed order by 1, 2",
                [run_id, LANDING_SUITE],
            ).fetchall():
                failed_rules.setdefault(asset_key, []).append(rule)
        if _exists(connection, "marts", "quarantined_rows"):
            for table, reason, count in connection.execute(
                "select table_name, quarantine_reason, count(*) from marts.quarantined_rows"
                " group by all"
            ).fetchall():
                quarantined.setdefault(table, {})[reason] = int(count)
        if _exists(connection, "staging", "stg_landing__events"):
            (unknown,) = connection.execute(
                "select count(*) from staging.stg_landing__events where not is_known_event"
            ).fetchone()
    return WarehouseFacts(failed_rules, quarantined, unknown)


def _counts(reasons: dict[str, int]) -> str:
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {count:,}" for reason, count in ordered)


def explain(
    check: FailedCheck, defects: dict[str, dict[str, int]] | None, facts: WarehouseFacts
) -> str | None:
    """Why the check's failure is the generator's injected bad rows, or None when it is not."""
    if check.check_name != LANDING_SUITE or not check.asset_key.startswith("landing/"):
        return None
    if check.severity.lower() != "warn" or defects is None:
        return None
    table = check.asset_key.split("/", 1)[1]
    injected = {reason: n for reason, n in defects.get(table, {}).items() if n > 0}
    rules = facts.failed_rules.get(check.asset_key, [])
    if not injected or not rules:
        return None
    if any(not set(rule_reasons(rule)) & set(injected) for rule in rules):
        return None
    quarantinable = {r: n for r, n in injected.items() if r != UNKNOWN_EVENT_NAME}
    if facts.quarantined.get(table, {}) != quarantinable:
        return None
    unknown = injected.get(UNKNOWN_EVENT_NAME, 0)
    if unknown and facts.unknown_events != unknown:
        return None
    text = f"{sum(quarantinable.values()):,} bad rows injected ({_counts(quarantinable)})"
    if quarantinable:
        text += ", all quarantined by staging with those reasons"
    if unknown:
        text += f"; {unknown:,} events with unknown names injected, kept and flagged"
    return text + f"; GX warnings: {', '.join(rules)}"


def classify(
    failed: Sequence[FailedCheck], *, warehouse: Path, landing_dir: Path, run_id: str
) -> CheckReport:
    defects = load_injected_defects(landing_dir)
    facts = read_facts(warehouse, run_id)
    expected, real = [], []
    for check in failed:
        explanation = explain(check, defects, facts)
        if explanation is None:
            real.append(check)
        else:
            expected.append(ExpectedCheck(check, explanation))
    return CheckReport(expected, real, injected_defects_file(landing_dir) if defects else None)


def format_report(report: CheckReport, notes: Sequence[str] = ()) -> str:
    """The failed checks in two groups, then notes on checks that passed without judging
    (e.g. too little data for the churn comparison)."""
    lines = []
    if report.expected:
        lines.append(
            f"Expected: {len(report.expected)} landing check(s) warn about the bad rows the "
            "generator injects on purpose (userops generate --bad-row-share; counts in "
            f"{report.defects_file}), quarantined as designed:"
        )
        for item in report.expected:
            lines.append(f"  {item.check.asset_key}: {item.explanation}")
    if report.failed:
        lines.append(f"Failed checks ({len(report.failed)}):")
        lines += [f"  failed check {check.line()}" for check in report.failed]
    elif report.expected:
        lines.append("No other check failed.")
    if notes:
        lines.append("Passed without comparing:")
        lines += [f"  {note}" for note in notes]
    return "\n".join(lines)
