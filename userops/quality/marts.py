"""Great Expectations suites on the marts BI reads, built from what exists at run time.

Every mart gets the generic rules (no PII column; every numeric column named as a share,
`*_rate`, `*_share`, `*_probability`, optionally with a window suffix such as `_28d`, is in
[0, 1], an error: by the project's naming a column that is not a share must not carry these
names, see is_share_column);
some marts get their own invariants when present (table and column names are discovered, so the
rules switch on when other domains' marts appear):
- users: user_id unique and not null;
- metric_values: the values of the catalogue metrics whose source column is a share (e.g.
  paying_rate, d7_retention) are in [0, 1] in every breakdown;
- landing_row_accounting: raw rows = staged + quarantined for every table; the share of a
  table's raw rows quarantined for one reason above that reason's dq_max_* var is a warning
  (var dq_reason_max_share_vars);
- user_layers: per as-of date and layer dimension, the users in the layers sum to all users
  (one row per user and date, no user without a layer);
- retention_cohorts: unbounded ("on or after period N") retained users never increase with the
  period number within a cohort cell.
All are errors except the quarantine shares.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from userops.paths import PROJECT_DIR
from userops.quality.settings import reason_threshold
from userops.quality.validate import CheckOutcome, Rule, run_rules

# Column names that would carry personal data in clear (staging hashes email and phone).
PII_COLUMNS = ["email", "phone", "phone_number", "mobile", "id_card", "id_number", "ip_address"]
# A share by name: <x>_rate, <x>_share, <x>_probability, or the bare word, optionally followed by
# a window such as _28d (active_day_share_28d). rate_effect or share_count are not shares.
SHARE_NAME = re.compile(r"(^|_)(rate|share|probability)(_\d+d)?$")
METRIC_CATALOGUE_CSV = PROJECT_DIR / "seeds" / "metric_catalogue.csv"
NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)
LAYER_DIMENSIONS = [
    "rfm_segment",
    "rfm_segment_code",
    "lifecycle_stage",
    "value_tier",
    "activity_tier",
]


@dataclass(frozen=True)
class Validation:
    """A frame to validate and its rules (one GX suite)."""

    suite: str
    frame: pd.DataFrame
    rules: list[Rule]


def _columns(
    connection: duckdb.DuckDBPyConnection, schema: str, table: str
) -> list[tuple[str, str]]:
    return [
        (str(name), str(data_type).upper())
        for name, data_type in connection.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def is_share_column(column: str) -> bool:
    """A share of users, orders or days by the project's naming (retention_rate, holdout_share,
    churn_probability, active_day_share_28d…): its values must lie in [0, 1]. A per-user amount
    or any other unbounded value must be named otherwise (metric_change_decompositions calls
    GMV per buyer a unit value)."""
    return SHARE_NAME.search(column.lower()) is not None


def _is_numeric(data_type: str) -> bool:
    return data_type.startswith(NUMERIC_TYPES)


def generic_validations(
    connection: duckdb.DuckDBPyConnection,
    relation: str,
    table: str,
    columns: list[tuple[str, str]],
) -> list[Validation]:
    schema_frame = pd.DataFrame({"column_name": [name.lower() for name, _ in columns]})
    validations = [
        Validation(
            f"mart_{table}_schema",
            schema_frame,
            [
                Rule(
                    "no_pii_columns",
                    "expect_column_values_to_not_be_in_set",
                    {"column": "column_name", "value_set": PII_COLUMNS},
                    f"marts.{table} has no PII column ({', '.join(PII_COLUMNS)})",
                )
            ],
        )
    ]
    rates = [
        name for name, data_type in columns if is_share_column(name) and _is_numeric(data_type)
    ]
    if rates:
        selected = ", ".join(f'"{name}"' for name in rates)
        frame = connection.execute(f"select {selected} from {relation}").df()
        validations.append(
            Validation(
                f"mart_{table}_rates",
                frame,
                [
                    Rule(
                        f"{name}_between_0_and_1",
                        "expect_column_values_to_be_between",
                        {"column": name, "min_value": 0, "max_value": 1},
                        f"{table}.{name} is a share in [0, 1]",
                    )
                    for name in rates
                ],
            )
        )
    return validations


def users_validations(connection: duckdb.DuckDBPyConnection, relation: str) -> list[Validation]:
    frame = connection.execute(f"select user_id from {relation}").df()
    return [
        Validation(
            "mart_users_keys",
            frame,
            [
                Rule(
                    "user_id_not_null",
                    "expect_column_values_to_not_be_null",
                    {"column": "user_id"},
                    "marts.users.user_id is present",
                ),
                Rule(
                    "user_id_unique",
                    "expect_column_values_to_be_unique",
                    {"column": "user_id"},
                    "marts.users.user_id is unique",
                ),
            ],
        )
    ]


def _relation_exists(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    (count,) = connection.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(count)


def accounting_validations(
    connection: duckdb.DuckDBPyConnection, relation: str, schema: str = "marts"
) -> list[Validation]:
    frame = connection.execute(
        f"select table_name, raw_rows - staged_rows - quarantined_rows as unaccounted_rows"
        f" from {relation}"
    ).df()
    validations = [
        Validation(
            "mart_landing_row_accounting",
            frame,
            [
                Rule(
                    "raw_equals_staged_plus_quarantined",
                    "expect_column_values_to_be_between",
                    {"column": "unaccounted_rows", "min_value": 0, "max_value": 0},
                    "raw rows = staged + quarantined rows for every landing table",
                ),
            ],
        )
    ]
    if _relation_exists(connection, schema, "quarantined_rows"):
        shares = connection.execute(
            f"""
            select accounting.table_name, reasons.quarantine_reason,
                cast(reasons.quarantined as double) / accounting.raw_rows as quarantined_share
            from {relation} as accounting
            inner join (
                select table_name, quarantine_reason, count(*) as quarantined
                from "{schema}"."quarantined_rows" group by all
            ) as reasons on reasons.table_name = accounting.table_name
            where accounting.raw_rows > 0
            order by 1, 2
            """
        ).fetchall()
        rows = []
        for table, reason, share in shares:
            var, limit = reason_threshold(reason)
            rows.append(
                f"{table}: {share:.1%} {reason} > {var} {limit:.1%}" if share > limit else None
            )
        validations.append(
            Validation(
                "mart_landing_quarantine_shares",
                pd.DataFrame({"over_threshold": pd.Series(rows, dtype="object")}),
                [
                    Rule(
                        "quarantined_share_per_reason_within_dq_max",
                        "expect_column_values_to_be_null",
                        {"column": "over_threshold"},
                        "each landing table's rows quarantined for one reason are within that "
                        "reason's dq_max_* share",
                        None,
                    )
                ],
            )
        )
    return validations


def share_metric_codes(catalogue_csv: Path = METRIC_CATALOGUE_CSV) -> list[str]:
    """Catalogue metrics whose source column is a share by name (their values lie in [0, 1])."""
    with Path(catalogue_csv).open(newline="") as handle:
        return sorted(
            row["metric_code"]
            for row in csv.DictReader(handle)
            if is_share_column(row["source_column"])
        )


def metric_values_validations(
    connection: duckdb.DuckDBPyConnection, relation: str
) -> list[Validation]:
    codes = share_metric_codes()
    if not codes:
        return []
    frame = connection.execute(
        f"select metric_value from {relation} where metric_code in "
        f"({', '.join('?' for _ in codes)})",
        codes,
    ).df()
    return [
        Validation(
            "mart_metric_values_shares",
            frame,
            [
                Rule(
                    "share_metric_values_between_0_and_1",
                    "expect_column_values_to_be_between",
                    {"column": "metric_value", "min_value": 0, "max_value": 1},
                    f"metric_values.metric_value of the share metrics ({', '.join(codes)}) is "
                    "in [0, 1]",
                )
            ],
        )
    ]


def layer_validations(
    connection: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]]
) -> list[Validation]:
    names = {name for name, _ in columns}
    dimensions = [name for name in LAYER_DIMENSIONS if name in names]
    if not {"user_id", "as_of_date"} <= names or not dimensions:
        return []
    # '(rows)' counts rows, so a user listed twice on a date also breaks the sum.
    parts = [
        f"select as_of_date, '{name}' as layer_dimension, count(\"{name}\") as users_in_layers,"
        f" count(distinct user_id) as all_users from {relation} group by as_of_date"
        for name in dimensions
    ]
    parts.append(
        "select as_of_date, '(rows)' as layer_dimension, count(*) as users_in_layers,"
        f" count(distinct user_id) as all_users from {relation} group by as_of_date"
    )
    frame = connection.execute(" union all ".join(parts)).df()
    return [
        Validation(
            "mart_user_layers_sum",
            frame,
            [
                Rule(
                    "layers_sum_to_all_users",
                    "expect_column_pair_values_to_be_equal",
                    {"column_A": "users_in_layers", "column_B": "all_users"},
                    "every layer dimension sums to all users on each as-of date",
                ),
            ],
        )
    ]


def retention_validations(
    connection: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]]
) -> list[Validation]:
    names = {name: data_type for name, data_type in columns}
    period = next((name for name in names if name in ("period_number", "period")), None)
    measure = next((name for name in ("retained_users", "retention_rate") if name in names), None)
    if period is None or measure is None:
        return []
    text_columns = [name for name, data_type in columns if data_type.startswith("VARCHAR")]
    mode = next(
        (
            name
            for name in text_columns
            if connection.execute(
                f"select count(*) from {relation} where lower(\"{name}\") like '%unbounded%'"
            ).fetchone()[0]
        ),
        None,
    )
    if mode is None:
        return []
    # A cohort cell: the text columns (grain, type, basis, mode, segment) and the dates that do
    # not move with the period (cohort start; not period start or window end).
    cell = [
        name
        for name, data_type in columns
        if name != period
        and (
            data_type.startswith("VARCHAR")
            or (
                data_type.startswith(("DATE", "TIMESTAMP"))
                and not any(word in name for word in ("period", "window"))
            )
        )
    ]
    partition = ", ".join(f'"{name}"' for name in cell)
    frame = connection.execute(
        f'select {partition}, "{period}" as period_number,'
        f' "{measure}" - lag("{measure}") over (partition by {partition} order by "{period}")'
        " as increase_over_previous_period"
        f" from {relation} where lower(\"{mode}\") like '%unbounded%'"
    ).df()
    return [
        Validation(
            "mart_retention_cohorts_unbounded",
            frame,
            [
                Rule(
                    "unbounded_retention_non_increasing",
                    "expect_column_values_to_be_between",
                    {"column": "increase_over_previous_period", "max_value": 0},
                    f"unbounded {measure} never increases with the period number",
                ),
            ],
        )
    ]


def mart_validations(
    connection: duckdb.DuckDBPyConnection, schema: str, table: str
) -> list[Validation]:
    """Every validation that applies to <schema>.<table> as it exists now ([] when it doesn't)."""
    columns = _columns(connection, schema, table)
    if not columns:
        return []
    relation = f'"{schema}"."{table}"'
    validations = generic_validations(connection, relation, table, columns)
    if table == "users":
        validations += users_validations(connection, relation)
    elif table == "landing_row_accounting":
        validations += accounting_validations(connection, relation, schema)
    elif table == "metric_values":
        validations += metric_values_validations(connection, relation)
    elif table == "user_layers":
        validations += layer_validations(connection, relation, columns)
    elif table == "retention_cohorts":
        validations += retention_validations(connection, relation, columns)
    return validations


def check_mart(warehouse_path: str, schema: str, table: str) -> list[CheckOutcome] | None:
    """Outcomes of every rule on <schema>.<table>; None when the relation does not exist."""
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        validations = mart_validations(connection, schema, table)
    if not validations:
        return None
    outcomes: list[CheckOutcome] = []
    for validation in validations:
        outcomes += run_rules(validation.suite, validation.frame, validation.rules)
    return outcomes
