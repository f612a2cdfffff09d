"""The experiment engine (实验分析): A/B tests and audience holdouts, one set of statistics.

Input: marts.experiment_user_metrics, one row per (experiment, user, metric) with the user's
variant, the metric after the first exposure (post_value) and in the same-length window before
it (pre_value). Output: ops.experiment_results, one row per (experiment, treatment variant,
metric) against the experiment's control. docs/operations_loop.md states the formulas; the
tests check them against scipy / statsmodels and by simulation.

Per experiment
- sample-ratio mismatch (SRM): Pearson chi-square of users per variant against the planned
  allocation shares; `has_srm` when p < srm_alpha (0.001): the split itself is broken and no
  result of the experiment should be trusted.
Per (treatment variant, metric), with z = the normal quantile of 1 - alpha / 2
- difference of means, Welch standard error sqrt(s_t^2 / n_t + s_c^2 / n_c), z interval and
  two-sided p-value;
- relative lift difference / control mean, delta-method standard error
  sqrt(var(mean_t) / mean_c^2 + mean_t^2 var(mean_c) / mean_c^4);
- CUPED: theta = cov(post, pre) / var(pre) over all users of the two variants, each user's
  post - theta (pre - pooled mean of pre); difference, interval, p-value and relative lift on the
  adjusted values; variance_reduction = 1 - var(adjusted difference) / var(raw difference);
- Holm: the CUPED p-values of one (experiment, variant) across its metrics, step-down adjusted;
  `is_significant` when the Holm p-value < alpha;
- always-valid interval (confidence sequence, Waudby-Smith et al. 2023, eq. 9, as GrowthBook's
  sequential testing uses it) around the CUPED difference: with n = n_t + n_c,
  s2 = SE^2 n, rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N) and the tuning N
  (sequential_tuning_parameter, 5000), half-width sqrt(s2) sqrt(2 (n rho^2 + 1)
  ln(sqrt(n rho^2 + 1) / alpha) / (n rho)^2). It holds at every look at once, so reading the
  result daily does not inflate false positives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from userops.quality.results import OPS_SCHEMA, utc_now

ALPHA = 0.05
SRM_ALPHA = 0.001
SEQUENTIAL_TUNING = 5000.0

RESULTS_DDL = f"""
create table if not exists {OPS_SCHEMA}.experiment_results (
    experiment_id varchar not null,
    experiment_kind varchar not null,
    variant varchar not null,
    control_variant varchar not null,
    metric_code varchar not null,
    control_users bigint not null,
    treatment_users bigint not null,
    control_mean double,
    treatment_mean double,
    difference double,
    difference_ci_lower double,
    difference_ci_upper double,
    p_value double,
    relative_lift double,
    relative_lift_ci_lower double,
    relative_lift_ci_upper double,
    cuped_theta double,
    cuped_difference double,
    cuped_ci_lower double,
    cuped_ci_upper double,
    cuped_p_value double,
    cuped_relative_lift double,
    cuped_relative_lift_ci_lower double,
    cuped_relative_lift_ci_upper double,
    variance_reduction double,
    holm_p_value double,
    is_significant boolean,
    sequential_ci_lower double,
    sequential_ci_upper double,
    srm_chi_square double,
    srm_p_value double,
    has_srm boolean,
    is_window_complete boolean,
    analysed_at timestamp not null,
    primary key (experiment_id, variant, metric_code)
)
"""


@dataclass(frozen=True)
class Comparison:
    """Two-sample statistics of one metric: treatment vs control."""

    control_users: int
    treatment_users: int
    control_mean: float
    treatment_mean: float
    difference: float
    standard_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    relative_lift: float
    relative_ci_lower: float
    relative_ci_upper: float


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def compare_means(treatment: np.ndarray, control: np.ndarray, alpha: float = ALPHA) -> Comparison:
    """Difference and relative lift of means with Welch / delta-method normal intervals."""
    treatment, control = np.asarray(treatment, float), np.asarray(control, float)
    n_t, n_c = len(treatment), len(control)
    mean_t, mean_c = treatment.mean(), control.mean()
    var_mean_t = treatment.var(ddof=1) / n_t if n_t > 1 else math.nan
    var_mean_c = control.var(ddof=1) / n_c if n_c > 1 else math.nan
    z = _z(alpha)
    difference = mean_t - mean_c
    se = math.sqrt(var_mean_t + var_mean_c)
    p_value = 2 * stats.norm.sf(abs(difference) / se) if se > 0 else math.nan
    if mean_c != 0:
        relative = difference / mean_c
        se_relative = math.sqrt(var_mean_t / mean_c**2 + mean_t**2 * var_mean_c / mean_c**4)
    else:
        relative = se_relative = math.nan
    return Comparison(
        control_users=n_c,
        treatment_users=n_t,
        control_mean=float(mean_c),
        treatment_mean=float(mean_t),
        difference=float(difference),
        standard_error=se,
        ci_lower=difference - z * se,
        ci_upper=difference + z * se,
        p_value=float(p_value),
        relative_lift=relative,
        relative_ci_lower=relative - z * se_relative,
        relative_ci_upper=relative + z * se_relative,
    )


def cuped_theta(post: np.ndarray, pre: np.ndarray) -> float:
    """cov(post, pre) / var(pre); 0 when the covariate does not vary (no adjustment)."""
    pre, post = np.asarray(pre, float), np.asarray(post, float)
    variance = pre.var(ddof=1) if len(pre) > 1 else 0.0
    if variance == 0:
        return 0.0
    return float(np.cov(post, pre, ddof=1)[0, 1] / variance)


def cuped_adjust(
    post_t: np.ndarray, pre_t: np.ndarray, post_c: np.ndarray, pre_c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """CUPED-adjusted values of both groups with the pooled theta and pooled covariate mean."""
    post = np.concatenate([post_t, post_c])
    pre = np.concatenate([pre_t, pre_c])
    theta = cuped_theta(post, pre)
    centre = pre.mean()
    return post_t - theta * (pre_t - centre), post_c - theta * (pre_c - centre), theta


def srm_test(observed: Sequence[int], shares: Sequence[float]) -> tuple[float, float]:
    """Pearson chi-square of observed counts against planned shares: (statistic, p-value)."""
    observed_array = np.asarray(observed, float)
    expected = np.asarray(shares, float) / np.sum(shares) * observed_array.sum()
    if observed_array.sum() == 0 or len(observed_array) < 2:
        return math.nan, math.nan
    statistic = float(((observed_array - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.sf(statistic, len(observed_array) - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted)."""
    values = np.asarray(p_values, float)
    adjusted = np.full(len(values), math.nan)
    valid = np.flatnonzero(~np.isnan(values))
    order = valid[np.argsort(values[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def sequential_rho(alpha: float = ALPHA, tuning: float = SEQUENTIAL_TUNING) -> float:
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning)


def sequential_halfwidth(
    standard_error: float, n: int, alpha: float = ALPHA, tuning: float = SEQUENTIAL_TUNING
) -> float:
    """Half-width of the always-valid interval of an estimate with this standard error from n
    observations in all (Waudby-Smith et al. 2023, eq. 9, two-sided normal mixture)."""
    if n < 1 or not standard_error > 0:
        return math.nan
    rho = sequential_rho(alpha, tuning)
    s2 = standard_error**2 * n
    spread = n * rho**2 + 1
    return math.sqrt(s2) * math.sqrt(
        2 * spread * math.log(math.sqrt(spread) / alpha) / (n * rho) ** 2
    )


@dataclass(frozen=True)
class Result:
    experiment_id: str
    experiment_kind: str
    variant: str
    control_variant: str
    metric_code: str
    control_users: int
    treatment_users: int
    control_mean: float
    treatment_mean: float
    difference: float
    difference_ci_lower: float
    difference_ci_upper: float
    p_value: float
    relative_lift: float
    relative_lift_ci_lower: float
    relative_lift_ci_upper: float
    cuped_theta: float
    cuped_difference: float
    cuped_ci_lower: float
    cuped_ci_upper: float
    cuped_p_value: float
    cuped_relative_lift: float
    cuped_relative_lift_ci_lower: float
    cuped_relative_lift_ci_upper: float
    variance_reduction: float
    holm_p_value: float
    is_significant: bool
    sequential_ci_lower: float
    sequential_ci_upper: float
    srm_chi_square: float
    srm_p_value: float
    has_srm: bool
    is_window_complete: bool


def analyse_experiment(
    rows: pd.DataFrame,
    allocation: dict[str, float],
    control: str,
    *,
    alpha: float = ALPHA,
    srm_alpha: float = SRM_ALPHA,
    tuning: float = SEQUENTIAL_TUNING,
) -> list[Result]:
    """Results of one experiment. rows: experiment_id, experiment_kind, user_id, variant,
    metric_code, pre_value, post_value, is_window_complete (one row per user and metric)."""
    if rows.empty:
        return []
    experiment_id = str(rows["experiment_id"].iloc[0])
    kind = str(rows["experiment_kind"].iloc[0])
    users = rows.drop_duplicates("user_id")[["user_id", "variant"]]
    variants = sorted(allocation)
    counts = users["variant"].value_counts()
    srm_statistic, srm_p = srm_test(
        [int(counts.get(v, 0)) for v in variants], [allocation[v] for v in variants]
    )
    complete = bool(rows["is_window_complete"].all())
    results: list[Result] = []
    for variant in variants:
        if variant == control:
            continue
        pending: list[dict] = []
        for metric_code, metric_rows in rows.groupby("metric_code", sort=True):
            t = metric_rows[metric_rows["variant"] == variant]
            c = metric_rows[metric_rows["variant"] == control]
            if len(t) < 2 or len(c) < 2:
                continue
            raw = compare_means(t["post_value"].to_numpy(), c["post_value"].to_numpy(), alpha)
            adjusted_t, adjusted_c, theta = cuped_adjust(
                t["post_value"].to_numpy(float), t["pre_value"].to_numpy(float),
                c["post_value"].to_numpy(float), c["pre_value"].to_numpy(float),
            )  # fmt: skip
            cuped = compare_means(adjusted_t, adjusted_c, alpha)
            half = sequential_halfwidth(cuped.standard_error, len(t) + len(c), alpha, tuning)
            reduction = (
                1 - cuped.standard_error**2 / raw.standard_error**2
                if raw.standard_error > 0
                else math.nan
            )
            pending.append(
                {
                    "experiment_id": experiment_id,
                    "experiment_kind": kind,
                    "variant": variant,
                    "control_variant": control,
                    "metric_code": str(metric_code),
                    "control_users": raw.control_users,
                    "treatment_users": raw.treatment_users,
                    "control_mean": raw.control_mean,
                    "treatment_mean": raw.treatment_mean,
                    "difference": raw.difference,
                    "difference_ci_lower": raw.ci_lower,
                    "difference_ci_upper": raw.ci_upper,
                    "p_value": raw.p_value,
                    "relative_lift": raw.relative_lift,
                    "relative_lift_ci_lower": raw.relative_ci_lower,
                    "relative_lift_ci_upper": raw.relative_ci_upper,
                    "cuped_theta": theta,
                    "cuped_difference": cuped.difference,
                    "cuped_ci_lower": cuped.ci_lower,
                    "cuped_ci_upper": cuped.ci_upper,
                    "cuped_p_value": cuped.p_value,
                    "cuped_relative_lift": cuped.relative_lift,
                    "cuped_relative_lift_ci_lower": cuped.relative_ci_lower,
                    "cuped_relative_lift_ci_upper": cuped.relative_ci_upper,
                    "variance_reduction": reduction,
                    "sequential_ci_lower": cuped.difference - half,
                    "sequential_ci_upper": cuped.difference + half,
                    "srm_chi_square": srm_statistic,
                    "srm_p_value": srm_p,
                    "has_srm": bool(srm_p < srm_alpha) if not math.isnan(srm_p) else False,
                    "is_window_complete": complete,
                }
            )
        adjusted = holm([row["cuped_p_value"] for row in pending])
        for row, holm_p in zip(pending, adjusted, strict=True):
            significant = bool(holm_p < alpha) if not math.isnan(holm_p) else False
            results.append(Result(**row, holm_p_value=holm_p, is_significant=significant))
    return results


def read_inputs(warehouse_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-user metric rows, variants with allocation shares) from the marts."""
    with duckdb.connect(str(warehouse_path)) as connection:
        rows = connection.execute(
            "select experiment_id, experiment_kind, user_id, variant, metric_code,"
            " cast(pre_value as double) as pre_value, cast(post_value as double) as post_value,"
            " is_window_complete from marts.experiment_user_metrics"
        ).df()
        variants = connection.execute(
            "select experiment_id, variant, is_control, allocation_share from marts.experiment_arms"
        ).df()
    return rows, variants


def analyse(rows: pd.DataFrame, variants: pd.DataFrame, **options: float) -> list[Result]:
    results: list[Result] = []
    for experiment_id, arms in variants.groupby("experiment_id", sort=True):
        controls = arms.loc[arms["is_control"], "variant"].tolist()
        if len(controls) != 1:
            raise ValueError(f"experiment {experiment_id}: needs exactly one control variant")
        allocation = dict(zip(arms["variant"], arms["allocation_share"].astype(float), strict=True))
        subset = rows[rows["experiment_id"] == experiment_id]
        results.extend(analyse_experiment(subset, allocation, controls[0], **options))
    return results


def write_results(warehouse_path: Path, results: Iterable[Result]) -> int:
    """Replace ops.experiment_results with this analysis (one transaction)."""
    frame = pd.DataFrame([asdict(result) for result in results])
    analysed_at = utc_now()
    with duckdb.connect(str(warehouse_path)) as connection:
        connection.execute(f"create schema if not exists {OPS_SCHEMA}").fetchall()
        connection.execute(RESULTS_DDL).fetchall()
        connection.execute("begin transaction").fetchall()
        connection.execute(f"delete from {OPS_SCHEMA}.experiment_results").fetchall()
        if not frame.empty:
            frame["analysed_at"] = analysed_at
            connection.register("new_results", frame)
            columns = ", ".join(frame.columns)
            connection.execute(
                f"insert into {OPS_SCHEMA}.experiment_results ({columns})"
                f" select {columns} from new_results"
            ).fetchall()
        connection.execute("commit").fetchall()
    return len(frame)


def run(warehouse_path: Path) -> list[Result]:
    rows, variants = read_inputs(warehouse_path)
    results = analyse(rows, variants)
    write_results(warehouse_path, results)
    return results
