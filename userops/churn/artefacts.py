"""Versioned model artefacts: <model dir>/churn/<version>/ model.pkl, metrics.json, config.json.

The version is a content hash of the training configuration and the training data, so
retraining on the same data with the same seed reproduces the same version (and model)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import sklearn

from userops.churn.models import ChurnClassifier
from userops.paths import PROJECT_DIR

LATEST_FILE = "LATEST"


def default_model_dir() -> Path:
    return Path(os.environ.get("USEROPS_MODEL_DIR", PROJECT_DIR / "data" / "models")).resolve()


def churn_dir(model_dir: Path | None = None) -> Path:
    return Path(model_dir or default_model_dir()) / "churn"


def data_fingerprint(frame: pd.DataFrame) -> str:
    """Hash of the rows and columns a model is trained on (order-sensitive, as training is)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(hashes.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def model_version(training_config: dict[str, Any], fingerprint: str) -> str:
    payload = json.dumps(
        {"config": training_config, "data": fingerprint, "sklearn": sklearn.__version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class ChurnArtefact:
    """What scoring needs: the fitted classifier and how it was trained."""

    version: str
    classifier: ChurnClassifier
    label_window_days: int
    trained_cutoffs: tuple[date, ...]
    training_config: dict[str, Any]


def save(artefact: ChurnArtefact, metrics: dict[str, Any], model_dir: Path | None = None) -> Path:
    """Write the version folder atomically (temp folder + rename) and point LATEST at it."""
    root = churn_dir(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / artefact.version
    staging = Path(tempfile.mkdtemp(prefix=f".{artefact.version}-", dir=root))
    try:
        with open(staging / "model.pkl", "wb") as handle:
            pickle.dump(artefact, handle, protocol=pickle.HIGHEST_PROTOCOL)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
        (staging / "config.json").write_text(
            json.dumps(artefact.training_config, indent=2, default=str) + "\n"
        )
        # Same version = same config and data: replacing it changes nothing but the timestamps.
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (root / LATEST_FILE).write_text(artefact.version + "\n")
    return target


def latest_version(model_dir: Path | None = None) -> str:
    pointer = churn_dir(model_dir) / LATEST_FILE
    if not pointer.exists():
        raise FileNotFoundError(f"no trained churn model under {pointer.parent}: train one first")
    return pointer.read_text().strip()


def load(version: str | None = None, model_dir: Path | None = None) -> ChurnArtefact:
    version = version or latest_version(model_dir)
    # Only files this project wrote are unpickled (the model folder is local, not user input).
    with open(churn_dir(model_dir) / version / "model.pkl", "rb") as handle:
        artefact = pickle.load(handle)
    if not isinstance(artefact, ChurnArtefact):
        raise TypeError(f"{version}/model.pkl is not a churn model artefact")
    return artefact


def load_metrics(version: str | None = None, model_dir: Path | None = None) -> dict[str, Any]:
    version = version or latest_version(model_dir)
    return json.loads((churn_dir(model_dir) / version / "metrics.json").read_text())
