"""Project definitions the quality suites read: dbt vars, the landing contract, known events.

Everything comes from the files the dbt project reads too, so a threshold or a required column
is defined once.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
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


def landing_glob(landing_dir: Path, table: str, file_format: str | None = None) -> str:
    """Same glob as macros/landing/landing_table_ready.sql (landing_glob); `file_format`
    overrides the project's var (a build run with --vars '{landing_format: csv}')."""
    return f"{Path(landing_dir)}/{table}/*/*.{file_format or landing_format()}"


def reason_threshold_vars(values: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Which dq_* var bounds the share of a landing table's rows quarantined for each reason
    (var dq_reason_max_share_vars): the grouping the landing suites grade with (required values,
    ids, values in range), which the dbt quarantine gate reads too. `values`: the vars to read
    (dbt_project.yml's when None; a build's --vars merged over them)."""
    values = dbt_vars() if values is None else values
    return {str(reason): str(name) for reason, name in values["dq_reason_max_share_vars"].items()}


def reason_threshold(reason: str, values: Mapping[str, Any] | None = None) -> tuple[str, float]:
    """(dbt var, max share) for a quarantine reason; unknown reasons take the strictest var."""
    values = dbt_vars() if values is None else values
    names = reason_threshold_vars(values)
    name = names.get(reason)
    if name is None:
        name = min(set(names.values()), key=lambda var: float(values[var]))
    return name, float(values[name])


def mandatory_tables() -> list[str]:
    """Landing tables a build cannot do without (var mandatory_landing_tables, as
    macros/landing/landing_table_ready.sql reads it; default orders)."""
    return list(dbt_vars().get("mandatory_landing_tables", ["orders"]))


def missing_mandatory_message(landing_dir: Path, table: str, file_format: str | None = None) -> str:
    """The text landing_table_ready.sql raises for a mandatory table without files."""
    return (
        f"Landing table '{table}' is mandatory but no file matches "
        f"{landing_glob(landing_dir, table, file_format)}. Generate sample data (userops generate)"
        " or import your own (userops import)."
    )
