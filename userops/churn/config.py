"""Churn settings. Definitions and thresholds live in dbt_project.yml (vars churn_*), so dbt docs,
the marts and the Python model read the same numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from userops.paths import PROJECT_DIR


@dataclass(frozen=True)
class ChurnConfig:
    """Everything that determines a trained model besides the data (hashed into its version)."""

    risk_medium_threshold: float = 0.4
    risk_high_threshold: float = 0.7
    random_seed: int = 42
    # Gradient boosting: small, regularised trees; fixed iterations (no early-stopping split)
    # so the model depends only on the data and the seed.
    max_iter: int = 150
    learning_rate: float = 0.05
    max_leaf_nodes: int = 7
    min_samples_leaf: int = 80
    l2_regularization: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.risk_medium_threshold < self.risk_high_threshold <= 1.0:
            raise ValueError(
                "churn risk thresholds must satisfy 0 < medium < high <= 1, got "
                f"medium={self.risk_medium_threshold}, high={self.risk_high_threshold}"
            )

    @property
    def min_train_rows(self) -> int:
        """Training rows a tree needs to grow all its max_leaf_nodes leaves of min_samples_leaf
        rows each. Below 2 x min_samples_leaf it cannot split at all and every user gets the
        same probability; below this the model is not the model the settings describe, so
        comparing it with a baseline says nothing."""
        return self.max_leaf_nodes * self.min_samples_leaf

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# dbt var name -> ChurnConfig field. The label window is not here: it is read from the data
# (churn_cutoffs.label_window_days), which is what the labels were actually built with.
DBT_VARS = {
    "churn_risk_medium_threshold": "risk_medium_threshold",
    "churn_risk_high_threshold": "risk_high_threshold",
    "churn_random_seed": "random_seed",
}


def dbt_vars(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The vars block of dbt_project.yml."""
    text = (Path(project_dir) / "dbt_project.yml").read_text()
    return dict(yaml.safe_load(text).get("vars") or {})


def config_from_vars(
    variables: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> ChurnConfig:
    """ChurnConfig from dbt vars (missing ones keep the defaults) and explicit overrides, which
    may use either the dbt var name or the field name."""
    values: dict[str, Any] = {}
    for var_name, field in DBT_VARS.items():
        if var_name in variables:
            values[field] = variables[var_name]
    for key, value in (overrides or {}).items():
        values[DBT_VARS.get(key, key)] = value
    return ChurnConfig(**values)


def load_config(
    overrides: Mapping[str, Any] | None = None, project_dir: Path = PROJECT_DIR
) -> ChurnConfig:
    return config_from_vars(dbt_vars(project_dir), overrides)
