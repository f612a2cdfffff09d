"""The MetricFlow semantic layer: `mf query` returns the marts' numbers for every metric it defines,
and the documented command works from a shell without the venv."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import yaml
from conftest import PROJECT_DIR, Build

from userops.semantic import manifest_is_stale, reads_warehouse

CATALOGUE = PROJECT_DIR / "seeds" / "metric_catalogue.csv"
METRICS_YAML = PROJECT_DIR / "models" / "marts" / "metrics" / "_metrics.yml"
DOCS = PROJECT_DIR / "docs" / "metrics.md"
README = PROJECT_DIR / "README.md"
# daily_metrics columns named other than their catalogue code.
MART_COLUMNS = {
    "d1_retention": "d1_retention_rate",
    "d7_retention": "d7_retention_rate",
    "d30_retention": "d30_retention_rate",
}
# Cumulative windows go on past the latest data day for as long as the window holds one.
LONGEST_WINDOW_DAYS = 30
# satisfaction_metric_values' metrics (from its overall rows) and the 30-day counts behind them,
# counted here from the staged answers and tickets.
SATISFACTION_CODES = {
    "nps", "csat", "survey_response_rate", "complaints_per_active_user", "first_reply_hours",
    "resolution_hours",
}  # fmt: skip
ANSWER_COUNTS = {
    "nps_answers_30d", "promoters_30d", "detractors_30d", "csat_answers_30d",
    "satisfied_csat_answers_30d", "active_respondents_30d",
}  # fmt: skip
SATISFACTION_COUNTS_SQL = """
with days as (select metric_date from marts.daily_metrics),
answers as (
    select
        days.metric_date,
        count(feedback.feedback_id) as answer_rows,
        sum(case when feedback.survey_type = 'nps' then 1 else 0 end) as nps_answers_30d,
        sum(case when feedback.score >= 9 and feedback.survey_type = 'nps' then 1 else 0 end)
            as promoters_30d,
        sum(case when feedback.score <= 6 and feedback.survey_type = 'nps' then 1 else 0 end)
            as detractors_30d,
        sum(case when feedback.survey_type = 'csat' then 1 else 0 end) as csat_answers_30d,
        sum(case when feedback.score >= 4 and feedback.survey_type = 'csat' then 1 else 0 end)
            as satisfied_csat_answers_30d,
        count(distinct case when user_days.is_active then feedback.user_id end)
            as active_respondents_30d
    from days
    left join staging.stg_landing__feedback as feedback
        on feedback.submitted_date <= days.metric_date
        and feedback.submitted_date > days.metric_date - interval 30 day
    left join intermediate.int_user_days_aggregated as user_days
        on feedback.user_id = user_days.user_id
        and feedback.submitted_date = user_days.activity_date
    group by days.metric_date
),
tickets as (
    select
        days.metric_date,
        count(tickets.ticket_id) as ticket_rows,
        sum(case when tickets.category = 'complaint' then 1 else 0 end) as complaint_tickets_30d,
        count(tickets.first_replied_at) as replied_tickets_30d,
        sum(coalesce(tickets.first_reply_hours, 0)) as first_reply_hours_30d,
        count(tickets.resolved_at) as resolved_tickets_30d,
        sum(coalesce(tickets.resolution_hours, 0)) as resolution_hours_30d
    from days
    left join staging.stg_landing__service_tickets as tickets
        on tickets.opened_date <= days.metric_date
        and tickets.opened_date > days.metric_date - interval 30 day
    group by days.metric_date
)
select * from answers inner join tickets using (metric_date)
"""

# Every query of the test in one process: the wrapper README documents, called once per grain.
MF_QUERIES = """
import json, sys
from pathlib import Path
from userops.semantic import run_mf
warehouse, *queries = json.loads(sys.argv[1])
for metrics, group_by, out in queries:
    code = run_mf(["query", "--metrics", ",".join(metrics), "--group-by", group_by,
                   "--csv", out, "--quiet"], Path(warehouse))
    if code:
        sys.exit(code)
"""


def metricflow_metrics() -> dict[str, dict]:
    return {
        m["name"]: m for m in yaml.safe_load(METRICS_YAML.read_text(encoding="utf-8"))["metrics"]
    }


def catalogue() -> dict[str, dict[str, str]]:
    with CATALOGUE.open(newline="", encoding="utf-8") as handle:
        return {row["metric_code"]: row for row in csv.DictReader(handle)}


def docs_section(text: str, title_word: str) -> str:
    """The text from the first heading that names title_word to the next heading of its level."""
    heading = re.search(rf"^(#+) .*{title_word}.*$", text, flags=re.M)
    assert heading, title_word
    end = re.search(rf"^{heading[1]} ", text[heading.end() :], flags=re.M)
    return text[heading.start() : heading.end() + end.start() if end else len(text)]


def coverage_table(text: str) -> dict[str, tuple[str, str]]:
    """docs/metrics.md's MetricFlow table: {metric: (MetricFlow type, note)}."""
    rows = {}
    for line in docs_section(text, "MetricFlow").splitlines():
        match = re.match(r"\| `(\w+)` \| ([^|]+) \| [^|]* \|(.*)\|$", line)
        if match:
            rows[match[1]] = (match[2].strip(), match[3].strip())
    return rows


def documented_command(text: str) -> str:
    """The bash block of a document's MetricFlow section."""
    [block] = re.findall(r"```bash\n(.*?)```", docs_section(text, "MetricFlow"), flags=re.S)
    return block.strip()


def read_mf_csv(path: Path, time_column: str) -> dict[str, dict[str, float | None]]:
    """mf query --csv output as {day: {metric: value}}; an empty cell is null."""
    rows: dict[str, dict[str, float | None]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            day = row.pop(time_column)[:10]
            rows[day] = {metric: float(value) if value else None for metric, value in row.items()}
    return rows


def test_read_mf_csv_keeps_empty_cells_null(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("metric_time__day,gmv,aov\n2026-04-02 00:00:00,24.5,0\n2026-04-03,,\n")
    assert read_mf_csv(path, "metric_time__day") == {
        "2026-04-02": {"gmv": 24.5, "aov": 0.0},
        "2026-04-03": {"gmv": None, "aov": None},
    }


def test_coverage_table_and_command_are_read_from_the_docs() -> None:
    text = (
        "## MetricFlow (semantic layer)\n\n```bash\n.venv/bin/userops mf query --metrics dau\n```\n"
        "| metric | MetricFlow type | from | note |\n|---|---|---|---|\n"
        "| `dau` | simple | `user_days` | Distinct active users. |\n"
        "| `x` | not expressible | — | Needs a lag. |\n\n## Next\n| `y` | simple | a | b |\n"
    )
    assert coverage_table(text) == {
        "dau": ("simple", "Distinct active users."),
        "x": ("not expressible", "Needs a lag."),
    }
    assert documented_command(text) == ".venv/bin/userops mf query --metrics dau"


def test_every_catalogue_metric_is_defined_or_listed_with_a_reason() -> None:
    metrics = metricflow_metrics()
    table = coverage_table(DOCS.read_text(encoding="utf-8"))
    assert set(table) == set(catalogue())
    for code, row in catalogue().items():
        kind, note = table[code]
        if kind == "not expressible":
            assert code not in metrics and len(note) > 40, code
            continue
        assert metrics[code]["type"] == kind, code
        # One definition: MetricFlow describes a metric in the catalogue's words.
        assert " ".join(metrics[code]["description"].split()) == row["definition"], code
    defined = [code for code in catalogue() if table[code][0] != "not expressible"]
    assert len(defined) == 33 and len(catalogue()) == 34


def test_satisfaction_windows_are_the_dbt_var() -> None:
    """MetricFlow's windows are literals; satisfaction_metric_values reads the var."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    window = f"{project['vars']['satisfaction_window_days']} days"
    thirty_day = [m for name, m in metricflow_metrics().items() if name.endswith("_30d")]
    assert len(thirty_day) == 12  # the 11 satisfaction counts and referral_conversions_30d
    for metric in thirty_day:
        assert metric["type_params"]["cumulative_type_params"]["window"] == window, metric


def test_manifest_is_stale_when_a_parsed_file_is_newer(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "a.yml"
    model.write_text("version: 2\n")
    assert manifest_is_stale(tmp_path)  # never parsed
    manifest = tmp_path / "target" / "semantic_manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    os.utime(model, (1_000, 1_000))
    os.utime(manifest, (2_000, 2_000))
    assert not manifest_is_stale(tmp_path)
    # Files dbt does not parse (Python tests, bytecode) never force a parse.
    (tmp_path / "models" / "note.pyc").write_bytes(b"")
    assert not manifest_is_stale(tmp_path)
    os.utime(model, (3_000, 3_000))
    assert manifest_is_stale(tmp_path)


def test_reads_warehouse_only_for_commands_that_run_sql() -> None:
    assert reads_warehouse(["query", "--metrics", "dau"])
    assert reads_warehouse(["list", "dimension-values", "--metrics", "dau"])
    assert reads_warehouse(["validate-configs"])
    assert not reads_warehouse(["validate-configs", "--skip-dw"])
    assert not reads_warehouse(["list", "metrics"])
    assert not reads_warehouse(["query", "--help"])


def copy_project(target: Path) -> Path:
    """A copy of the dbt project whose .venv is this interpreter's: a parse writes target/ and
    logs/ there, not in the checkout, and `.venv/bin/...` commands run from it as documented."""
    for name in ["models", "macros", "seeds", "tests", "analyses", "snapshots"]:
        if (PROJECT_DIR / name).exists():
            shutil.copytree(
                PROJECT_DIR / name, target / name, ignore=shutil.ignore_patterns("python")
            )
    for name in ["dbt_project.yml", "profiles.yml"]:
        shutil.copy(PROJECT_DIR / name, target / name)
    (target / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return target


def shell_without_venv(project: Path, warehouse: Path) -> dict[str, str]:
    """A new user's shell: no venv activated, nothing of the venv on PATH, no dbt variables;
    DBT_PROJECT_DIR (read by dbt, mf and userops mf) points at the copy, not the checkout."""
    return {
        "HOME": os.environ.get("HOME", str(project)),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "USEROPS_DUCKDB_PATH": str(warehouse),
        "DBT_PROJECT_DIR": str(project),
    }


def marts_expectations(build: Build, daily_codes: set[str]) -> tuple[dict, dict]:
    """What every MetricFlow metric must return, per day and per month, from the marts:
    daily_codes (catalogue metrics) from daily_metrics, the counts behind ratios from the marts
    that hold them."""
    with duckdb.connect(str(build.warehouse_path), read_only=True) as connection:

        def rows(sql: str) -> dict[str, dict]:
            cursor = connection.execute(sql)
            names = [column[0] for column in cursor.description]
            return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}

        daily = rows("select * from marts.daily_metrics")
        segment_days = rows(
            "select * from intermediate.int_metric_segment_days_aggregated"
            " where segment_dimension = 'overall'"
        )
        cohorts = rows(
            "select * from marts.n_day_retention_rates where segment_dimension = 'overall'"
        )
        months = rows(
            "select * from marts.monthly_repurchase_rates where group_dimension = 'overall'"
        )
        satisfaction = rows(
            "pivot (select metric_date, metric_code, metric_value"
            " from marts.satisfaction_metric_values where dimension = 'overall')"
            " on metric_code using first(metric_value)"
        )
        satisfaction_counts = rows(SATISFACTION_COUNTS_SQL)

    def times(rate: float | None, denominator: int | None) -> float | None:
        # A count behind a ratio, where the mart's ratio pins it down (denominator > 0).
        return None if not denominator else (rate or 0) * denominator

    by_day: dict[str, dict[str, float | None]] = {}
    for day, mart in daily.items():
        segment, cohort = segment_days[day], cohorts.get(day, {})
        activation_closed = segment["is_activation_window_closed"]
        roi_closed = segment["is_roi_window_closed"]
        expected = {
            code: mart[MART_COLUMNS.get(code, code)] for code in daily_codes - SATISFACTION_CODES
        }
        expected |= {
            "searching_users": times(mart["search_rate"], mart["dau"]),
            "carting_users": times(mart["add_to_cart_rate"], mart["dau"]),
            "active_sessions": times(mart["sessions_per_active_user"], mart["dau"]),
            "coupon_orders": times(mart["coupon_order_share"], mart["orders"]),
            "referral_conversions_30d": times(mart["k_factor"], mart["mau"]),
            "activation_cohort_users": segment["new_users"] if activation_closed else None,
            "activated_users": segment["activated_users"] if activation_closed else None,
            "roi_spend": segment["marketing_spend"] if roi_closed else None,
            "roi_new_user_gmv": segment["new_user_window_gmv"]
            if roi_closed and segment["marketing_spend"] is not None
            else None,
        }
        for horizon in (1, 7, 30):
            retained = cohort.get(f"d{horizon}_retained_users")
            expected[f"d{horizon}_retained_users"] = retained
            expected[f"d{horizon}_cohort_users"] = (
                cohort["new_users"] if retained is not None else None
            )
        expected |= {code: satisfaction[day][code] for code in daily_codes & SATISFACTION_CODES}
        # MetricFlow has no row for a 30-day count whose window holds no answer (no ticket).
        counts = satisfaction_counts[day]
        for metric, value in counts.items():
            if metric.endswith("_30d"):
                rows_column = "answer_rows" if metric in ANSWER_COUNTS else "ticket_rows"
                expected[metric] = value if counts[rows_column] else None
        by_day[day] = expected
    by_month = {
        month: {
            "repurchase_rate": mart["repurchase_rate"],
            "month_buyers": mart["buyers"],
            "month_repeat_buyers": mart["repeat_buyers"],
        }
        for month, mart in months.items()
    }
    return by_day, by_month


def assert_same(
    from_mf: dict[str, dict[str, float | None]],
    expected: dict[str, dict[str, float | None]],
    uncheckable: set[tuple[str, str]] = frozenset(),
) -> int:
    """Every expected (period, metric) equals MetricFlow's value, null for null; returns the
    number of values compared."""
    compared = 0
    for period, values in expected.items():
        assert period in from_mf, period
        for metric, value in values.items():
            if (period, metric) in uncheckable:
                continue
            got = from_mf[period][metric]
            if value is None:
                assert got is None, (period, metric, got)
            else:
                assert got is not None and math.isclose(
                    got, float(value), rel_tol=1e-9, abs_tol=1e-9
                ), (period, metric, got, value)
            compared += 1
    return compared


def test_metricflow_returns_the_marts_numbers(sample_build: Build, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    env = shell_without_venv(project, sample_build.warehouse_path)

    # The command README and docs/metrics.md give, exactly as written, in a shell without the
    # venv (the first run parses the project).
    readme_command = documented_command(README.read_text(encoding="utf-8"))
    assert readme_command == documented_command(DOCS.read_text(encoding="utf-8"))
    shown = subprocess.run(
        ["bash", "-c", readme_command], cwd=project, env=env, text=True, capture_output=True
    )
    assert shown.returncode == 0, (shown.stdout + shown.stderr)[-3000:]
    assert (project / "target" / "semantic_manifest.json").is_file()
    days = [
        line.split()[0][:10]
        for line in shown.stdout.splitlines()
        if re.match(r"\d{4}-\d\d-\d\dT", line)
    ]
    assert len(days) > 30 and days == sorted(days), shown.stdout[-2000:]

    # Every metric, both grains, in one process.
    metrics = metricflow_metrics()
    monthly = {"repurchase_rate", "month_buyers", "month_repeat_buyers"}
    daily = sorted(set(metrics) - monthly)
    day_csv, month_csv = tmp_path / "days.csv", tmp_path / "months.csv"
    queries = [
        str(sample_build.warehouse_path),
        [daily, "metric_time__day", str(day_csv)],
        [sorted(monthly), "metric_time__month", str(month_csv)],
    ]
    ran = subprocess.run(
        [sys.executable, "-c", MF_QUERIES, json.dumps(queries)],
        cwd=project,
        env=env,
        text=True,
        capture_output=True,
    )
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    assert "parsing" not in ran.stderr  # the README command's parse is reused
    from_mf_days = read_mf_csv(day_csv, "metric_time__day")
    from_mf_months = read_mf_csv(month_csv, "metric_time__month")

    by_day, by_month = marts_expectations(sample_build, set(daily) & set(catalogue()))
    # Every metric MetricFlow defines is checked, against a mart number.
    assert {m for values in by_day.values() for m in values} == set(daily)
    assert {m for values in by_month.values() for m in values} == monthly
    assert len(by_day) == 45 and len(by_month) == 2
    # A count pinned down by a ratio is unchecked only where the mart's denominator is 0.
    uncheckable = {
        (day, metric)
        for day, values in by_day.items()
        for metric, value in values.items()
        if value is None
        and metric in {"searching_users", "carting_users", "active_sessions", "coupon_orders",
                       "referral_conversions_30d"}
    }  # fmt: skip
    assert len(uncheckable) <= 5
    compared = assert_same(from_mf_days, by_day, uncheckable)
    assert compared == 45 * len(daily) - len(uncheckable)
    assert assert_same(from_mf_months, by_month) == 2 * 3
    # Nulls were compared too: open windows (activation, ROI, D1/D7/D30) and empty denominators.
    nulls = sum(value is None for values in by_day.values() for value in values.values())
    assert nulls > 150

    # After the latest data day MetricFlow goes on only while a cumulative window holds a day.
    latest = date.fromisoformat(max(by_day))
    extra = sorted(set(from_mf_days) - set(by_day))
    assert extra[0] > max(by_day)
    assert extra[-1] <= str(latest + timedelta(days=LONGEST_WINDOW_DAYS - 1))


def test_userops_mf_without_a_warehouse_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "missing.duckdb"
    userops = Path(sys.executable).with_name("userops")
    result = subprocess.run(
        [str(userops), "mf", "--warehouse", str(missing), "query", "--metrics", "dau"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        text=True,
        capture_output=True,
    )
    assert result.returncode == 1
    assert f"userops mf: no warehouse at {missing}" in result.stderr
    assert not missing.exists()
