"""Churn model assets (流失预警): train + evaluate, score the latest cutoff.

Merged into the code location by orchestration/definitions.py through `defs`. Asset keys:

- `churn_model`  trains the gradient-boosted model, evaluates it and both baselines on the
  held-out cutoff (ml.churn_model_evaluations, ml.churn_model_calibration, asset metadata) and
  saves a versioned artefact under $USEROPS_MODEL_DIR/churn/. Upstream: the dbt models
  churn_features, churn_labels, churn_cutoffs and int_user_days_aggregated (BG/NBD reads the
  order log), i.e. the dagster-dbt default keys AssetKey([model_name]).
- `churn_scores` scores the latest cutoff with the latest model into ml.churn_scores; dbt's
  source('ml', 'churn_scores') maps onto this key (orchestration.project.UseropsTranslator),
  so retention_targets runs after it.
- `clv_scores` fits BG/NBD x Gamma-Gamma on the order log (int_user_days_aggregated), backtests
  it on a held-out period (ml.clv_backtest_deciles, ml.clv_model_fits) and writes predicted
  90/365-day value and predicted_value_tier per customer to ml.clv_scores, which dbt reads as
  source('ml', 'clv_scores') (the tag engine's predicted_value_tier).

Each asset carries its checks (check_specs), evaluated in the same step. Paths come from the
environment when a step runs (USEROPS_DUCKDB_PATH, USEROPS_LANDING_DIR, USEROPS_MODEL_DIR);
importing this module does no work.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    ConfigurableResource,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
)

from userops.churn import artefacts, pipeline
from userops.churn.config import ChurnConfig, load_config
from userops.churn.evaluation import BaselineComparison, compare_with_recency
from userops.clv import pipeline as clv_pipeline
from userops.paths import default_landing_dir, default_warehouse_path

FEATURE_MART_KEYS = [
    AssetKey(["churn_features"]),
    AssetKey(["churn_labels"]),
    AssetKey(["churn_cutoffs"]),
    AssetKey(["int_user_days_aggregated"]),
]
METRICS = ("roc_auc", "pr_auc", "brier_score", "lift_top_decile", "propensity_spearman")


class ChurnStore(ConfigurableResource):
    """Where the churn model reads and writes. Empty fields fall back to the environment
    (resolved when a step runs, so the same definitions serve every environment)."""

    warehouse_path: str = ""
    model_dir: str = ""
    truth_path: str = ""

    def warehouse(self) -> Path:
        return Path(self.warehouse_path) if self.warehouse_path else default_warehouse_path()

    def models(self) -> Path:
        return Path(self.model_dir) if self.model_dir else artefacts.default_model_dir()

    def truth(self) -> Path | None:
        """The generator's hidden ground truth next to the landing folder, when it exists
        (generated sample data only); used for evaluation, never for training."""
        path = (
            Path(self.truth_path)
            if self.truth_path
            else default_landing_dir().parent / "ground_truth" / "user_churn_truth.parquet"
        )
        return path if path.exists() else None


def evaluation_markdown(evaluations: pd.DataFrame) -> str:
    """The evaluation table as markdown for the Dagster UI."""
    header = "| model | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 1)]
    for row in evaluations.to_dict("records"):
        cells = ["n/a" if pd.isna(row[name]) else f"{row[name]:.4f}" for name in METRICS]
        lines.append(f"| {row['model_name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recency_comparison(
    result: pipeline.TrainingResult, config: ChurnConfig
) -> tuple[BaselineComparison, float, float]:
    by_model = result.evaluations.set_index("model_name")["roc_auc"]
    model, recency = float(by_model[pipeline.MODEL]), float(by_model[pipeline.RECENCY])
    metrics = result.metrics
    comparison = compare_with_recency(
        model,
        recency,
        train_rows=int(metrics["train_rows"]),
        train_churned=int(metrics["train_churned_rows"]),
        test_rows=int(metrics["test_rows"]),
        test_churned=int(metrics["test_churned_rows"]),
        min_train_rows=config.min_train_rows,
        refit_rows=int(metrics["refit_rows"]),
    )
    return comparison, model, recency


@asset(
    key="churn_model",
    deps=FEATURE_MART_KEYS,
    group_name="churn",
    kinds={"python", "scikitlearn", "duckdb"},
    description=(
        "Gradient-boosted churn classifier, trained on the labelled cutoffs before the held-out "
        "one and evaluated there against the recency and BG/NBD baselines; refit on every "
        "labelled cutoff and saved as a versioned artefact."
    ),
    check_specs=[
        AssetCheckSpec(
            "churn_model_beats_recency_baseline",
            asset="churn_model",
            description="Held-out ROC AUC of the model is at least the recency baseline's; "
            "passes with a note, comparing nothing, when there are fewer training rows than the "
            "model's trees need (ChurnConfig.min_train_rows).",
        ),
    ],
)
def churn_model(context: AssetExecutionContext, churn_store: ChurnStore) -> MaterializeResult:
    warehouse = churn_store.warehouse()
    config = load_config()
    result = pipeline.train_and_evaluate(
        warehouse,
        model_dir=churn_store.models(),
        config=config,
        truth_path=churn_store.truth(),
    )
    pipeline.write_evaluations(warehouse, result)
    context.log.info("churn model %s saved to %s", result.version, result.path)
    comparison, model_auc, recency_auc = recency_comparison(result, config)
    metadata: dict[str, object] = {
        "model_version": result.version,
        "artefact_path": MetadataValue.path(str(result.path)),
        "test_cutoff_date": str(result.split.test_cutoff),
        "train_cutoffs": ", ".join(str(c) for c in result.split.train_cutoffs),
        "train_rows": int(result.metrics["train_rows"]),
        "test_rows": int(result.metrics["test_rows"]),
        "refit_rows": int(result.metrics["refit_rows"]),
        "test_churn_rate": float(result.metrics["test_churn_rate"]),
        "evaluation": MetadataValue.md(evaluation_markdown(result.evaluations)),
    }
    for row in result.evaluations.to_dict("records"):
        for name in METRICS:
            if not pd.isna(row[name]):
                metadata[f"{row['model_name']}/{name}"] = float(row[name])
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            AssetCheckResult(
                check_name="churn_model_beats_recency_baseline",
                passed=comparison.passed,
                # A weak model is worth a look, not a reason to block scoring.
                severity=AssetCheckSeverity.WARN,
                description=comparison.message,
                metadata={
                    "model_roc_auc": model_auc,
                    "recency_roc_auc": recency_auc,
                    "compared": comparison.compared,
                    "train_rows": int(result.metrics["train_rows"]),
                    "min_train_rows": config.min_train_rows,
                },
            )
        ],
    )


def score_problems(scores: pd.DataFrame, medium: float, high: float) -> list[str]:
    """What is wrong with a churn_scores frame (empty list = valid)."""
    problems = []
    if scores.empty:
        problems.append("no scores")
    if scores["user_id"].duplicated().any():
        problems.append("duplicate user_id")
    p = scores["churn_probability"].to_numpy(dtype=float)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        problems.append("probability outside [0, 1]")
    expected = pipeline.risk_tiers(p, medium, high)
    if (expected != scores["risk_tier"].to_numpy()).any():
        problems.append("risk_tier inconsistent with the thresholds")
    return problems


@asset(
    key="churn_scores",
    deps=[churn_model, AssetKey(["churn_features"])],
    group_name="churn",
    kinds={"python", "duckdb"},
    description=(
        "Churn probability and risk tier (low / medium / high, dbt vars churn_risk_*_threshold) "
        "of every user in the population at the latest cutoff, in ml.churn_scores."
    ),
    check_specs=[
        AssetCheckSpec(
            "churn_scores_are_valid",
            asset="churn_scores",
            description="One row per user, probabilities in [0, 1], tiers match thresholds.",
            # Invalid scores are not written, and what reads them (retention_targets) waits.
            blocking=True,
        ),
    ],
)
def churn_scores(context: AssetExecutionContext, churn_store: ChurnStore) -> MaterializeResult:
    config = load_config()
    warehouse = churn_store.warehouse()
    scores = pipeline.score_latest(warehouse, model_dir=churn_store.models(), config=config)
    problems = score_problems(scores, config.risk_medium_threshold, config.risk_high_threshold)
    if not problems:
        pipeline.write_scores(warehouse, scores)
    tiers = scores["risk_tier"].value_counts()
    return MaterializeResult(
        metadata={
            "scored_date": str(scores["scored_date"].iloc[0]) if len(scores) else "",
            "model_version": str(scores["model_version"].iloc[0]) if len(scores) else "",
            "users": len(scores),
            **{f"users_{tier}_risk": int(tiers.get(tier, 0)) for tier in ("high", "medium", "low")},
            "mean_churn_probability": float(scores["churn_probability"].mean()),
        },
        check_results=[
            AssetCheckResult(
                check_name="churn_scores_are_valid",
                passed=not problems,
                severity=AssetCheckSeverity.ERROR,
                metadata={"problems": ", ".join(problems) or "none", "written": not problems},
            )
        ],
    )


def clv_problems(scores: pd.DataFrame) -> list[str]:
    """What is wrong with a clv_scores frame (empty list = valid)."""
    problems = []
    if scores.empty:
        problems.append("no scores")
    if scores["user_id"].duplicated().any():
        problems.append("duplicate user_id")
    numbers = scores[
        [
            "p_alive",
            "expected_transactions_90d",
            "expected_transactions_365d",
            "expected_order_value",
            "predicted_value_90d",
            "predicted_value_365d",
        ]
    ].to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        problems.append("negative or non-finite predictions")
    p_alive = scores["p_alive"].to_numpy(dtype=float)
    if (p_alive > 1).any():
        problems.append("p_alive above 1")
    # A longer horizon can only add expected transactions.
    if (scores["expected_transactions_365d"] < scores["expected_transactions_90d"] - 1e-9).any():
        problems.append("365-day expectation below the 90-day one")
    return problems


def backtest_markdown(deciles: pd.DataFrame) -> str:
    lines = [
        "| decile | customers | predicted tx | actual tx | predicted value | actual value |",
        "|---|---|---|---|---|---|",
    ]
    for row in deciles.to_dict("records"):
        lines.append(
            f"| {row['decile']} | {row['customers']} | {row['predicted_transactions']:.1f} | "
            f"{row['actual_transactions']} | {row['predicted_value']:.0f} | "
            f"{row['actual_value']:.0f} |"
        )
    return "\n".join(lines)


@asset(
    key="clv_scores",
    deps=[AssetKey(["int_user_days_aggregated"])],
    group_name="churn",
    kinds={"python", "scipy", "duckdb"},
    description=(
        "Predicted customer lifetime value: BG/NBD expected paid days x Gamma-Gamma expected "
        "order value over 90 and 365 days, per customer, with predicted_value_tier; backtested "
        "on the last clv_holdout_days days (ml.clv_scores, ml.clv_model_fits, "
        "ml.clv_backtest_deciles)."
    ),
    check_specs=[
        AssetCheckSpec(
            "clv_scores_are_valid",
            asset="clv_scores",
            description="One row per customer, finite non-negative predictions, P(alive) <= 1, "
            "365-day expectation >= 90-day.",
            blocking=True,
        ),
    ],
)
def clv_scores(context: AssetExecutionContext, churn_store: ChurnStore) -> MaterializeResult:
    warehouse = churn_store.warehouse()
    result = clv_pipeline.score_warehouse(warehouse)
    problems = clv_problems(result.scores)
    if not problems:
        clv_pipeline.write_result(warehouse, result)
    deciles = result.deciles
    metadata: dict[str, object] = {
        "scored_date": str(result.scored_date),
        "calibration_end_date": str(result.calibration_end_date),
        "customers": len(result.scores),
        "mean_predicted_value_365d": float(result.scores["predicted_value_365d"].mean()),
    }
    if len(deciles):
        metadata["backtest"] = MetadataValue.md(backtest_markdown(deciles))
        metadata["holdout_predicted_transactions"] = float(deciles["predicted_transactions"].sum())
        metadata["holdout_actual_transactions"] = int(deciles["actual_transactions"].sum())
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            AssetCheckResult(
                check_name="clv_scores_are_valid",
                passed=not problems,
                severity=AssetCheckSeverity.ERROR,
                metadata={"problems": ", ".join(problems) or "none", "written": not problems},
            )
        ],
    )


defs = Definitions(
    assets=[churn_model, churn_scores, clv_scores], resources={"churn_store": ChurnStore()}
)
