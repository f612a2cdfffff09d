"""`python -m userops.churn train|score`: the Dagster assets' work from the command line.

    python -m userops.churn train [--warehouse W] [--model-dir M] [--truth T] [--seed N]
    python -m userops.churn score [--warehouse W] [--model-dir M] [--version V]

Paths default to USEROPS_DUCKDB_PATH / USEROPS_MODEL_DIR; --truth defaults to the generator's
ground truth next to USEROPS_LANDING_DIR when it exists (evaluation only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from userops.churn import pipeline
from userops.churn.config import load_config
from userops.paths import default_landing_dir, default_warehouse_path

COLUMNS = ["model_name", "roc_auc", "pr_auc", "brier_score", "lift_top_decile"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m userops.churn")
    parser.add_argument("command", choices=["train", "score"])
    parser.add_argument("--warehouse", type=Path, default=None)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--truth", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--version", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warehouse = args.warehouse or default_warehouse_path()
    overrides = {} if args.seed is None else {"random_seed": args.seed}
    config = load_config(overrides)
    if args.command == "train":
        truth = args.truth or default_landing_dir().parent / "ground_truth" / (
            "user_churn_truth.parquet"
        )
        result = pipeline.train_and_evaluate(
            warehouse, model_dir=args.model_dir, config=config, truth_path=truth
        )
        pipeline.write_evaluations(warehouse, result)
        print(f"model {result.version} -> {result.path}")
        print(
            f"train cutoffs {[str(c) for c in result.split.train_cutoffs]}, "
            f"test cutoff {result.split.test_cutoff}, test rows {result.metrics['test_rows']}, "
            f"test churn rate {result.metrics['test_churn_rate']:.3f}"
        )
        columns = COLUMNS + (["propensity_spearman"] if truth.exists() else [])
        with pd.option_context("display.width", 200, "display.precision", 4):
            print(result.evaluations[columns].to_string(index=False))
        if "hidden_propensity_roc_auc" in result.metrics:
            print(f"hidden propensity ROC AUC: {result.metrics['hidden_propensity_roc_auc']:.4f}")
    else:
        scores = pipeline.score_latest(
            warehouse, model_dir=args.model_dir, version=args.version, config=config
        )
        pipeline.write_scores(warehouse, scores)
        print(f"{len(scores)} users scored on {scores['scored_date'].iloc[0]}")
        print(scores["risk_tier"].value_counts().to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
