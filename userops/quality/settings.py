"""Project definitions the quality suites read: dbt vars, the landing contract, known events.

Everything comes from the files the dbt project reads too, so a threshold or a required column
is defined once.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from userops.paths import PROJECT_DIR

SOURCES_YML = PROJECT_DIR / "models" / "staging" / "landing" / "_landing__sources.yml"
EVENT_MAPPING_CSV = PROJECT_DIR / "seeds" / "event_mapping.csv"


@cache
def dbt_vars() -> dict[str, Any]:
    """The `vars:` block of dbt_project.yml."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    return dict(project.get("vars") or {})


def dbt_var(name: str) -> Any:
    values = dbt_vars()
    if name not in values:
        raise KeyError(f"dbt var {name!r} is not defined in dbt_project.yml")
    return values[name]


@cache
def landing_contract() -> dict[str, list[dict[str, Any]]]:
    """Landing table -> declared columns (name, data_type, required)."""
    sources = yaml.safe_load(SOURCES_YML.read_text())["sources"]
    landing = next(source for source in sources if source["name"] == "landing")
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in landing["tables"]:
        columns = []
        for column in table.get("columns", []):
            meta = (column.get("config") or {}).get("meta") or column.get("meta") or {}
            columns.append(
                {
                    "name": column["name"],
                    "data_type": column.get("data_type"),
                    "required": bool(meta.get("required")),
                }
            )
        tables[table["name"]] = columns
    return tables


def required_columns(table: str) -> list[str]:
    return [column["name"] for column in landing_contract()[table] if column["required"]]


@cache
def known_event_names() -> frozenset[str]:
    """Raw event names the mapping seed knows (compared lower-cased, as staging does)."""
    with EVENT_MAPPING_CSV.open(newline="") as handle:
        return frozenset(row["raw_event_name"].strip().lower() for row in csv.DictReader(handle))


def landing_format() -> str:
    return str(dbt_vars().get("landing_format", "parquet"))


def landing_glob(landing_dir: Path, table: str) -> str:
    """Same glob as macros/landing/landing_table_ready.sql (landing_glob)."""
    return f"{Path(landing_dir)}/{table}/*/*.{landing_format()}"
