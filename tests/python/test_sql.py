"""userops/sql.py: values that cannot be bind parameters reach DuckDB as the same string."""

from __future__ import annotations

import duckdb
import pytest

from userops.sql import sql_identifier, sql_string_literal

AWKWARD = ["plain", "o'brien", "''", "it's a \\ path\\'", "new\nline", "日本'語", "", "a;' drop"]


@pytest.mark.parametrize("value", AWKWARD)
def test_a_string_literal_reads_back_as_the_same_string(value: str) -> None:
    assert duckdb.sql(f"select {sql_string_literal(value)}").fetchall() == [(value,)]


@pytest.mark.parametrize("name", ["users", 'we"ird', "o'brien", "sp ace", '"'])
def test_an_identifier_names_exactly_that_table(name: str) -> None:
    with duckdb.connect() as connection:
        connection.execute(f"create table {sql_identifier(name)} as select 1 as x")
        assert connection.execute("select table_name from duckdb_tables()").fetchall() == [(name,)]


def test_a_nul_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sql_string_literal("a\0b")
    with pytest.raises(ValueError, match="NUL"):
        sql_identifier("a\0b")
