"""Train + evaluate, score, and write the ml.* tables: the steps the Dagster assets call."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from userops.churn import artefacts, bgnbd
from userops.churn.config import ChurnConfig, load_config
from userops.churn.dataset import (
    FEATURES,
    TimeSplit,
    labels_of,
    load_dataset,
    rows_at,
    split_frame,
)
from userops.churn.evaluation import calibration_table, rank_correlation, score_metrics
from userops.churn.models import ChurnClassifier, RecencyBaseline

MODEL = "gradient_boosting"
RECENCY = "recency"
BGNBD = "bgnbd"
BGNBD_P_ALIVE = "bgnbd_p_alive"
MODEL_NAMES = (MODEL, RECENCY, BGNBD, BGNBD_P_ALIVE)

# The warehouse tables Python owns. dbt reads churn_scores as source('ml', 'churn_scores')
# (models/marts/churn/_ml__sources.yml documents the same columns).
TABLES = {
    "churn_scores": """
        user_id varchar not null,
        scored_date date not null,
        churn_probability double not null,
        risk_tier varchar not null,
        model_version varchar not null
    """,
    "churn_model_evaluations": """
        model_version varchar not null,
        model_name varchar not null,
        test_cutoff_date date not null,
        train_cutoff_first date not null,
        train_cutoff_last date not null,
        label_window_days integer not null,
        train_rows bigint not null,
        test_rows bigint not null,
        test_churn_rate double not null,
        roc_auc double,
        pr_auc double,
        brier_score double,
        lift_top_decile double,
        propensity_spearman double,
        evaluated_at timestamp not null
    """,
    "churn_model_calibration": """
        model_version varchar not null,
        model_name varchar not null,
        bin_lower double not null,
        bin_upper double not null,
        users bigint not null,
        mean_predicted double not null,
        observed_churn_rate double not null
    """,
}

ORDER_LOG_SQL = """
select
    user_id,
    count(*) - 1 as x,
    date_diff('day', min(activity_date), max(activity_date)) as t_x,
    date_diff('day', min(activity_date), cast(? as date)) as age
from intermediate.int_user_days_aggregated
where has_paid_order and activity_date <= cast(? as date)
group by user_id
"""


def risk_tiers(probabilities: np.ndarray, medium: float, high: float) -> np.ndarray:
    """high when p >= high threshold, medium when p >= medium threshold, else low."""
    p = np.asarray(probabilities, dtype=float)
    return np.where(p >= high, "high", np.where(p >= medium, "medium", "low")).astype(object)


def order_log_summary(warehouse_path: Path, cutoff: date) -> pd.DataFrame:
    """BG/NBD (x, t_x, T) in days for every customer with a paid order on or before the cutoff:
    days with a paid order are the transactions, the first one is the customer's birth."""
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        return connection.execute(ORDER_LOG_SQL, [cutoff, cutoff]).df()


def bgnbd_scores(
    params: bgnbd.BGNBDParams, frame: pd.DataFrame, horizon_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """(P(no paid order in the next horizon days), 1 - P(alive)) for feature rows.

    Users without a paid order yet are scored as customers born at the cutoff (x = t_x = T = 0):
    P(alive) = 1 and the no-purchase probability of a new customer."""
    bought = frame["bgnbd_frequency"].notna().to_numpy()
    x = np.where(bought, frame["bgnbd_frequency"].fillna(0).to_numpy(), 0.0)
    t_x = np.where(bought, frame["bgnbd_recency_days"].fillna(0).to_numpy(), 0.0)
    age = np.where(bought, frame["bgnbd_age_days"].fillna(0).to_numpy(), 0.0)
    no_purchase = bgnbd.p_no_purchase(params, x, t_x, age, horizon_days)
    return no_purchase, 1.0 - bgnbd.p_alive(params, x, t_x, age)


def fit_bgnbd_at(warehouse_path: Path, cutoff: date) -> bgnbd.BGNBDParams:
    log = order_log_summary(warehouse_path, cutoff)
    if log.empty:
        raise ValueError(f"no paid orders on or before {cutoff}: BG/NBD cannot be fitted")
    return bgnbd.fit(log["x"], log["t_x"], log["age"])


def load_truth(truth_path: Path | None) -> pd.DataFrame | None:
    """The generator's hidden ground truth (user_id, churn_propensity), when available."""
    if truth_path is None or not Path(truth_path).exists():
        return None
    with duckdb.connect() as connection:
        return connection.execute(
            "select user_id, churn_propensity from read_parquet(?)", [str(truth_path)]
        ).df()


@dataclass
class TrainingResult:
    version: str
    path: Path
    split: TimeSplit
    evaluations: pd.DataFrame
    calibration: pd.DataFrame
    metrics: dict[str, Any]


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def train_and_evaluate(
    warehouse_path: Path,
    *,
    model_dir: Path | None = None,
    config: ChurnConfig | None = None,
    truth_path: Path | None = None,
) -> TrainingResult:
    """Evaluate the classifier and both baselines on the held-out test cutoff, then refit the
    classifier on every labelled cutoff and save it as a new model version."""
    config = config or load_config()
    frame = load_dataset(warehouse_path)
    if frame.empty:
        raise ValueError("churn_features is empty: build the dbt churn models on data first")
    split = split_frame(frame)
    window = int(frame["label_window_days"].iloc[0])
    train = rows_at(frame, split.train_cutoffs)
    test = rows_at(frame, [split.test_cutoff])
    y_train, y_test = labels_of(train), labels_of(test)

    classifier = ChurnClassifier(config).fit(train, y_train)
    recency = RecencyBaseline().fit(train, y_train)
    # BG/NBD needs no labels: it is fitted on the whole order log as of the test cutoff.
    params = fit_bgnbd_at(warehouse_path, split.test_cutoff)
    bgnbd_no_order, bgnbd_dead = bgnbd_scores(params, test, window)
    scores = {
        MODEL: classifier.predict_proba(test),
        RECENCY: recency.predict_proba(test),
        BGNBD: bgnbd_no_order,
        BGNBD_P_ALIVE: bgnbd_dead,
    }

    truth = load_truth(truth_path)
    propensity = None
    if truth is not None:
        propensity = (
            test[["user_id"]].merge(truth, on="user_id", how="left")["churn_propensity"].to_numpy()
        )

    # Production model: same configuration, every labelled cutoff.
    refit_rows = rows_at(frame, split.refit_cutoffs)
    production = ChurnClassifier(config).fit(refit_rows, labels_of(refit_rows))
    training_config = {
        **config.as_dict(),
        "label_window_days": window,
        "features": list(FEATURES),
        "train_cutoffs": [str(c) for c in split.train_cutoffs],
        "test_cutoff": str(split.test_cutoff),
        "refit_cutoffs": [str(c) for c in split.refit_cutoffs],
    }
    fingerprint = artefacts.data_fingerprint(refit_rows[["user_id", *FEATURES, "is_churned"]])
    version = artefacts.model_version(training_config, fingerprint)

    evaluated_at = datetime.now(UTC).replace(tzinfo=None)
    evaluation_rows, calibration_frames = [], []
    for name in MODEL_NAMES:
        metrics = score_metrics(y_test, scores[name])
        evaluation_rows.append(
            {
                "model_version": version,
                "model_name": name,
                "test_cutoff_date": split.test_cutoff,
                "train_cutoff_first": split.train_cutoffs[0],
                "train_cutoff_last": split.train_cutoffs[-1],
                "label_window_days": window,
                "train_rows": len(train),
                "test_rows": len(test),
                "test_churn_rate": float(y_test.mean()),
                **metrics,
                "propensity_spearman": (
                    rank_correlation(scores[name], propensity)
                    if propensity is not None
                    else math.nan
                ),
                "evaluated_at": evaluated_at,
            }
        )
        table = calibration_table(y_test, scores[name])
        table.insert(0, "model_name", name)
        table.insert(0, "model_version", version)
        calibration_frames.append(table)
    evaluations = pd.DataFrame(evaluation_rows)
    calibration = pd.concat(calibration_frames, ignore_index=True)

    metrics_doc: dict[str, Any] = {
        "version": version,
        "training_config": training_config,
        "data_fingerprint": fingerprint,
        "train_rows": len(train),
        "train_churned_rows": int(y_train.sum()),
        "test_rows": len(test),
        "test_churned_rows": int(y_test.sum()),
        "refit_rows": len(refit_rows),
        "test_churn_rate": float(y_test.mean()),
        "bgnbd_params": params.as_dict(),
        "evaluation": {
            row["model_name"]: {
                key: _finite(row[key])
                for key in (
                    "roc_auc",
                    "pr_auc",
                    "brier_score",
                    "lift_top_decile",
                    "propensity_spearman",
                )
            }
            for row in evaluation_rows
        },
        "calibration": {
            name: group.drop(columns=["model_version", "model_name"]).to_dict("records")
            for name, group in calibration.groupby("model_name", sort=False)
        },
    }
    if propensity is not None:
        # Reference point: how well the hidden propensity itself ranks the observed labels.
        metrics_doc["hidden_propensity_roc_auc"] = _finite(
            score_metrics(y_test, np.nan_to_num(propensity, nan=0.0))["roc_auc"]
        )
    artefact = artefacts.ChurnArtefact(
        version=version,
        classifier=production,
        label_window_days=window,
        trained_cutoffs=split.refit_cutoffs,
        training_config=training_config,
    )
    path = artefacts.save(artefact, metrics_doc, model_dir)
    return TrainingResult(version, path, split, evaluations, calibration, metrics_doc)


def score_latest(
    warehouse_path: Path,
    *,
    model_dir: Path | None = None,
    version: str | None = None,
    config: ChurnConfig | None = None,
) -> pd.DataFrame:
    """churn_scores rows for every user in the population at the latest cutoff. Risk thresholds
    come from the current config (dbt vars), so re-tiering needs no retraining."""
    config = config or load_config()
    artefact = artefacts.load(version, model_dir)
    frame = load_dataset(warehouse_path)
    latest = frame[frame["is_latest"]].reset_index(drop=True)
    if latest.empty:
        raise ValueError("no churn_features rows at the latest cutoff")
    if int(latest["label_window_days"].iloc[0]) != artefact.label_window_days:
        raise ValueError(
            f"model {artefact.version} predicts a {artefact.label_window_days}-day window but "
            f"the features were built for {int(latest['label_window_days'].iloc[0])}: retrain"
        )
    probability = artefact.classifier.predict_proba(latest)
    return pd.DataFrame(
        {
            "user_id": latest["user_id"].to_numpy(),
            "scored_date": latest["cutoff_date"].to_numpy(),
            "churn_probability": probability,
            "risk_tier": risk_tiers(
                probability, config.risk_medium_threshold, config.risk_high_threshold
            ),
            "model_version": artefact.version,
        }
    )


def _replace_rows(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    where: str,
    params: list[Any],
    table_ddl: dict[str, str] | None = None,
) -> None:
    ddl = (table_ddl or TABLES)[table]
    connection.execute(f"create table if not exists ml.{table} ({ddl})").fetchall()
    connection.execute(f"delete from ml.{table} where {where}", params).fetchall()
    if frame.empty:
        return
    connection.register("incoming", frame)
    try:
        columns = ", ".join(frame.columns)
        connection.execute(
            f"insert into ml.{table} ({columns}) select {columns} from incoming"
        ).fetchall()
    finally:
        connection.unregister("incoming")


def write_tables(
    warehouse_path: Path,
    tables: dict[str, tuple[pd.DataFrame, str, list]],
    table_ddl: dict[str, str] | None = None,
) -> None:
    """Replace rows in ml.* tables in one short write transaction (table -> frame, where, params),
    so a failed write leaves the previous rows in place. table_ddl: the column definitions of
    tables other modules own (default: the churn tables)."""
    with duckdb.connect(str(warehouse_path)) as connection:
        connection.execute("create schema if not exists ml").fetchall()
        connection.execute("begin transaction").fetchall()
        try:
            for table, (frame, where, params) in tables.items():
                _replace_rows(connection, table, frame, where, params, table_ddl)
            connection.execute("commit").fetchall()
        except Exception:
            connection.execute("rollback").fetchall()
            raise


def write_evaluations(warehouse_path: Path, result: TrainingResult) -> None:
    where = "model_version = ?"
    write_tables(
        warehouse_path,
        {
            "churn_model_evaluations": (result.evaluations, where, [result.version]),
            "churn_model_calibration": (result.calibration, where, [result.version]),
        },
    )


def write_scores(warehouse_path: Path, scores: pd.DataFrame) -> None:
    """Replace the scores of the scored date (one scoring per date; history of older dates is
    kept)."""
    dates = sorted(set(scores["scored_date"]))
    placeholders = ", ".join("?" for _ in dates) or "null"
    write_tables(
        warehouse_path,
        {"churn_scores": (scores, f"scored_date in ({placeholders})", list(dates))},
    )
