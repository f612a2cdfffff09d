"""Shared fixtures: one small generated data set and one dbt build of it per test session."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from userops.dbt import run_dbt
from userops.generate import generate

SAMPLE_END_DATE = date(2026, 6, 30)
SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"


@dataclass(frozen=True)
class Build:
    landing_dir: Path
    warehouse_path: Path
    result: subprocess.CompletedProcess[str]
    injected_defects: dict[str, dict[str, int]]


@pytest.fixture(scope="session")
def sample_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate(
        root / "landing", users=400, days=45, end_date=SAMPLE_END_DATE, seed=7, bad_row_share=0.02
    )
    return root / "landing"


@pytest.fixture(scope="session")
def sample_build(sample_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    work = tmp_path_factory.mktemp("sample_build")
    warehouse = work / "warehouse.duckdb"
    result = run_dbt(
        ["build"],
        landing_dir=sample_landing,
        warehouse_path=warehouse,
        capture=True,
        target_path=work / "target",
    )
    defects_file = sample_landing.parent / "ground_truth" / "injected_defects.json"
    return Build(sample_landing, warehouse, result, json.loads(defects_file.read_text()))
