"""The experiment engine (userops/experiments.py): checked against scipy / statsmodels on the
same rows, and by simulation with a known effect (CUPED variance reduction and coverage, the
always-valid interval under daily peeking). On the sample build: audience holdouts analysed by
the engine agree with audience_outcomes, and detractors churn more."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import Build
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from userops import experiments
from userops.experiments import (
    analyse,
    analyse_experiment,
    compare_means,
    cuped_adjust,
    holm,
    read_inputs,
    sequential_halfwidth,
    srm_test,
    write_results,
)

SIMULATIONS = 200
# 95 % coverage over 200 runs: binomial sd = sqrt(200 x 0.95 x 0.05) = 3.1 runs; the check
# allows 3 sd either side (181 .. 199 covering runs).
COVERAGE_TOLERANCE = 3 * math.sqrt(SIMULATIONS * 0.95 * 0.05)


@pytest.fixture(scope="module")
def sample_inputs(sample_build: Build) -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_inputs(sample_build.warehouse_path)


def test_engine_matches_statsmodels_and_scipy_on_the_sample_rows(
    sample_inputs: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    rows, arms = sample_inputs
    ab = rows[rows["experiment_kind"] == "ab_test"]
    assert set(ab["experiment_id"]) == {"checkout_one_tap", "home_feed_ranking"}
    results = [r for r in analyse(rows, arms) if r.experiment_kind == "ab_test"]
    assert len(results) == 8  # 2 experiments x 1 treatment variant x 4 metrics
    for result in results:
        subset = ab[(ab["experiment_id"] == result.experiment_id)]
        metric = subset[subset["metric_code"] == result.metric_code]
        t = metric.loc[metric["variant"] == result.variant, "post_value"].to_numpy()
        c = metric.loc[metric["variant"] == result.control_variant, "post_value"].to_numpy()
        compare = CompareMeans(DescrStatsW(t), DescrStatsW(c))
        lower, upper = compare.zconfint_diff(alpha=0.05, usevar="unequal")
        _, p_value = compare.ztest_ind(usevar="unequal")
        assert result.difference_ci_lower == pytest.approx(lower, rel=1e-9, abs=1e-12)
        assert result.difference_ci_upper == pytest.approx(upper, rel=1e-9, abs=1e-12)
        assert result.p_value == pytest.approx(p_value, rel=1e-9)
        # CUPED theta is the least-squares slope of post on pre over both arms.
        pre = metric["pre_value"].to_numpy()
        post = metric["post_value"].to_numpy()
        slope = stats.linregress(pre, post).slope if pre.var() > 0 else 0.0
        assert result.cuped_theta == pytest.approx(slope, rel=1e-9, abs=1e-12)
        # SRM: scipy's chi-square goodness of fit on the users per variant.
        users = subset.drop_duplicates("user_id")["variant"].value_counts()
        shares = arms[arms["experiment_id"] == result.experiment_id].set_index("variant")
        counts = [users.get(v, 0) for v in sorted(shares.index)]
        expected = [shares.loc[v, "allocation_share"] * sum(counts) for v in sorted(shares.index)]
        chi2, srm_p = stats.chisquare(counts, expected)
        assert (result.srm_chi_square, result.srm_p_value) == pytest.approx((chi2, srm_p))
    # Holm across each test's metrics, as statsmodels computes it.
    for experiment_id in {r.experiment_id for r in results}:
        group = [r for r in results if r.experiment_id == experiment_id]
        reference = multipletests([r.cuped_p_value for r in group], method="holm")[1]
        assert [r.holm_p_value for r in group] == pytest.approx(list(reference))


def test_holm_srm_and_relative_lift_by_hand() -> None:
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])
    # 520 vs 480 on a 50/50 split: chi-square = (20^2 + 20^2) / 500 = 1.6.
    statistic, p_value = srm_test([520, 480], [0.5, 0.5])
    assert statistic == pytest.approx(1.6) and p_value == pytest.approx(0.2059, abs=1e-4)
    comparison = compare_means(np.array([2.0, 4.0]), np.array([1.0, 3.0]))
    # Means 3 vs 2: lift 0.5; var(mean) = 2 / 2 = 1 each; se = sqrt(1/4 + 9 x 1/16) = 0.9014.
    assert comparison.relative_lift == pytest.approx(0.5)
    assert (comparison.relative_ci_upper - comparison.relative_lift) / 1.959964 == pytest.approx(
        math.sqrt(1 / 4 + 9 / 16), rel=1e-6
    )


def simulate(rng: np.random.Generator, n: int, effect: float) -> tuple[np.ndarray, ...]:
    """Pre-period values and a post metric correlated with them (rho ~ 0.8), with a known
    additive treatment effect."""
    pre_t, pre_c = rng.normal(10, 3, n), rng.normal(10, 3, n)
    post_t = 2 + 0.8 * pre_t + rng.normal(0, 2, n) + effect
    post_c = 2 + 0.8 * pre_c + rng.normal(0, 2, n)
    return post_t, pre_t, post_c, pre_c


def test_cuped_reduces_variance_and_covers_the_known_effect() -> None:
    rng = np.random.default_rng(20261203)
    effect, n = 0.25, 1000
    control_mean = 2 + 0.8 * 10  # true mean of the control's post metric
    covered = {"raw": 0, "cuped": 0, "relative": 0}
    reductions = []
    for _ in range(SIMULATIONS):
        post_t, pre_t, post_c, pre_c = simulate(rng, n, effect)
        raw = compare_means(post_t, post_c)
        adjusted_t, adjusted_c, _ = cuped_adjust(post_t, pre_t, post_c, pre_c)
        cuped = compare_means(adjusted_t, adjusted_c)
        reductions.append(1 - cuped.standard_error**2 / raw.standard_error**2)
        covered["raw"] += raw.ci_lower <= effect <= raw.ci_upper
        covered["cuped"] += cuped.ci_lower <= effect <= cuped.ci_upper
        covered["relative"] += (
            cuped.relative_ci_lower <= effect / control_mean <= cuped.relative_ci_upper
        )
    # Var(post) = 0.64 x 9 + 4 = 9.76, of which 5.76 is explained by pre: reduction ~ 59 %.
    assert min(reductions) > 0.5 and np.mean(reductions) == pytest.approx(5.76 / 9.76, abs=0.02)
    for name, count in covered.items():
        assert abs(count - 0.95 * SIMULATIONS) <= COVERAGE_TOLERANCE, (name, count)


def test_always_valid_interval_keeps_false_positives_under_daily_peeking() -> None:
    """A/A tests read after each of 20 days: the fixed interval excludes 0 at some look far more
    often than 5 %; the always-valid one at most at about its nominal rate."""
    rng = np.random.default_rng(7)
    looks, per_day = 20, 100
    fixed_hits = sequential_hits = 0
    for _ in range(SIMULATIONS):
        t = rng.normal(0, 1, looks * per_day)
        c = rng.normal(0, 1, looks * per_day)
        fixed_any = sequential_any = False
        for day in range(1, looks + 1):
            comparison = compare_means(t[: day * per_day], c[: day * per_day])
            half = sequential_halfwidth(comparison.standard_error, 2 * day * per_day)
            assert half > comparison.ci_upper - comparison.difference  # always wider
            fixed_any |= not comparison.ci_lower <= 0 <= comparison.ci_upper
            sequential_any |= abs(comparison.difference) > half
        fixed_hits += fixed_any
        sequential_hits += sequential_any
    assert fixed_hits / SIMULATIONS > 0.15
    assert sequential_hits / SIMULATIONS <= 0.05 + COVERAGE_TOLERANCE / SIMULATIONS


def test_a_broken_split_is_flagged_as_sample_ratio_mismatch() -> None:
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(3000)]
    variant = np.where(np.arange(3000) < 1350, "b", "a")  # 45/55 where 50/50 was planned
    rows = pd.DataFrame(
        {
            "experiment_id": "x",
            "experiment_kind": "ab_test",
            "user_id": users,
            "variant": variant,
            "metric_code": "conversion",
            "pre_value": rng.integers(0, 2, 3000).astype(float),
            "post_value": rng.integers(0, 2, 3000).astype(float),
            "is_window_complete": True,
        }
    )
    (result,) = analyse_experiment(rows, {"a": 0.5, "b": 0.5}, "a")
    # chi-square = (150^2 + 150^2) / 1500 = 30, p = 4.3e-8.
    assert result.srm_chi_square == pytest.approx(30.0)
    assert result.has_srm and result.srm_p_value == pytest.approx(4.3e-8, rel=0.02)
    (planned,) = analyse_experiment(rows, {"a": 0.55, "b": 0.45}, "a")
    assert planned.srm_chi_square == pytest.approx(0.0) and not planned.has_srm


def test_audience_holdouts_analysed_by_the_engine_agree_with_audience_outcomes(
    sample_build: Build, sample_inputs: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rows, arms = sample_inputs
    results = [r for r in analyse(rows, arms) if r.experiment_kind == "audience"]
    assert results
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        outcomes = connection.execute(
            "select audience_id || ':' || cast(audience_date as varchar), outcome,"
            " treatment_users, holdout_users, absolute_lift from marts.audience_outcomes"
            " where treatment_users > 1 and holdout_users > 1"
        ).fetchall()
    by_key = {(r.experiment_id, r.metric_code): r for r in results}
    assert len(outcomes) > 10
    for experiment_id, outcome, treatment_users, holdout_users, lift in outcomes:
        result = by_key[(experiment_id, outcome)]
        assert (result.treatment_users, result.control_users) == (treatment_users, holdout_users)
        assert result.difference == pytest.approx(lift, abs=1e-12)


def test_results_are_written_and_replaced(sample_build: Build, tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    warehouse.write_bytes(sample_build.warehouse_path.read_bytes())
    first = experiments.run(warehouse)
    second = experiments.run(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        count, significant = connection.execute(
            "select count(*), count(*) filter (where is_significant)"
            " from ops.experiment_results where experiment_kind = 'ab_test'"
        ).fetchone()
    assert len(first) == len(second) and count == 8
    # The generator's variants change nothing (A/A): no A/B result survives Holm.
    assert significant == 0
    assert write_results(warehouse, []) == 0


def test_detractors_churn_more_on_the_marts(sample_build: Build) -> None:
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        rates = dict(
            connection.execute(
                """
                with latest as (select max(as_of_date) as as_of_date from marts.user_tags),
                nps as (
                    select user_tags.user_id, user_tags.tag_value
                    from marts.user_tags
                    inner join latest on user_tags.as_of_date = latest.as_of_date
                    where user_tags.tag_code = 'nps_category'
                )
                select
                    nps.tag_value,
                    avg(case when user_layers.lifecycle_stage in ('churned', 'silent')
                        then 1.0 else 0.0 end)
                from nps
                inner join latest on true
                inner join marts.user_layers
                    on nps.user_id = user_layers.user_id
                    and user_layers.as_of_date = latest.as_of_date
                group by nps.tag_value
                """
            ).fetchall()
        )
    assert set(rates) == {"promoter", "passive", "detractor"}
    assert rates["detractor"] > rates["passive"] > rates["promoter"]
