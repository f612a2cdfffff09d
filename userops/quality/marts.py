"""Great Expectations suites on the marts BI reads, built from what exists at run time.

Every mart gets the generic rules (no PII column; `*_rate` / `*_share` columns in [0, 1]: an error
for the known rates, see is_known_rate, a warning for other names);
some marts get their own invariants when present (table and column names are discovered, so the
rules switch on when other domains' marts appear):
- users: user_id unique and not null;
- landing_row_accounting: raw rows = staged + quarantined for every table; quarantined share
  above dq_max_null_required_share is a warning;
- user_layers: per as-of date and layer dimension, the users in the layers sum to all users
  (one row per user and date, no user without a layer);
- retention_cohorts: unbounded ("on or after period N") retained users never increase with the
  period number within a cohort cell.
All are errors except the quarantine share.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from userops.quality.settings import dbt_var
from userops.quality.validate import CheckOutcome, Rule, run_rules

# Column names that would carry personal data in clear (staging hashes email and phone).
PII_COLUMNS = ["email", "phone", "phone_number", "mobile", "id_card", "id_number", "ip_address"]
RATE_SUFFIXES = ("_rate", "_share")
KNOWN_RATE_SUFFIXES = (
    "retention_rate",
    "conversion_rate",
    "activation_rate",
    "repurchase_rate",
    "churn_rate",
    "paying_rate",
    "_user_share",
    "holdout_share",
)
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


def is_known_rate(column: str) -> bool:
    """A share of users or orders by the project's naming (retention_rate, d7_retention_rate,
    conversion_rate, holdout_share…): outside [0, 1] is an error. Other *_rate / *_share columns
    may be per-user amounts in some marts (e.g. a metric decomposition), so for them it is only
    a warning."""
    name = column.lower()
    return name in ("rate", "share") or name.endswith(KNOWN_RATE_SUFFIXES)


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
        name
        for name, data_type in columns
        if name.lower().endswith(RATE_SUFFIXES) and _is_numeric(data_type)
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
                        f"{table}.{name} is a rate in [0, 1]",
                        0.0 if is_known_rate(name) else None,
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


def accounting_validations(
    connection: duckdb.DuckDBPyConnection, relation: str
) -> list[Validation]:
    frame = connection.execute(
        "select table_name, raw_rows - staged_rows - quarantined_rows as unaccounted_rows,"
        " case when raw_rows > 0 then cast(quarantined_rows as double) / raw_rows end"
        " as quarantined_share"
        f" from {relation}"
    ).df()
    return [
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
                Rule(
                    "quarantined_share_small",
                    "expect_column_values_to_be_between",
                    {
                        "column": "quarantined_share",
                        "min_value": 0,
                        "max_value": float(dbt_var("dq_max_null_required_share")),
                    },
                    "quarantined share of each landing table is small",
                    None,
                ),
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
        validations += accounting_validations(connection, relation)
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
