"""marts.experiment_results, the experiment engine in SQL that BI reads, against the scipy
engine (userops/experiments.py, itself checked against statsmodels and by simulation in
test_experiments.py): the same rows and values on the sample build, and the closed-form
distribution functions of macros/metrics/statistics.sql against scipy."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import duckdb
import pytest
from conftest import Build
from scipy import stats

from userops.dbt import run_dbt
from userops.experiments import analyse, read_inputs

KEY = ("experiment_id", "variant", "metric_code")
# The SQL p-values come from a Chebyshev fit of erfc (fractional error < 1.2e-7) and z from
# Acklam's quantile (relative error < 1.15e-9); everything else is the same arithmetic.
P_VALUE_COLUMNS = {"p_value", "cuped_p_value", "holm_p_value", "srm_p_value"}


def close(left: float | None, right: float, column: str) -> bool:
    if right is None or (isinstance(right, float) and math.isnan(right)):
        return left is None
    if left is None:
        return False
    tolerance = 2e-7 if column in P_VALUE_COLUMNS else 1e-8
    # A bound near 0 carries z's absolute error times the SE (< 1e-9 here).
    return math.isclose(left, right, rel_tol=tolerance, abs_tol=1e-8)


def test_mart_equals_the_scipy_engine_on_the_sample(sample_build: Build) -> None:
    rows, arms = read_inputs(sample_build.warehouse_path)
    expected = {tuple(getattr(r, k) for k in KEY): asdict(r) for r in analyse(rows, arms)}
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        cursor = connection.execute("select * from marts.experiment_results")
        columns = [d[0] for d in cursor.description]
        found = {
            tuple(row[columns.index(k)] for k in KEY): dict(zip(columns, row, strict=True))
            for row in cursor.fetchall()
        }
    assert set(found) == set(expected)
    # A/B tests and audience holdouts, several metrics each: Holm has something to adjust.
    assert len({key[0] for key in found}) > 5 and len(found) > 20
    wrong = []
    for key, reference in expected.items():
        for column, value in reference.items():
            mart = found[key][column]
            if isinstance(value, (bool, str, int)):
                if mart != value:
                    wrong.append((key, column, mart, value))
            elif not close(mart, value, column):
                wrong.append((key, column, mart, value))
    assert wrong == []
    # Holm changed something: the adjusted p-value exceeds the raw one somewhere.
    assert any(r["holm_p_value"] > r["cuped_p_value"] * 1.5 for r in found.values())


def test_distribution_macros_match_scipy(sample_landing: Path, tmp_path: Path) -> None:
    cases: list[tuple[str, float, int, float]] = []
    selects = []
    for x in (0.01, 0.4, 1.0, 3.5, 10.0, 30.0):
        for df in range(1, 8):
            cases.append(("chi2", x, df, float(stats.chi2.sf(x, df))))
            selects.append(f"{{{{ chi_square_upper_tail('{x}', '{df}', 7) }}}}")
    for z in (0.0, 0.3, 1.0, 1.96, 3.0, 5.0, -2.5):
        cases.append(("normal_p", z, 0, float(2 * stats.norm.sf(abs(z)))))
        selects.append(f"{{{{ normal_two_sided_p('{z}') }}}}")
    for p in (0.001, 0.02, 0.3, 0.5, 0.9, 0.975, 0.9995):
        cases.append(("quantile", p, 0, float(stats.norm.ppf(p))))
        selects.append(f"{{{{ normal_quantile({p}) }}}}")
    sql = "\nunion all\n".join(
        f"select {i} as case_number, {expression} as value" for i, expression in enumerate(selects)
    )
    result = run_dbt(
        ["show", "--inline", sql, "--output", "json", "--quiet", "--limit", "-1"],
        landing_dir=sample_landing,
        warehouse_path=tmp_path / "show.duckdb",
        capture=True,
        target_path=tmp_path / "target",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    values = {row["case_number"]: row["value"] for row in json.loads(result.stdout)["show"]}
    for number, (kind, argument, df, reference) in enumerate(cases):
        tolerance = 2e-9 if kind == "quantile" else 2e-7
        assert values[number] == pytest.approx(reference, rel=tolerance, abs=1e-12), (
            kind,
            argument,
            df,
        )
