"""Putting values into SQL text where bind parameters cannot go.

DuckDB takes bind parameters for values in queries, but not for the file name of ATTACH or
COPY ... TO, nor inside a view definition (a view stores SQL text). Those places get their
values through these two helpers, so a path such as `/data/o'brien/w.duckdb` is one string to
DuckDB, never the end of one.
"""

from __future__ import annotations

import os


def sql_string_literal(value: str | os.PathLike[str]) -> str:
    """A single-quoted SQL string literal: quotes doubled, everything else as it is.

    Standard SQL (and DuckDB) has no backslash escapes inside '...', so doubling the quote is
    the whole job. A NUL byte cannot be part of a DuckDB string or a path: refuse it.
    """
    text = os.fspath(value)
    if "\0" in text:
        raise ValueError(f"a NUL byte cannot go into an SQL string: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A double-quoted SQL identifier (schema, table, column name): quotes doubled."""
    if "\0" in name:
        raise ValueError(f"a NUL byte cannot go into an SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'
