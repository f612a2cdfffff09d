"""Churn scores: BG/NBD, metrics, the time split, and the dbt + Python + Dagster path end to end.

The end-to-end tests copy the session's sample warehouse and rebuild only the churn models with
a 14-day label window: the sample spans 45 days, too short for the default 28-day window to
leave a training cutoff a full window before the held-out one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import Build

from userops.churn import artefacts, bgnbd, pipeline
from userops.churn.config import ChurnConfig, config_from_vars, dbt_vars
from userops.churn.dataset import FEATURES, time_split
from userops.churn.evaluation import (
    calibration_table,
    compare_with_recency,
    lift_top_fraction,
    score_metrics,
)
from userops.dbt import run_dbt

CHURN_VARS = {"churn_label_window_days": 14, "churn_cutoff_step_days": 7}
CHURN_MODELS = "churn_cutoffs churn_features churn_labels"


# ----------------------------------------------------------------------------- BG/NBD
UNIT = bgnbd.BGNBDParams(r=1.0, alpha=1.0, a=1.0, b=1.0)


def test_bgnbd_log_likelihood_matches_hand_computation() -> None:
    # r = alpha = a = b = 1. x = 0, T = 1: A1 = 1, A2 = 1, A3 = 1/2 -> 1/2.
    # x = 1, t_x = 1, T = 3: A1 = G(2)/G(1) = 1, A2 = G(2)G(2)/(G(1)G(3)) = 1/2,
    # A3 = (1/4)^2 = 1/16, A4 = a/(b+x-1) * (1/2)^2 = 1/4 -> 1/2 * (1/16 + 1/4) = 5/32.
    likelihood = np.exp(bgnbd.log_likelihood(UNIT, [0, 1], [0, 1], [1, 3]))
    np.testing.assert_allclose(likelihood, [0.5, 5 / 32], rtol=1e-12)


def test_bgnbd_p_alive_and_no_purchase_by_hand() -> None:
    # x = 0: the model lets customers drop out only after a repeat purchase -> alive.
    # x = 1, t_x = 1, T = 3: 1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)) = 1/(1+4).
    np.testing.assert_allclose(bgnbd.p_alive(UNIT, [0, 1], [0, 1], [5, 3]), [1.0, 0.2])
    # Silent 4 more days if alive: ((1+3)/(1+3+4))^2 = 1/4 -> 1 - 0.2 * (1 - 1/4) = 0.85.
    np.testing.assert_allclose(bgnbd.p_no_purchase(UNIT, [1], [1], [3], 4), [0.85])
    with pytest.raises(ValueError):
        bgnbd.p_alive(UNIT, [1], [4], [3])  # last purchase after the end of observation


def test_bgnbd_recovers_parameters_of_simulated_customers() -> None:
    true = bgnbd.BGNBDParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
    rng = np.random.default_rng(1)
    x, t_x, age = bgnbd.simulate(true, rng.uniform(20, 40, 4000), rng)
    fitted = bgnbd.fit(x, t_x, age)
    assert fitted.r == pytest.approx(true.r, rel=0.2)
    assert fitted.alpha == pytest.approx(true.alpha, rel=0.2)
    # a and b trade off against each other; the mean dropout probability is well identified.
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(true.a / (true.a + true.b), abs=0.03)
    # Maximum likelihood: at least as likely as the parameters that generated the data.
    fitted_ll = bgnbd.log_likelihood(fitted, x, t_x, age).sum()
    assert fitted_ll >= bgnbd.log_likelihood(true, x, t_x, age).sum()


# ----------------------------------------------------------------------------- metrics
def test_lift_shares_tied_scores_at_the_cut() -> None:
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    # Top decile = 1 slot, tied between a churner and a non-churner: half a churner in it.
    scores = np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert lift_top_fraction(labels, scores) == pytest.approx(0.5 / 0.1)
    assert lift_top_fraction(labels[::-1], scores[::-1]) == pytest.approx(5.0)  # row order
    # Perfect ranking with 20 users and 2 churners: the top 2 are both churners -> lift 10.
    labels = np.array([1, 1] + [0] * 18)
    assert lift_top_fraction(labels, np.linspace(1, 0, 20)) == pytest.approx(10.0)


def test_calibration_table_bins_by_predicted_probability() -> None:
    table = calibration_table(np.array([0, 1, 0, 1]), np.array([0.05, 0.15, 0.17, 1.0]))
    assert table[["bin_lower", "users", "observed_churn_rate"]].to_dict("records") == [
        {"bin_lower": 0.0, "users": 1, "observed_churn_rate": 0.0},
        {"bin_lower": 0.1, "users": 2, "observed_churn_rate": 0.5},
        {"bin_lower": 0.9, "users": 1, "observed_churn_rate": 1.0},
    ]
    assert table["mean_predicted"].tolist() == pytest.approx([0.05, 0.16, 1.0])


def test_score_metrics_on_a_perfect_and_a_useless_score() -> None:
    labels = np.array([0, 0, 1, 1])
    perfect = score_metrics(labels, np.array([0.0, 0.0, 1.0, 1.0]))
    assert (perfect["roc_auc"], perfect["pr_auc"], perfect["brier_score"]) == (1.0, 1.0, 0.0)
    flat = score_metrics(labels, np.full(4, 0.5))
    assert flat["roc_auc"] == 0.5
    assert flat["brier_score"] == pytest.approx(0.25)
    assert flat["lift_top_decile"] == pytest.approx(1.0)


def test_risk_tiers_use_inclusive_lower_bounds() -> None:
    tiers = pipeline.risk_tiers(np.array([0.0, 0.3999, 0.4, 0.6999, 0.7, 1.0]), 0.4, 0.7)
    assert tiers.tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_config_comes_from_the_dbt_vars_block() -> None:
    variables = dbt_vars()
    config = config_from_vars(variables)
    assert config.risk_medium_threshold == variables["churn_risk_medium_threshold"]
    assert config.risk_high_threshold == variables["churn_risk_high_threshold"]
    assert config.random_seed == variables["churn_random_seed"]
    assert config_from_vars(variables, {"churn_random_seed": 7}).random_seed == 7
    with pytest.raises(ValueError, match="medium < high"):
        ChurnConfig(risk_medium_threshold=0.8, risk_high_threshold=0.7)


def test_score_problems_catch_invalid_scores() -> None:
    from orchestration.ml import score_problems

    good = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "churn_probability": [0.1, 0.5, 0.9],
            "risk_tier": ["low", "medium", "high"],
        }
    )
    assert score_problems(good, 0.4, 0.7) == []
    bad = good.assign(
        user_id=["u1", "u1", "u3"],
        churn_probability=[0.1, 0.5, 1.2],
        risk_tier=["low", "low", "high"],  # 0.5 is medium
    )
    assert score_problems(bad, 0.4, 0.7) == [
        "duplicate user_id",
        "probability outside [0, 1]",
        "risk_tier inconsistent with the thresholds",
    ]


def test_recency_comparison_needs_the_rows_the_trees_need() -> None:
    config = ChurnConfig()
    # 7 leaves of at least 80 rows: below 560 rows a tree cannot grow as configured.
    assert config.min_train_rows == config.max_leaf_nodes * config.min_samples_leaf == 560
    # README's small demo (2,000 users x 60 days): 121 training rows; the model loses to recency
    # because it cannot split, and that is no finding about the model.
    small = compare_with_recency(
        0.5, 0.73, train_rows=121, train_churned=20, test_rows=987, test_churned=273,
        min_train_rows=560, refit_rows=2757,
    )  # fmt: skip
    assert not small.compared and small.passed
    assert "121 training rows (20 churned), 987 test rows (273 churned)" in small.message
    assert "at least 560 training rows" in small.message
    assert "model ROC AUC 0.500, recency 0.730" in small.message
    # The scores do not come from the 121-row model but from the refit on every labelled row.
    assert small.message.endswith(
        "The scores come from the model refit on all 2,757 labelled rows."
    )
    one_class = compare_with_recency(
        0.6, 0.7, train_rows=600, train_churned=0, test_rows=100, test_churned=10,
        min_train_rows=560,
    )  # fmt: skip
    assert not one_class.compared and one_class.passed
    worse = compare_with_recency(
        0.85, 0.86, train_rows=600, train_churned=150, test_rows=400, test_churned=100,
        min_train_rows=560,
    )  # fmt: skip
    assert worse.compared and not worse.passed and "worse" in worse.message
    tie = compare_with_recency(
        0.86, 0.86, train_rows=560, train_churned=150, test_rows=400, test_churned=100,
        min_train_rows=560,
    )  # fmt: skip
    assert tie.compared and tie.passed


def test_below_two_leaves_of_rows_the_model_predicts_one_constant(churn_warehouse: Path) -> None:
    """Why the floor: 2 x min_samples_leaf - 1 rows leave no split, every user the same score."""
    from userops.churn.dataset import labels_of, load_dataset
    from userops.churn.models import ChurnClassifier

    config = ChurnConfig()
    frame = load_dataset(churn_warehouse)
    labelled = frame[frame["is_label_complete"]].reset_index(drop=True)
    assert len(labelled) >= 2 * config.min_samples_leaf
    few = labelled.iloc[: 2 * config.min_samples_leaf - 1].reset_index(drop=True)
    assert len(set(labels_of(few))) == 2
    scores = ChurnClassifier(config).fit(few, labels_of(few)).predict_proba(labelled)
    assert len(np.unique(scores)) == 1
    enough = labelled.iloc[: 2 * config.min_samples_leaf].reset_index(drop=True)
    scores = ChurnClassifier(config).fit(enough, labels_of(enough)).predict_proba(labelled)
    assert len(np.unique(scores)) > 1


# ----------------------------------------------------------------------------- time split
def test_time_split_keeps_training_labels_before_the_test_cutoff() -> None:
    latest = date(2026, 6, 30)
    cutoffs = [latest - timedelta(days=7 * k) for k in range(13)]
    labelled = [c for c in cutoffs if c + timedelta(days=28) <= latest]
    split = time_split(labelled, latest, 28)
    assert split.test_cutoff == date(2026, 6, 2)
    # Every training label window (cutoff, cutoff + 28] ends on or before the test cutoff.
    assert split.train_cutoffs[-1] == date(2026, 5, 5)
    assert all(c + timedelta(days=28) <= split.test_cutoff for c in split.train_cutoffs)
    assert split.refit_cutoffs == tuple(sorted(labelled))
    assert split.score_cutoff == latest
    with pytest.raises(ValueError, match="no training cutoff"):
        time_split([date(2026, 6, 2), date(2026, 5, 26)], latest, 28)
    with pytest.raises(ValueError, match="complete label window"):
        time_split([], latest, 28)


# ----------------------------------------------------------------------------- end to end
def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def build_churn_models(build: Build, warehouse: Path, target: Path, select: str) -> None:
    result = run_dbt(
        ["build", "-s", *select.split()],
        landing_dir=build.landing_dir,
        warehouse_path=warehouse,
        dbt_vars=CHURN_VARS,
        capture=True,
        target_path=target,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


@pytest.fixture(scope="module")
def churn_warehouse(sample_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample warehouse with the churn models rebuilt for a 14-day window."""
    assert sample_build.result.returncode == 0
    work = tmp_path_factory.mktemp("churn")
    warehouse = work / "warehouse.duckdb"
    shutil.copyfile(sample_build.warehouse_path, warehouse)
    build_churn_models(sample_build, warehouse, work / "target", CHURN_MODELS)
    return warehouse


@pytest.fixture(scope="module")
def truth_path(sample_build: Build) -> Path:
    return sample_build.landing_dir.parent / "ground_truth" / "user_churn_truth.parquet"


@dataclass(frozen=True)
class Materialized:
    warehouse: Path
    model_dir: Path
    success: bool
    metadata: dict[str, dict[str, object]]
    checks: dict[str, bool]
    descriptions: dict[str, str]


@pytest.fixture(scope="module")
def materialized(
    churn_warehouse: Path,
    truth_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Materialized:
    """The Dagster churn assets materialized on the churn warehouse."""
    from dagster import materialize

    from orchestration.ml import ChurnStore, churn_model, churn_scores

    model_dir = tmp_path_factory.mktemp("models")
    store = ChurnStore(
        warehouse_path=str(churn_warehouse), model_dir=str(model_dir), truth_path=str(truth_path)
    )
    result = materialize([churn_model, churn_scores], resources={"churn_store": store})
    metadata = {
        event.asset_key.path[-1]: {
            key: getattr(value, "value", value)
            for key, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    evaluations = result.get_asset_check_evaluations()
    checks = {e.check_name: e.passed for e in evaluations}
    descriptions = {e.check_name: e.description or "" for e in evaluations}
    return Materialized(churn_warehouse, model_dir, result.success, metadata, checks, descriptions)


def test_churn_assets_materialize_with_passing_checks(materialized: Materialized) -> None:
    assert materialized.success
    assert set(materialized.metadata) == {"churn_model", "churn_scores"}
    assert set(materialized.checks) == {
        "churn_model_beats_recency_baseline",
        "churn_scores_are_valid",
    }
    assert materialized.checks["churn_scores_are_valid"]
    # The WARN check must agree with the evaluation table. On this 400-user fixture the two
    # AUCs are within sampling noise of each other (it flips with small data changes), so the
    # test checks the verdict's consistency; the margin on a real-sized sample is in README.
    [(model_auc,)] = query(
        materialized.warehouse,
        "select roc_auc from ml.churn_model_evaluations where model_name = 'gradient_boosting'",
    )
    [(recency_auc,)] = query(
        materialized.warehouse,
        "select roc_auc from ml.churn_model_evaluations where model_name = 'recency'",
    )
    model_meta = materialized.metadata["churn_model"]
    train_rows, test_rows = int(model_meta["train_rows"]), int(model_meta["test_rows"])
    description = materialized.descriptions["churn_model_beats_recency_baseline"]
    assert f"{train_rows:,} training rows" in description
    assert f"{test_rows:,} test rows" in description
    assert f"model ROC AUC {model_auc:.3f}, recency {recency_auc:.3f}" in description
    if train_rows < ChurnConfig().min_train_rows:
        assert materialized.checks["churn_model_beats_recency_baseline"]
        assert description.startswith("Not compared")
        assert f"refit on all {int(model_meta['refit_rows']):,} labelled rows" in description
    else:
        assert materialized.checks["churn_model_beats_recency_baseline"] == (
            model_auc >= recency_auc
        )
    assert "| gradient_boosting |" in str(model_meta["evaluation"])
    version = model_meta["model_version"]
    folder = materialized.model_dir / "churn" / str(version)
    assert {p.name for p in folder.iterdir()} == {"model.pkl", "metrics.json", "config.json"}
    assert artefacts.latest_version(materialized.model_dir) == version


def test_evaluation_table_is_sane(materialized: Materialized) -> None:
    frame = pd.DataFrame(
        query(
            materialized.warehouse,
            "select model_name, roc_auc, pr_auc, brier_score, lift_top_decile,"
            " propensity_spearman, test_churn_rate, test_cutoff_date, train_cutoff_last,"
            " label_window_days from ml.churn_model_evaluations",
        ),
        columns=[
            "model_name",
            "roc_auc",
            "pr_auc",
            "brier_score",
            "lift_top_decile",
            "propensity_spearman",
            "test_churn_rate",
            "test_cutoff_date",
            "train_cutoff_last",
            "label_window_days",
        ],
    ).set_index("model_name")
    assert set(frame.index) == set(pipeline.MODEL_NAMES)
    model, recency = frame.loc["gradient_boosting"], frame.loc["recency"]
    assert (frame["label_window_days"] == 14).all()
    # Training labels end on or before the held-out cutoff.
    assert (frame["train_cutoff_last"] + timedelta(days=14) <= frame["test_cutoff_date"]).all()
    assert 0.05 < model["test_churn_rate"] < 0.95
    assert model["roc_auc"] > 0.75
    # Both rank far better than chance and the model is at least on par with recency; which of
    # two AUCs ~0.86 wins on 400 users is noise (on 20,000 users: 0.906 vs 0.889, docs/churn.md).
    assert recency["roc_auc"] > 0.7
    assert model["roc_auc"] > recency["roc_auc"] - 0.03
    assert model["pr_auc"] > model["test_churn_rate"]  # better than a random ranking
    assert model["lift_top_decile"] > 1.5
    assert 0 < model["brier_score"] < model["test_churn_rate"] * (1 - model["test_churn_rate"])
    # Higher churn scores go with a higher hidden churn propensity.
    assert model["propensity_spearman"] > 0
    for name in pipeline.MODEL_NAMES:
        assert 0 <= frame.loc[name, "roc_auc"] <= 1
        assert 0 <= frame.loc[name, "brier_score"] <= 1
    [(bins, users)] = query(
        materialized.warehouse,
        "select count(*), sum(users) from ml.churn_model_calibration"
        " where model_name = 'gradient_boosting'",
    )
    [(test_rows,)] = query(
        materialized.warehouse,
        "select max(test_rows) from ml.churn_model_evaluations",
    )
    assert bins >= 3 and users == test_rows


def test_scores_cover_the_population_at_the_latest_cutoff(materialized: Materialized) -> None:
    [(scored, users, latest, population, low, high)] = query(
        materialized.warehouse,
        """
        select
            count(*), count(distinct user_id), max(scored_date),
            (select count(*) from marts.churn_features
             where cutoff_date = (select max(cutoff_date) from marts.churn_cutoffs)),
            min(churn_probability), max(churn_probability)
        from ml.churn_scores
        """,
    )
    [(latest_activity,)] = query(
        materialized.warehouse,
        "select max(activity_date) from intermediate.int_user_days_aggregated",
    )
    assert scored == users == population > 0
    assert latest == latest_activity
    assert 0 <= low < high <= 1


def test_retraining_with_the_same_seed_is_reproducible(
    churn_warehouse: Path, tmp_path: Path
) -> None:
    config = ChurnConfig(random_seed=11)
    runs = []
    for name in ("a", "b"):
        result = pipeline.train_and_evaluate(
            churn_warehouse, model_dir=tmp_path / name, config=config
        )
        scores = pipeline.score_latest(churn_warehouse, model_dir=tmp_path / name, config=config)
        runs.append((result, scores))
    (first, first_scores), (second, second_scores) = runs
    assert first.version == second.version
    pd.testing.assert_frame_equal(first_scores, second_scores)
    pd.testing.assert_frame_equal(
        first.evaluations.drop(columns="evaluated_at"),
        second.evaluations.drop(columns="evaluated_at"),
    )
    # Another seed is another model version; the seed is recorded with the artefact.
    other = pipeline.train_and_evaluate(
        churn_warehouse, model_dir=tmp_path / "c", config=ChurnConfig(random_seed=12)
    )
    assert other.version != first.version
    assert (
        artefacts.load_metrics(first.version, tmp_path / "a")["training_config"]["random_seed"]
        == 11
    )


@pytest.fixture(scope="module")
def tampered_rebuild(
    sample_build: Build, materialized: Materialized, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, date]:
    """A copy of the scored warehouse whose user-days after one cutoff are changed (active days
    dropped, the rest inflated), with the churn features, labels and the targeting mart rebuilt
    from it."""
    work = tmp_path_factory.mktemp("tampered")
    warehouse = work / "warehouse.duckdb"
    shutil.copyfile(materialized.warehouse, warehouse)
    [(cutoff,)] = query(
        warehouse,
        "select min(cutoff_date) from marts.churn_cutoffs where is_label_complete",
    )
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "delete from intermediate.int_user_days_aggregated"
            " where activity_date > ? and is_active and hash(user_id) % 2 = 0",
            [cutoff],
        ).fetchall()
        connection.execute(
            """
            update intermediate.int_user_days_aggregated
            set event_count = event_count * 10 + 1, session_count = session_count + 5,
                paid_order_count = paid_order_count + 3, paid_amount = paid_amount + 500,
                is_active = true, has_paid_order = true
            where activity_date > ?
            """,
            [cutoff],
        ).fetchall()
    build_churn_models(
        sample_build, warehouse, work / "target", "churn_features churn_labels retention_targets"
    )
    return warehouse, cutoff


def test_features_ignore_everything_after_the_cutoff(
    materialized: Materialized, tampered_rebuild: tuple[Path, date]
) -> None:
    tampered, cutoff = tampered_rebuild
    columns = ", ".join(["user_id", *FEATURES])
    sql = f"select {columns} from marts.churn_features where cutoff_date = '{cutoff}' order by 1"
    original = query(materialized.warehouse, sql)
    assert original
    assert query(tampered, sql) == original
    # The change was real: the labels at that cutoff (which look after it) moved.
    labels = (
        "select user_id, is_churned from marts.churn_labels"
        f" where cutoff_date = '{cutoff}' order by 1"
    )
    assert query(tampered, labels) != query(materialized.warehouse, labels)


def test_retention_targets_list_high_and_medium_risk_users_with_an_action(
    tampered_rebuild: tuple[Path, date],
) -> None:
    warehouse, _ = tampered_rebuild
    [(targets, tiers, missing_actions, expected)] = query(
        warehouse,
        """
        select
            count(*),
            count(distinct risk_tier),
            count(*) filter (where action_code is null),
            (select count(*) from ml.churn_scores where risk_tier in ('high', 'medium'))
        from marts.retention_targets
        """,
    )
    assert targets == expected > 0
    assert missing_actions == 0
    assert tiers == 2


def test_orders_only_log_trains_and_scores(retail_build: Build, tmp_path: Path) -> None:
    """The real online-retail order log: the churn marts build, event features are zero (not
    missing), and the model trains (dropping the columns an orders-only log leaves empty)."""
    assert retail_build.result.returncode == 0
    warehouse = retail_build.warehouse_path
    [(rows, cutoffs, events, sessions, buyers)] = query(
        warehouse,
        """
        select count(*), count(distinct cutoff_date), sum(events_28d), sum(sessions_28d),
            count(*) filter (where bgnbd_frequency is not null)
        from marts.churn_features
        """,
    )
    assert rows > 1000 and cutoffs == dbt_vars()["churn_cutoff_count"]
    assert events == sessions == 0
    assert buyers == rows  # every active user of an orders-only log has a paid order
    result = pipeline.train_and_evaluate(warehouse, model_dir=tmp_path)
    evaluation = result.evaluations.set_index("model_name")["roc_auc"]
    assert evaluation["gradient_boosting"] > 0.65
    assert evaluation["bgnbd"] > 0.65
    scores = pipeline.score_latest(warehouse, model_dir=tmp_path)
    assert len(scores) > 0 and scores["churn_probability"].between(0, 1).all()
