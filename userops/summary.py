"""The short report printed after a build: rows per layer and model, where the warehouse is."""

from __future__ import annotations

from pathlib import Path

import duckdb

LAYERS = ("staging", "intermediate", "marts")


def layer_row_counts(warehouse_path: Path) -> dict[str, dict[str, int]]:
    """Row counts of every relation in the staging, intermediate and marts schemas."""
    counts: dict[str, dict[str, int]] = {layer: {} for layer in LAYERS}
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        relations = connection.execute(
            """
            select table_schema, table_name
            from information_schema.tables
            where table_schema in ('staging', 'intermediate', 'marts')
                and table_name not like 'base\\_%' escape '\\'
            order by table_schema, table_name
            """
        ).fetchall()
        for schema, name in relations:
            (count,) = connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            counts[schema][name] = int(count)
    return counts


def format_summary(counts: dict[str, dict[str, int]], warehouse_path: Path) -> str:
    lines = ["", "userops build summary", "====================="]
    for layer in LAYERS:
        models = counts.get(layer, {})
        lines.append(f"{layer} ({len(models)} models, {sum(models.values()):,} rows)")
        lines += [f"  {name:<40} {rows:>12,}" for name, rows in models.items()]
    lines += [
        "",
        f"Warehouse: {warehouse_path}",
        '  query it:   .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{warehouse_path}', read_only=True).sql('from marts.users limit 5'))\"",
        "  Dagster UI: make dagster   (then open http://127.0.0.1:3000)",
    ]
    return "\n".join(lines)
