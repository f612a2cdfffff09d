"""Map a user's own CSV/Parquet log onto the landing contract (docs/landing_contract.md).

The importer is a faithful mapper, not a filter: every source row is written to the landing zone,
and judging rows (missing keys, negative amounts, duplicates, ...) is left to staging, which
quarantines them with a reason code. Two consequences shape the code below:

* every landing column is written as text, so a value is never coerced (or nulled) here;
  staging casts and quarantines what does not cast;
* a timestamp that does not parse is written as its original text (so staging's cast fails and
  quarantines it as `unparseable_value`) instead of becoming null.

All the heavy lifting is done by DuckDB (read_csv/read_parquet -> SQL expressions -> partitioned
COPY), so the import scales to logs larger than memory.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from glob import glob
from pathlib import Path
from typing import Any

import duckdb
import yaml

# --------------------------------------------------------------------------------------------
# The landing contract, as data. Kept in sync with docs/landing_contract.md (a test checks it).
# Per table: column -> (type, required). The first timestamp/date column listed in PARTITION_COLUMN
# is the row's "main" timestamp, whose UTC date becomes the `dt` partition.
# --------------------------------------------------------------------------------------------

CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {
    "users": {
        "user_id": ("text", True),
        "signup_at": ("timestamp", True),
        "acquisition_channel": ("text", False),
        "platform": ("text", False),
        "gender": ("text", False),
        "birth_year": ("integer", False),
        "city": ("text", False),
        "city_tier": ("integer", False),
        "email": ("text", False),
        "phone": ("text", False),
    },
    "events": {
        "event_id": ("text", True),
        "user_id": ("text", True),
        "event_time": ("timestamp", True),
        "event_name": ("text", True),
        "session_id": ("text", False),
        "platform": ("text", False),
        "page": ("text", False),
        "referrer_user_id": ("text", False),
        "properties": ("json", False),
    },
    "orders": {
        "order_id": ("text", True),
        "user_id": ("text", True),
        "ordered_at": ("timestamp", True),
        "status": ("text", True),
        "amount": ("decimal", True),
        "discount": ("decimal", False),
        "coupon_code": ("text", False),
        "currency": ("text", False),
    },
    "order_items": {
        "order_id": ("text", True),
        "product_id": ("text", True),
        "category": ("text", True),
        "quantity": ("integer", True),
        "unit_price": ("decimal", True),
    },
    "marketing_spend": {
        "spend_date": ("date", True),
        "channel": ("text", True),
        "spend": ("decimal", True),
    },
}

# order_items has no timestamp of its own: all its rows go to the fallback day.
PARTITION_COLUMN: dict[str, str | None] = {
    "users": "signup_at",
    "events": "event_time",
    "orders": "ordered_at",
    "order_items": None,
    "marketing_spend": "spend_date",
}

# Closed value sets: a literal outside them in a mapping is a mapping bug, caught at load time.
ACCEPTED_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("orders", "status"): frozenset({"paid", "cancelled", "refunded"}),
}

ISO_TIMESTAMP = "%Y-%m-%d %H:%M:%S"
ISO_DATE = "%Y-%m-%d"
SOURCE_FORMATS = ("csv", "parquet")
CSV_OPTION_KEYS = {"delimiter", "header", "quote", "escape", "null_strings", "skip", "encoding"}
TABLE_KEYS = {"columns", "timestamp_format", "date_format"}
SPEC_KEYS = {"column", "expr", "value", "rules", "else"}


# --------------------------------------------------------------------------------------------
# Mapping model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """How one landing column is computed: a DuckDB SQL expression over source columns.

    `source` is the mapping key path (e.g. `tables.orders.columns.amount`) used in error messages.
    """

    sql: str
    source: str
    is_column_ref: bool = False


@dataclass(frozen=True)
class TableMapping:
    name: str
    columns: dict[str, ColumnSpec]
    timestamp_formats: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = (ISO_DATE,)


@dataclass(frozen=True)
class Mapping:
    source_format: str | None  # None: inferred from the file extension
    timezone: str
    csv_options: dict[str, Any]
    tables: dict[str, TableMapping]


@dataclass
class TableReport:
    rows_written: int
    partitions: list[str]
    fallback_rows: int  # rows whose main timestamp was blank/unparseable -> fallback day
    unparsed_timestamps: int  # non-blank timestamps passed through as text for staging
    files: list[Path] = field(default_factory=list)


@dataclass
class ImportReport:
    rows_read: int
    tables: dict[str, TableReport]
    fallback_date: date

    @property
    def rows_written(self) -> dict[str, int]:
        return {name: t.rows_written for name, t in self.tables.items()}


# --------------------------------------------------------------------------------------------
# Mapping parsing / validation (pure: no source needed)
# --------------------------------------------------------------------------------------------


def load_mapping(path: Path) -> Mapping:
    """Read and validate a YAML mapping file; a bad mapping raises ValueError naming the key."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"mapping {path}: not valid YAML: {exc}") from exc
    return parse_mapping(raw)


def parse_mapping(raw: Any) -> Mapping:
    """Validate a mapping given as a dict (the parsed YAML)."""
    if not isinstance(raw, dict):
        raise ValueError("mapping: expected a mapping with keys 'source' and 'tables'")
    _reject_unknown(raw, {"version", "source", "tables"}, "mapping")
    if raw.get("version", 1) != 1:
        raise ValueError(f"version: unsupported mapping version {raw['version']!r} (expected 1)")

    source = raw.get("source") or {}
    if not isinstance(source, dict):
        raise ValueError("source: expected a mapping")
    _reject_unknown(source, {"format", "timezone", "csv"}, "source")
    fmt = source.get("format")
    if fmt is not None and fmt not in SOURCE_FORMATS:
        raise ValueError(f"source.format: {fmt!r} is not one of {', '.join(SOURCE_FORMATS)}")
    tz = source.get("timezone", "UTC")
    if not isinstance(tz, str) or not _is_known_timezone(tz):
        raise ValueError(f"source.timezone: {tz!r} is not an IANA time zone (e.g. Europe/London)")
    csv_options = source.get("csv") or {}
    if not isinstance(csv_options, dict):
        raise ValueError("source.csv: expected a mapping of CSV options")
    _reject_unknown(csv_options, CSV_OPTION_KEYS, "source.csv")

    tables_raw = raw.get("tables")
    if not isinstance(tables_raw, dict) or not tables_raw:
        raise ValueError("tables: expected at least one target table (e.g. orders)")
    tables = {name: _parse_table(name, spec) for name, spec in tables_raw.items()}
    return Mapping(source_format=fmt, timezone=tz, csv_options=csv_options, tables=tables)


def _parse_table(name: str, raw: Any) -> TableMapping:
    if name not in CONTRACT:
        raise ValueError(
            f"tables.{name}: not a landing table (expected one of {', '.join(CONTRACT)})"
        )
    if not isinstance(raw, dict):
        raise ValueError(f"tables.{name}: expected a mapping with a 'columns' key")
    _reject_unknown(raw, TABLE_KEYS, f"tables.{name}")
    cols_raw = raw.get("columns")
    if not isinstance(cols_raw, dict) or not cols_raw:
        raise ValueError(f"tables.{name}.columns: expected a mapping of target column -> source")

    contract = CONTRACT[name]
    for col in cols_raw:
        if col not in contract:
            raise ValueError(
                f"tables.{name}.columns.{col}: not a column of landing table {name} "
                f"(expected one of {', '.join(contract)})"
            )
    missing = [c for c, (_, required) in contract.items() if required and c not in cols_raw]
    if missing:
        raise ValueError(
            f"tables.{name}.columns: required column(s) not mapped: {', '.join(missing)}"
        )

    columns = {
        col: _parse_column(spec, f"tables.{name}.columns.{col}", ACCEPTED_VALUES.get((name, col)))
        for col, spec in cols_raw.items()
    }
    has_ts = any(contract[c][0] == "timestamp" for c in columns)
    ts_formats = _parse_formats(raw.get("timestamp_format"), f"tables.{name}.timestamp_format")
    if ts_formats and not has_ts:
        raise ValueError(f"tables.{name}.timestamp_format: table {name} has no timestamp column")
    date_formats = _parse_formats(raw.get("date_format"), f"tables.{name}.date_format")
    return TableMapping(
        name=name,
        columns=columns,
        timestamp_formats=ts_formats,
        date_formats=date_formats or (ISO_DATE,),
    )


def _parse_formats(raw: Any, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    formats = [raw] if isinstance(raw, str) else raw
    if not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats):
        raise ValueError(f"{key}: expected a strptime format string or a list of them")
    return tuple(formats)


def _parse_column(raw: Any, key: str, accepted: frozenset[str] | None) -> ColumnSpec:
    """A column spec is a string (a source column name, or else a SQL expression) or a dict with
    exactly one of `column`, `expr`, `value` or `rules` (+ `else`)."""
    if isinstance(raw, str):
        if not raw.strip():
            raise ValueError(f"{key}: empty column / expression")
        # Whether it names a source column is only known once the source is read; see _resolve.
        return ColumnSpec(sql=raw, source=key)
    if not isinstance(raw, dict):
        raise ValueError(f"{key}: expected a source column name, a SQL expression or a mapping")
    _reject_unknown(raw, SPEC_KEYS, key)
    kinds = [k for k in ("column", "expr", "value", "rules") if k in raw]
    if len(kinds) != 1:
        raise ValueError(f"{key}: give exactly one of column, expr, value or rules")
    if "else" in raw and kinds != ["rules"]:
        raise ValueError(f"{key}.else: only allowed together with rules")
    kind = kinds[0]
    if kind == "column":
        if not isinstance(raw["column"], str) or not raw["column"]:
            raise ValueError(f"{key}.column: expected a source column name")
        return ColumnSpec(sql=_quote_ident(raw["column"]), source=key, is_column_ref=True)
    if kind == "expr":
        if not isinstance(raw["expr"], str) or not raw["expr"].strip():
            raise ValueError(f"{key}.expr: expected a SQL expression")
        return ColumnSpec(sql=raw["expr"], source=key)
    if kind == "value":
        return ColumnSpec(sql=_literal(raw["value"], f"{key}.value", accepted), source=key)
    return ColumnSpec(sql=_rules_sql(raw, key, accepted), source=key)


def _rules_sql(raw: dict[str, Any], key: str, accepted: frozenset[str] | None) -> str:
    """Compile `rules: [{when: <sql>, then: <value>}, ...], else: <value>` to a CASE (first match
    wins, like the rules read top to bottom)."""
    rules = raw["rules"]
    if not isinstance(rules, list) or not rules:
        raise ValueError(f"{key}.rules: expected a list of {{when: <SQL condition>, then: value}}")
    parts = []
    for i, rule in enumerate(rules):
        rkey = f"{key}.rules[{i}]"
        if not isinstance(rule, dict) or set(rule) != {"when", "then"}:
            raise ValueError(f"{rkey}: expected exactly the keys 'when' and 'then'")
        if not isinstance(rule["when"], str) or not rule["when"].strip():
            raise ValueError(f"{rkey}.when: expected a SQL condition")
        then = _literal(rule["then"], f"{rkey}.then", accepted)
        parts.append(f"WHEN ({rule['when']}) THEN {then}")
    otherwise = _literal(raw.get("else"), f"{key}.else", accepted) if "else" in raw else "NULL"
    return f"CASE {' '.join(parts)} ELSE {otherwise} END"


def _literal(value: Any, key: str, accepted: frozenset[str] | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{key}: expected a text or number literal, got {value!r}")
    text = str(value)
    if accepted is not None and text not in accepted:
        raise ValueError(f"{key}: {text!r} is not one of {', '.join(sorted(accepted))}")
    return "'" + text.replace("'", "''") + "'"


def _reject_unknown(raw: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    # Typos (`timezon:`) must fail loudly, not silently fall back to a default.
    unknown = sorted(set(map(str, raw)) - set(allowed))
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})"
        )


def _is_known_timezone(tz: str) -> bool:
    # Ask ICU itself: it is what converts the timestamps, so its zone list is the one that counts.
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT 1 FROM pg_timezone_names() WHERE name = ?", [tz]).fetchall()
        return bool(rows)
    finally:
        con.close()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# Source reading
# --------------------------------------------------------------------------------------------


def resolve_source_files(source: Path | str) -> list[Path]:
    """A file, a folder (its *.csv / *.parquet files, recursively) or a glob pattern."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = [Path(p) for p in sorted(glob(text, recursive=True)) if Path(p).is_file()]
    elif Path(text).is_dir():
        files = sorted(
            p for p in Path(text).rglob("*") if p.is_file() and _format_of(p) is not None
        )
    elif Path(text).is_file():
        files = [Path(text)]
    else:
        raise FileNotFoundError(f"source {text}: no such file, folder or glob")
    if not files:
        raise FileNotFoundError(f"source {text}: no CSV or Parquet files found")
    return files


def _format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        return "parquet"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    return None


def source_sql(files: list[Path], fmt: str, csv_options: dict[str, Any]) -> str:
    """SQL for the source as a relation whose columns are all text.

    Text everywhere means a value such as '00123' or '12/1/2010' is never reinterpreted before
    the mapping sees it, and failed type sniffing cannot drop or null anything.
    """
    file_list = "[" + ", ".join(_sql_str(str(f)) for f in files) + "]"
    if fmt == "parquet":
        return f"SELECT COLUMNS(*)::VARCHAR FROM read_parquet({file_list}, union_by_name = true)"
    opts = ["all_varchar = true", "union_by_name = true"]
    # ignore_errors stays false: a malformed line aborts the import instead of vanishing.
    if "delimiter" in csv_options:
        opts.append(f"delim = {_sql_str(csv_options['delimiter'])}")
    if "header" in csv_options:
        opts.append(f"header = {'true' if csv_options['header'] else 'false'}")
    if "quote" in csv_options:
        opts.append(f"quote = {_sql_str(csv_options['quote'])}")
    if "escape" in csv_options:
        opts.append(f"escape = {_sql_str(csv_options['escape'])}")
    if "skip" in csv_options:
        opts.append(f"skip = {int(csv_options['skip'])}")
    if "encoding" in csv_options:
        opts.append(f"encoding = {_sql_str(csv_options['encoding'])}")
    if "null_strings" in csv_options:
        values = csv_options["null_strings"]
        values = [values] if isinstance(values, str) else values
        opts.append("nullstr = [" + ", ".join(_sql_str(str(v)) for v in values) + "]")
    return f"SELECT * FROM read_csv({file_list}, {', '.join(opts)})"


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# Expression checking and SQL generation
# --------------------------------------------------------------------------------------------


def _resolve(spec: ColumnSpec, source_columns: list[str]) -> ColumnSpec:
    """Bind a plain-string spec: an exact source column name wins over parsing it as SQL, so a
    column called e.g. `Order Date` needs no quoting in the mapping."""
    if spec.is_column_ref or spec.sql not in source_columns:
        return spec
    return ColumnSpec(sql=_quote_ident(spec.sql), source=spec.source, is_column_ref=True)


def referenced_columns(con: duckdb.DuckDBPyConnection, expr: str, key: str) -> list[str]:
    """The column names an expression reads, via DuckDB's own parser (no regex guessing)."""
    rows = con.execute("SELECT json_serialize_sql(?)", [f"SELECT ({expr}) FROM __src"]).fetchall()
    tree = json.loads(rows[0][0])
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        msg = tree.get("error_message", "expected a single SQL expression")
        raise ValueError(f"{key}: not a source column and not a valid SQL expression: {msg}")
    found: list[str] = []
    _collect_column_refs(tree["statements"][0]["node"]["select_list"], found)
    return found


def _collect_column_refs(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF":
            found.append(node["column_names"][-1])
        for value in node.values():
            _collect_column_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_column_refs(value, found)


def check_columns(
    con: duckdb.DuckDBPyConnection, spec: ColumnSpec, source_columns: list[str]
) -> None:
    known = {c.lower() for c in source_columns}  # DuckDB identifiers are case-insensitive
    for ref in referenced_columns(con, spec.sql, spec.source):
        if ref.lower() not in known:
            raise ValueError(
                f"{spec.source}: unknown source column {ref!r} "
                f"(source columns: {', '.join(source_columns)})"
            )


def parsed_timestamp_sql(text_sql: str, formats: tuple[str, ...], timezone: str) -> str:
    """SQL for a naive UTC TIMESTAMP parsed from local text, or NULL when it does not parse.

    The declared formats are tried first; DuckDB's own cast comes last so that any text staging
    *could* cast (ISO, with or without offset) is converted here from the source zone rather than
    slipping through and being read by staging as if it were already UTC. The session TimeZone is
    the source zone, so a text without offset is read as local time and one with offset honours it.
    """
    candidates = []
    if formats:
        fmt_list = "[" + ", ".join(_sql_str(f) for f in formats) + "]"
        if any("%z" in f or "%Z" in f for f in formats):
            # Formats carrying an offset yield TIMESTAMPTZ already; normalise through the cast.
            candidates.append(f"try_cast(try_strptime({text_sql}, {fmt_list}) AS TIMESTAMPTZ)")
        else:
            candidates.append(
                f"timezone({_sql_str(timezone)}, try_strptime({text_sql}, {fmt_list}))"
            )
    candidates.append(f"try_cast({text_sql} AS TIMESTAMPTZ)")
    return f"timezone('UTC', coalesce({', '.join(candidates)}))"


def parsed_date_sql(text_sql: str, formats: tuple[str, ...]) -> str:
    fmt_list = "[" + ", ".join(_sql_str(f) for f in formats) + "]"
    parsed = f"CAST(try_strptime({text_sql}, {fmt_list}) AS DATE)"
    return f"coalesce({parsed}, try_cast({text_sql} AS DATE))"


def table_select_sql(table: TableMapping, timezone: str, fallback: date) -> str:
    """SELECT producing the landing columns (all text) plus the `dt` partition column.

    Reads from `__raw`, a relation with each mapped value as text in column `"<target>"`.
    Every contract column is written, in contract order; unmapped optional ones as null text, so
    every file of a table has the same schema whatever the mapping maps.
    """
    contract = CONTRACT[table.name]
    outputs = []
    for col, (kind, _) in contract.items():
        raw = _quote_ident(col)
        if col not in table.columns:
            outputs.append(f"CAST(NULL AS VARCHAR) AS {raw}")
        elif kind == "timestamp":
            parsed = parsed_timestamp_sql(raw, table.timestamp_formats, timezone)
            # Unparseable text passes through unchanged: staging's cast fails -> quarantined.
            outputs.append(f"coalesce(strftime({parsed}, '{ISO_TIMESTAMP}'), {raw}) AS {raw}")
        elif kind == "date":
            parsed = parsed_date_sql(raw, table.date_formats)
            outputs.append(f"coalesce(strftime({parsed}, '{ISO_DATE}'), {raw}) AS {raw}")
        else:
            outputs.append(f"{raw} AS {raw}")

    part_col = PARTITION_COLUMN[table.name]
    fallback_sql = _sql_str(fallback.isoformat())
    if part_col is None or part_col not in table.columns:
        dt = f"{fallback_sql} AS dt"
    elif contract[part_col][0] == "date":
        dt = (
            f"coalesce(strftime({parsed_date_sql(_quote_ident(part_col), table.date_formats)}, "
            f"'{ISO_DATE}'), {fallback_sql}) AS dt"
        )
    else:
        parsed = parsed_timestamp_sql(_quote_ident(part_col), table.timestamp_formats, timezone)
        dt = f"coalesce(strftime({parsed}, '{ISO_DATE}'), {fallback_sql}) AS dt"
    return f"SELECT {', '.join(outputs)}, {dt} FROM __raw"


def raw_select_sql(table: TableMapping) -> str:
    """Evaluate every mapping expression once, cast to text (the importer never types values)."""
    cols = ", ".join(
        f"CAST(({spec.sql}) AS VARCHAR) AS {_quote_ident(col)}"
        for col, spec in table.columns.items()
    )
    return f"SELECT {cols} FROM __src"


# --------------------------------------------------------------------------------------------
# The import
# --------------------------------------------------------------------------------------------


def import_data(
    source: Path,
    mapping: Path | dict,
    landing_dir: Path,
    *,
    fallback_date: date | None = None,
) -> ImportReport:
    """Read `source` (a CSV or Parquet file, or a folder/glob of them), apply the mapping, write
    landing files under landing_dir/<table>/dt=YYYY-MM-DD/*.parquet. Returns rows read and rows
    written per table.

    Files are named `part-<source name>-<n>.parquet`; re-importing the same source replaces its
    earlier files (so an import is idempotent) while other sources' files are left alone.
    Rows whose main timestamp is blank or unparseable go to `dt=<fallback_date>`, by default the
    UTC date of the import. The write is all-or-nothing: files are produced in a scratch folder
    and only moved into place once every table has been written and counted.
    """
    spec = parse_mapping(mapping) if isinstance(mapping, dict) else load_mapping(Path(mapping))
    fallback = fallback_date or datetime.now(UTC).date()
    files = resolve_source_files(source)
    fmt = spec.source_format or _single_format(files)
    landing_dir = Path(landing_dir)
    prefix = f"part-{_slug(source)}"

    con = duckdb.connect()
    scratch = landing_dir / f".import-{uuid.uuid4().hex}"
    try:
        # The session zone makes zone-less text cast as *source local* time (see
        # parsed_timestamp_sql); output is converted to UTC explicitly, so nothing else depends
        # on it.
        con.execute(f"SET TimeZone = {_sql_str(spec.timezone)}").fetchall()
        src_sql = source_sql(files, fmt, spec.csv_options)
        con.execute(f"CREATE TEMP VIEW __src AS {src_sql}").fetchall()
        source_columns = [r[0] for r in con.execute("DESCRIBE __src").fetchall()]
        rows_read = con.execute("SELECT count(*) FROM __src").fetchall()[0][0]

        tables: dict[str, TableReport] = {}
        for table in spec.tables.values():
            bound = {c: _resolve(s, source_columns) for c, s in table.columns.items()}
            table = TableMapping(table.name, bound, table.timestamp_formats, table.date_formats)
            for col_spec in bound.values():
                check_columns(con, col_spec, source_columns)
            tables[table.name] = _write_table(con, table, spec.timezone, fallback, scratch, prefix)
            if tables[table.name].rows_written != rows_read:
                # The whole point of the importer: never lose a row. Refuse to publish if we did.
                raise RuntimeError(
                    f"{table.name}: read {rows_read} rows but wrote "
                    f"{tables[table.name].rows_written}; nothing was written to {landing_dir}"
                )
        for name, report in tables.items():
            report.files = _publish(scratch / name, landing_dir / name, prefix)
        return ImportReport(rows_read=rows_read, tables=tables, fallback_date=fallback)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _write_table(
    con: duckdb.DuckDBPyConnection,
    table: TableMapping,
    timezone: str,
    fallback: date,
    scratch: Path,
    prefix: str,
) -> TableReport:
    out_dir = scratch / table.name
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW __raw AS {raw_select_sql(table)}").fetchall()
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __out AS {table_select_sql(table, timezone, fallback)}"
        ).fetchall()
    except duckdb.Error as exc:
        # A mapping expression failed on some row (e.g. CAST('abc' AS INTEGER)). We do not null
        # the value silently: the user fixes the expression (try_cast + a text fallback).
        raise ValueError(f"tables.{table.name}: a column expression failed: {exc}") from exc

    con.execute(
        f"COPY __out TO {_sql_str(str(out_dir))} "
        f"(FORMAT parquet, PARTITION_BY (dt), FILENAME_PATTERN '{prefix}-{{i}}')"
    ).fetchall()

    written = con.execute(
        f"SELECT count(*) FROM read_parquet({_sql_str(str(out_dir / '*' / '*.parquet'))})"
    ).fetchall()[0][0]
    partitions = sorted(p.name.removeprefix("dt=") for p in out_dir.iterdir() if p.is_dir())
    fallback_rows, unparsed = _fallback_counts(con, table, timezone)
    return TableReport(
        rows_written=written,
        partitions=partitions,
        fallback_rows=fallback_rows,
        unparsed_timestamps=unparsed,
    )


def _fallback_counts(
    con: duckdb.DuckDBPyConnection, table: TableMapping, timezone: str
) -> tuple[int, int]:
    part_col = PARTITION_COLUMN[table.name]
    if part_col is None or part_col not in table.columns:
        n = con.execute("SELECT count(*) FROM __out").fetchall()[0][0]
        return n, 0
    raw = _quote_ident(part_col)
    if CONTRACT[table.name][part_col][0] == "date":
        parsed = parsed_date_sql(raw, table.date_formats)
    else:
        parsed = parsed_timestamp_sql(raw, table.timestamp_formats, timezone)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE {parsed} IS NULL), "
        f"count(*) FILTER (WHERE {parsed} IS NULL AND {raw} IS NOT NULL) FROM __raw"
    ).fetchall()[0]
    return int(row[0]), int(row[1])


def _publish(scratch_table: Path, table_dir: Path, prefix: str) -> list[Path]:
    """Replace this source's previous files in the table folder with the new ones."""
    for old in table_dir.glob(f"dt=*/{prefix}-*.parquet"):
        old.unlink()
    published = []
    for new in sorted(scratch_table.glob("dt=*/*.parquet")):
        target = table_dir / new.parent.name / new.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(new), target)
        published.append(target)
    # Leave no empty dt= folders behind from a previous import of this source.
    for part in table_dir.glob("dt=*"):
        if part.is_dir() and not any(part.iterdir()):
            part.rmdir()
    return published


def _single_format(files: list[Path]) -> str:
    formats = {_format_of(f) for f in files}
    if len(formats) != 1 or None in formats:
        names = ", ".join(f.name for f in files[:5])
        raise ValueError(
            f"source: cannot infer one format from {names}; set source.format (csv or parquet)"
        )
    return formats.pop()  # type: ignore[return-value]


def _slug(source: Path | str) -> str:
    """A file-name-safe name for the source, used to recognise its files on re-import."""
    text = str(source)
    base = Path(text.split("*")[0]).name if "*" in text else Path(text).name
    base = base.split(".")[0] if base else "import"
    return re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_").lower() or "import"
