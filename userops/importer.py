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

A mapping file is someone's input, not trusted code, and its expressions are SQL. They run in a
DuckDB connection locked down with DuckDB's own settings (`sandboxed_connection`): it may read the
source files and nothing else, write no file, install or load no extension and change no
setting. The landing files are written by a second locked connection that runs only SQL built
here, never mapping text; the first streams its rows to it as Arrow batches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from glob import glob
from pathlib import Path
from typing import Any

import duckdb
import yaml

from userops.sql import sql_string_literal

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


# Rows per Arrow batch streamed from the connection that evaluates the mapping to the writer.
STREAM_BATCH_ROWS = 100_000

# Outcome of reading a row's main timestamp (TableReport counts them; docs/importing.md).
TIME_OK, TIME_BLANK, TIME_UNPARSED = "ok", "blank", "unparsed"
TIME_AMBIGUOUS, TIME_NONEXISTENT = "ambiguous", "nonexistent"


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
    # Zone-less local times in a repeated hour (read as the first occurrence) and in a skipped
    # hour (passed through as text, counted in unparsed_timestamps too).
    ambiguous_times: int = 0
    nonexistent_times: int = 0
    # Earliest and latest parsed main timestamp (UTC, ISO text); None when none parsed.
    first_at: str | None = None
    last_at: str | None = None
    files: list[Path] = field(default_factory=list)


@dataclass
class ImportReport:
    rows_read: int
    tables: dict[str, TableReport]
    fallback_date: date
    source_files: list[Path] = field(default_factory=list)
    landing_dir: Path | None = None
    timezone: str = "UTC"

    @property
    def rows_written(self) -> dict[str, int]:
        return {name: t.rows_written for name, t in self.tables.items()}

    def as_dict(self) -> dict[str, Any]:
        """The full report (every partition and file), JSON-ready: `userops import --json`."""
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "fallback_date": self.fallback_date.isoformat(),
            "timezone": self.timezone,
            "landing_dir": str(self.landing_dir) if self.landing_dir else None,
            "source_files": [str(f) for f in self.source_files],
            "tables": {
                name: {
                    "rows_written": t.rows_written,
                    "main_timestamp": PARTITION_COLUMN[name],
                    "first_at": t.first_at,
                    "last_at": t.last_at,
                    "fallback_rows": t.fallback_rows,
                    "unparsed_timestamps": t.unparsed_timestamps,
                    "ambiguous_times": t.ambiguous_times,
                    "nonexistent_times": t.nonexistent_times,
                    "partitions": t.partitions,
                    "files": [str(f) for f in t.files],
                }
                for name, t in self.tables.items()
            },
        }


def format_report(report: ImportReport) -> str:
    """A few lines for people: rows read and written, time range, partitions, where files went."""
    files = report.source_files
    source = str(files[0]) if len(files) == 1 else f"{len(files)} files ({files[0].parent})"
    lines = [f"Read {report.rows_read:,} rows from {source}"]
    for name, t in report.tables.items():
        main = PARTITION_COLUMN[name]
        span = f", {main} {t.first_at} to {t.last_at} UTC" if main and t.first_at else ""
        parts = (
            f"{len(t.partitions)} partition{'s' if len(t.partitions) != 1 else ''}"
            + (f" (dt={t.partitions[0]} to dt={t.partitions[-1]})" if len(t.partitions) > 1 else "")
            + (f" (dt={t.partitions[0]})" if len(t.partitions) == 1 else "")
        )
        lines.append(f"  {name}: {t.rows_written:,} rows written{span}, {parts}")
        if report.landing_dir is not None and t.files:
            prefix = t.files[0].name.rsplit("-", 1)[0]
            pattern = report.landing_dir / name / "dt=*" / f"{prefix}-*.parquet"
            lines.append(f"    files: {pattern} ({len(t.files):,})")
        lines.extend(f"    {note}" for note in _time_notes(name, t, report))
    lines.append("Full report (every partition and file): add --json")
    return "\n".join(lines)


def _time_notes(name: str, t: TableReport, report: ImportReport) -> list[str]:
    main = PARTITION_COLUMN[name]
    notes = []
    if main is None:
        notes.append(f"{t.fallback_rows:,} rows (no timestamp) went to dt={report.fallback_date}")
    elif t.fallback_rows:
        notes.append(
            f"{t.fallback_rows:,} rows whose {main} is blank or not a time (skipped hours "
            f"included) went to dt={report.fallback_date} as they are (staging quarantines them)"
        )
    if t.ambiguous_times:
        notes.append(
            f"{t.ambiguous_times:,} {main} values fall in an hour {report.timezone} repeats "
            "(clocks went back): read as the first occurrence"
        )
    if t.nonexistent_times:
        notes.append(
            f"{t.nonexistent_times:,} {main} values fall in an hour {report.timezone} skips "
            "(clocks went forward): passed on as text, staging quarantines them"
        )
    return notes


# --------------------------------------------------------------------------------------------
# Mapping parsing / validation (pure: no source needed)
# --------------------------------------------------------------------------------------------


class _MappingLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice: YAML keeps the last one silently, which would
    drop a column definition (say, two `amount:` entries) without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key if isinstance(key, str | int | float | bool) else id(key_node))
        return super().construct_mapping(node, deep=deep)


def load_mapping(path: Path) -> Mapping:
    """Read and validate a YAML mapping file; a bad mapping raises ValueError naming the key.

    Every message is one line starting with `mapping <path>:`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"mapping {path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from exc
    try:
        raw = yaml.load(text, Loader=_MappingLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ValueError(f"mapping {path}: not valid YAML: {_yaml_problem(exc)}") from exc
    try:
        return parse_mapping(raw)
    except ValueError as exc:
        raise ValueError(f"mapping {path}: {exc}") from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where (line, column) and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(exc).split())
    text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line != mark.line:
        text += f" ({context} started at line {context_mark.line + 1})"
    elif context:
        text += f" ({context})"
    return text


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
        # Newlines around the condition: a trailing `-- comment` in it cannot swallow the SQL
        # that follows.
        parts.append(f"WHEN (\n{rule['when']}\n) THEN {then}")
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
    return sql_string_literal(text)


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
# The sandbox: DuckDB's own access controls, no SQL parsing of ours
# --------------------------------------------------------------------------------------------


def sandboxed_connection(
    *,
    temp_dir: Path,
    read_files: Sequence[Path] = (),
    write_dir: Path | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB that can touch only the given files and folder.

    * `enable_external_access = false` with `allowed_paths` (files it may read) and
      `allowed_directories` (the one folder it may write and read back): any other path, URL,
      ATTACH, COPY, EXPORT or INSTALL target is refused with a Permission Error;
    * extensions are neither installed nor loaded on demand (autoinstall/autoload off; with
      external access off DuckDB also refuses INSTALL and LOAD of anything not built in);
    * `lock_configuration = true`: no SET/RESET/PRAGMA can undo any of the above.

    DuckDB spills to `temp_dir` on its own (no query can write there; it need not be allowed).
    `memory_limit` (DuckDB's default: 80 % of RAM) must be given here, as nothing can be SET
    later. The session zone is UTC: source zones are applied explicitly (_timestamp_layers).
    """
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {_sql_str(str(temp_dir))}")
        if memory_limit is not None:
            con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
        # allowed_* can only be set once the database runs, hence SET rather than connect config.
        con.execute(f"SET allowed_paths = {_sql_list(str(f) for f in read_files)}")
        if write_dir is not None:
            # The trailing separator keeps a sibling such as `<dir>-other` outside.
            con.execute(
                f"SET allowed_directories = {_sql_list([str(write_dir).rstrip(os.sep) + os.sep])}"
            )
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _sql_list(values: Iterable[str]) -> str:
    items = list(values)
    return "[" + ", ".join(_sql_str(v) for v in items) + "]"


def _first_line(exc: BaseException) -> str:
    """DuckDB messages carry a caret diagram and hints on further lines; keep the statement."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
    return sql_string_literal(value)


# --------------------------------------------------------------------------------------------
# Expression checking (DuckDB's parser and binder, inside the sandbox)
# --------------------------------------------------------------------------------------------


def _resolve(spec: ColumnSpec, source_columns: list[str]) -> ColumnSpec:
    """Bind a plain-string spec: an exact source column name wins over parsing it as SQL, so a
    column called e.g. `Order Date` needs no quoting in the mapping."""
    if spec.is_column_ref or spec.sql not in source_columns:
        return spec
    return ColumnSpec(sql=_quote_ident(spec.sql), source=spec.source, is_column_ref=True)


def column_value_sql(expr: str) -> str:
    """How a mapping expression is evaluated: its result as text (the importer never types
    values). Newlines keep a trailing `-- comment` in the expression from eating the rest."""
    return f"CAST((\n{expr}\n) AS VARCHAR)"


def _probe_sql(expr: str) -> str:
    return f"SELECT {column_value_sql(expr)} AS v FROM __src"


def referenced_columns(con: duckdb.DuckDBPyConnection, expr: str, key: str) -> list[str]:
    """The column names an expression reads, via DuckDB's own parser (no regex guessing).

    The expression must be exactly one expression: DuckDB must parse `SELECT <it> FROM __src`
    as one plain SELECT with one output column and nothing else, so text that closes the
    parenthesis and adds a statement (`...; COPY ...`), a UNION or a WHERE is refused here.
    (The sandbox would stop such a statement from reaching a file anyway.)
    """
    sql = _probe_sql(expr)
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValueError(
            f"{key}: not a source column and not a valid SQL expression: {_first_line(exc)}"
        ) from exc
    # INSTALL parses as a LOAD statement.
    names = {"LOAD": "INSTALL/LOAD"}
    others = sorted({names.get(s.type.name, s.type.name) for s in statements} - {"SELECT"})
    if others:
        raise ValueError(
            f"{key}: not a single SQL expression: the text adds a statement "
            f"({', '.join(others)}); a mapping expression may only compute a value from the "
            "source columns"
        )
    rows = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    tree = json.loads(rows[0][0])
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        msg = tree.get("error_message", "expected a single SQL expression")
        raise ValueError(f"{key}: not a source column and not a valid SQL expression: {msg}")
    node = tree["statements"][0]["node"]
    from_table = node.get("from_table") or {}
    plain = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and from_table.get("type") == "BASE_TABLE"
        and from_table.get("table_name") == "__src"
        and not node.get("where_clause")
        and not node.get("group_expressions")
        and not node.get("having")
        and not node.get("qualify")
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
    )
    if not plain:
        raise ValueError(
            f"{key}: not a single SQL expression (the text changes the query around it, e.g. "
            "with a UNION, WHERE or LIMIT)"
        )
    found: list[str] = []
    _collect_column_refs(node["select_list"], found)
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


def check_expression(
    con: duckdb.DuckDBPyConnection, spec: ColumnSpec, source_columns: list[str]
) -> None:
    """Parse the expression (one expression only), then bind it against the source without
    reading a row: unknown columns and functions, type errors and anything the sandbox refuses
    (a file, a URL, an extension) fail here, named by the mapping key."""
    referenced = referenced_columns(con, spec.sql, spec.source)
    try:
        con.execute(f"{_probe_sql(spec.sql)}\nLIMIT 0").fetchall()
    except duckdb.Error as exc:
        known = {c.lower() for c in source_columns}  # DuckDB identifiers are case-insensitive
        unknown = [ref for ref in referenced if ref.lower() not in known]
        if unknown and isinstance(exc, duckdb.BinderException):
            raise ValueError(
                f"{spec.source}: unknown source column {unknown[0]!r} "
                f"(source columns: {', '.join(source_columns)})"
            ) from exc
        raise expression_error(spec, exc, on_row=False) from exc


def expression_error(spec: ColumnSpec, exc: duckdb.Error, *, on_row: bool) -> ValueError:
    """One line naming the mapping key and why its expression cannot run."""
    if isinstance(exc, duckdb.PermissionException):
        return ValueError(
            f"{spec.source}: not allowed: a mapping expression may only compute values from the "
            f"source columns; it cannot read or write files, attach databases, install or load "
            f"extensions or change settings (DuckDB: {_first_line(exc)})"
        )
    if on_row:
        return ValueError(
            f"{spec.source}: the expression failed on a source row: {_first_line(exc)} (use "
            "try_cast and keep the raw text, see docs/importing.md; nothing was written)"
        )
    return ValueError(f"{spec.source}: the expression does not work here: {_first_line(exc)}")


def _bind_table(
    con: duckdb.DuckDBPyConnection, table: TableMapping, source_columns: list[str]
) -> TableMapping:
    bound = {c: _resolve(s, source_columns) for c, s in table.columns.items()}
    for spec in bound.values():
        check_expression(con, spec, source_columns)
    return TableMapping(table.name, bound, table.timestamp_formats, table.date_formats)


# --------------------------------------------------------------------------------------------
# SQL generation: landing columns from the mapped text
# --------------------------------------------------------------------------------------------


def raw_select_sql(table: TableMapping) -> str:
    """Evaluate every mapping expression once, cast to text (the importer never types values)."""
    cols = ", ".join(
        f"{column_value_sql(spec.sql)} AS {_quote_ident(col)}"
        for col, spec in table.columns.items()
    )
    return f"SELECT {cols} FROM __src"


def nonexistent_marker(timezone: str) -> str:
    """Appended to a local time the zone skipped, so staging's cast fails on it (the bare ISO
    text would cast, and be read as UTC) and the quarantined raw value says why."""
    return f" (not a local time in {timezone}: skipped by a clock change)"


def _internal(col: str, what: str) -> str:
    return _quote_ident(f"__{col}_{what}")


def _to_local_sql(utc_sql: str, timezone: str) -> str:
    """The wall-clock time in `timezone` at a naive UTC instant (the session zone is UTC)."""
    return f"timezone({_sql_str(timezone)}, CAST({utc_sql} AS TIMESTAMPTZ))"


def fixed_utc_offset(con: duckdb.DuckDBPyConnection, timezone: str) -> timedelta | None:
    """The zone's offset if it never changed (UTC, Etc/GMT+5, ...), else None.

    Sampled every 14 days from 1850 to 2100, finer than any daylight-saving season. A fixed zone
    has no repeated or skipped hours, so its times need no per-row zone arithmetic.
    """
    offsets = con.execute(
        "SELECT DISTINCT timezone(?, CAST(t AS TIMESTAMPTZ)) - t FROM ("
        "SELECT TIMESTAMP '1850-01-01' + INTERVAL (i * 14) DAY AS t FROM range(6522) r(i))",
        [timezone],
    ).fetchall()
    return offsets[0][0] if len(offsets) == 1 else None


def _timestamp_layers(
    col: str, formats: tuple[str, ...], timezone: str, fixed_offset: timedelta | None = None
) -> list[list[str]]:
    """Column definitions, one list per query layer, reading the text column `col` into
    `__<col>_utc` (naive UTC, or NULL) and `__<col>_kind` (TIME_*). Needs a UTC session.

    Text with an explicit offset (a `%z`/`%Z` format, or ISO text with `+01:00`/`Z`/a zone name)
    is that instant. Zone-less text (a format without `%z`, or ISO text without zone) is a local
    time in the source zone: DuckDB decides which text carries no zone, as the text that still
    casts with 'Z' appended. A local time L maps to the UTC instants u with local(u) = L; the
    two candidates are L minus the zone's offset a day before and a day after, so:
    one valid -> that instant; both valid and different -> L is in an hour the clocks repeat
    (read as the first occurrence, the earlier instant); neither -> an hour the clocks skip
    (no such time: passed on as text). This holds for any zone whose offset changes at most
    once within two days (in tzdata since 1900 the closest two changes of a zone are 3.99 days
    apart; Samoa's skipped 2011-12-30 is a single change).
    """
    text = _quote_ident(col)
    local_formats = [f for f in formats if "%z" not in f and "%Z" not in f]
    zoned_formats = [f for f in formats if f not in local_formats]
    fmt_local, fmt_abs, iso_local = (_internal(col, w) for w in ("fmt_local", "fmt_abs", "iso"))
    local, absolute = _internal(col, "local"), _internal(col, "abs")
    before, after = _internal(col, "offset_before"), _internal(col, "offset_after")
    early, late = _internal(col, "early"), _internal(col, "late")
    early_ok, late_ok = _internal(col, "early_ok"), _internal(col, "late_ok")
    # A date alone ('2011-06-01') takes no zone; it is local midnight. Padding is trimmed there
    # only: trim() costs more than the casts, and the time case accepts padding as it is.
    no_zone = (
        f"CAST(coalesce(try_cast({text} || 'Z' AS TIMESTAMPTZ), "
        f"try_cast(trim({text}) || ' 00:00:00Z' AS TIMESTAMPTZ)) AS TIMESTAMP)"
    )
    null_ts = "CAST(NULL AS TIMESTAMP)"

    def offset_at(utc_sql: str) -> str:
        return f"({_to_local_sql(utc_sql, timezone)} - ({utc_sql}))"

    if fixed_offset is not None:
        offset = f"INTERVAL {int(fixed_offset.total_seconds())} SECOND"
        offsets = [f"{offset} AS {before}", f"{offset} AS {after}"]
    else:
        offsets = [
            f"{offset_at(f'{local} - INTERVAL 1 DAY')} AS {before}",
            f"{offset_at(f'{local} + INTERVAL 1 DAY')} AS {after}",
        ]
    return [
        [
            (f"try_strptime({text}, {_sql_list(local_formats)})" if local_formats else null_ts)
            + f" AS {fmt_local}",
            (
                f"CAST(try_strptime({text}, {_sql_list(zoned_formats)}) AS TIMESTAMP)"
                if zoned_formats
                else null_ts
            )
            + f" AS {fmt_abs}",
        ],
        [f"CASE WHEN {fmt_local} IS NULL AND {fmt_abs} IS NULL THEN {no_zone} END AS {iso_local}"],
        [
            f"coalesce({fmt_local}, {iso_local}) AS {local}",
            f"CASE WHEN {fmt_local} IS NULL THEN coalesce({fmt_abs}, CASE WHEN {iso_local} IS NULL "
            f"THEN CAST(try_cast({text} AS TIMESTAMPTZ) AS TIMESTAMP) END) END AS {absolute}",
        ],
        offsets,
        [
            f"{local} - {before} AS {early}",
            f"{local} - {after} AS {late}",
            # Same offset a day before and after: no clock change near, the one candidate is
            # valid. Only rows near a change (a few days a year) pay for the check.
            f"CASE WHEN {before} = {after} THEN true "
            f"ELSE {_to_local_sql(f'{local} - {before}', timezone)} = {local} END AS {early_ok}",
            f"CASE WHEN {before} = {after} THEN true "
            f"ELSE {_to_local_sql(f'{local} - {after}', timezone)} = {local} END AS {late_ok}",
        ],
        [
            f"coalesce({absolute}, CASE WHEN {early_ok} AND {late_ok} THEN least({early}, {late}) "
            f"WHEN {early_ok} THEN {early} WHEN {late_ok} THEN {late} END) "
            f"AS {_internal(col, 'utc')}",
            f"CASE WHEN {text} IS NULL THEN '{TIME_BLANK}' "
            f"WHEN {absolute} IS NOT NULL THEN '{TIME_OK}' "
            f"WHEN {local} IS NULL THEN '{TIME_UNPARSED}' "
            f"WHEN {early_ok} AND {late_ok} AND {early} <> {late} THEN '{TIME_AMBIGUOUS}' "
            f"WHEN {early_ok} OR {late_ok} THEN '{TIME_OK}' "
            f"ELSE '{TIME_NONEXISTENT}' END AS {_internal(col, 'kind')}",
        ],
    ]


def _date_layers(col: str, formats: tuple[str, ...]) -> list[list[str]]:
    text = _quote_ident(col)
    parsed = _internal(col, "date")
    return [
        [
            f"coalesce(CAST(try_strptime({text}, {_sql_list(formats)}) AS DATE), "
            f"try_cast({text} AS DATE)) AS {parsed}"
        ],
        [
            f"CAST({parsed} AS TIMESTAMP) AS {_internal(col, 'utc')}",
            f"CASE WHEN {text} IS NULL THEN '{TIME_BLANK}' WHEN {parsed} IS NULL "
            f"THEN '{TIME_UNPARSED}' ELSE '{TIME_OK}' END AS {_internal(col, 'kind')}",
        ],
    ]


def table_select_sql(
    table: TableMapping, timezone: str, fallback: date, fixed_offset: timedelta | None = None
) -> str:
    """SELECT producing the landing columns (all text), the `dt` partition column, and the main
    timestamp's reading (`__main_kind`, `__main_at`) for the report.

    Reads from `__raw`, a relation with each mapped value as text in column `"<target>"`.
    Every contract column is written, in contract order; unmapped optional ones as null text, so
    every file of a table has the same schema whatever the mapping maps. Each time column is read
    once, in layers (a subquery per step), so no step is computed twice.
    """
    contract = CONTRACT[table.name]
    layers: list[list[str]] = []
    for col, (kind, _) in contract.items():
        if col not in table.columns or kind not in ("timestamp", "date"):
            continue
        steps = (
            _timestamp_layers(col, table.timestamp_formats, timezone, fixed_offset)
            if kind == "timestamp"
            else _date_layers(col, table.date_formats)
        )
        for i, step in enumerate(steps):
            if i == len(layers):
                layers.append([])
            layers[i].extend(step)
    query = "__raw"
    for i, step in enumerate(layers):
        query = f"(SELECT *, {', '.join(step)} FROM {query}) AS __step{i}"

    marker = _sql_str(nonexistent_marker(timezone))
    outputs = []
    for col, (kind, _) in contract.items():
        raw = _quote_ident(col)
        if col not in table.columns:
            outputs.append(f"CAST(NULL AS VARCHAR) AS {raw}")
        elif kind == "timestamp":
            # Unparseable text passes through unchanged: staging's cast fails -> quarantined.
            outputs.append(
                f"CASE WHEN {_internal(col, 'kind')} = '{TIME_NONEXISTENT}' THEN {raw} || {marker} "
                f"ELSE coalesce(strftime({_internal(col, 'utc')}, '{ISO_TIMESTAMP}'), {raw}) END "
                f"AS {raw}"
            )
        elif kind == "date":
            outputs.append(
                f"coalesce(strftime({_internal(col, 'date')}, '{ISO_DATE}'), {raw}) AS {raw}"
            )
        else:
            outputs.append(f"{raw} AS {raw}")

    part_col = PARTITION_COLUMN[table.name]
    fallback_sql = _sql_str(fallback.isoformat())
    if part_col is None or part_col not in table.columns:
        tail = [
            f"{fallback_sql} AS dt",
            "CAST(NULL AS VARCHAR) AS __main_kind",
            "CAST(NULL AS TIMESTAMP) AS __main_at",
        ]
    else:
        main_utc = _internal(part_col, "utc")
        tail = [
            f"coalesce(strftime({main_utc}, '{ISO_DATE}'), {fallback_sql}) AS dt",
            f"{_internal(part_col, 'kind')} AS __main_kind",
            f"{main_utc} AS __main_at",
        ]
    return f"SELECT {', '.join(outputs + tail)} FROM {query}"


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

    Bad input raises ValueError (a mapping key, a source column, an expression, the source file
    itself) or FileNotFoundError (no such source), each with a one-line message; a failed write
    raises OSError. Nothing is left in landing_dir in either case.
    """
    spec = parse_mapping(mapping) if isinstance(mapping, dict) else load_mapping(Path(mapping))
    fallback = fallback_date or datetime.now(UTC).date()
    files = [f.resolve() for f in resolve_source_files(source)]
    fmt = spec.source_format or _single_format(files)
    landing_dir = Path(landing_dir).resolve()
    prefix = f"part-{_slug(source)}"

    created = [p for p in (landing_dir, *landing_dir.parents) if not p.exists()]
    scratch = landing_dir / f".import-{uuid.uuid4().hex}"
    out_root = scratch / "out"
    out_root.mkdir(parents=True)
    # Reads the source and evaluates the mapping: may read the source files, write nothing.
    reader = sandboxed_connection(temp_dir=scratch / "spill-read", read_files=files)
    # Writes the landing files: runs no mapping text, may touch only the scratch output folder.
    writer = sandboxed_connection(temp_dir=scratch / "spill-write", write_dir=out_root)
    published = False
    try:
        source_columns, rows_read = _open_source(reader, files, fmt, spec.csv_options)
        # Every expression of every table is checked before a single row is written.
        bound = [_bind_table(reader, table, source_columns) for table in spec.tables.values()]
        fixed_offset = fixed_utc_offset(reader, spec.timezone)
        tables: dict[str, TableReport] = {}
        for table in bound:
            report = _write_table(
                reader, writer, table, spec.timezone, fallback, out_root, prefix, fixed_offset
            )
            if report.rows_written != rows_read:
                # The whole point of the importer: never lose a row. Refuse to publish if we did.
                raise RuntimeError(
                    f"{table.name}: read {rows_read} rows but wrote "
                    f"{report.rows_written}; nothing was written to {landing_dir}"
                )
            tables[table.name] = report
        reader.close()
        writer.close()
        for name, report in tables.items():
            report.files = _publish(out_root / name, landing_dir / name, prefix)
        published = True
        return ImportReport(
            rows_read=rows_read,
            tables=tables,
            fallback_date=fallback,
            source_files=files,
            landing_dir=landing_dir,
            timezone=spec.timezone,
        )
    finally:
        reader.close()
        writer.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if not published:
            # Folders this import created (landing_dir itself included) go again if still empty.
            for folder in created:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()


def _open_source(
    con: duckdb.DuckDBPyConnection, files: list[Path], fmt: str, csv_options: dict[str, Any]
) -> tuple[list[str], int]:
    """Define `__src` and count its rows; a file DuckDB cannot read is a ValueError naming it."""
    try:
        con.execute(f"CREATE TEMP VIEW __src AS {source_sql(files, fmt, csv_options)}").fetchall()
        source_columns = [r[0] for r in con.execute("DESCRIBE __src").fetchall()]
        rows_read = con.execute("SELECT count(*) FROM __src").fetchall()[0][0]
    except duckdb.Error as exc:
        where = str(files[0]) if len(files) == 1 else f"{len(files)} files in {files[0].parent}"
        raise ValueError(
            f"source {where}: cannot be read as {fmt.upper()}: {_reader_problem(exc)}"
        ) from exc
    return source_columns, int(rows_read)


def _reader_problem(exc: duckdb.Error) -> str:
    """DuckDB's CSV error on one line: what and where (line number, the line, the column counts),
    without its list of reader options and fixes that would skip or pad the row."""
    if "CSV Error on Line" not in _first_line(exc):
        return _first_line(exc)
    kept = []
    for line in str(exc).strip().splitlines():
        if not line.strip() or line.startswith(("Possible fixes", "LINE ")):
            break
        kept.append(line if len(line) <= 200 else line[:200] + "...")
    return "; ".join(kept) or type(exc).__name__


def _write_table(
    reader: duckdb.DuckDBPyConnection,
    writer: duckdb.DuckDBPyConnection,
    table: TableMapping,
    timezone: str,
    fallback: date,
    out_root: Path,
    prefix: str,
    fixed_offset: timedelta | None,
) -> TableReport:
    out_dir = out_root / table.name
    select = table_select_sql(table, timezone, fallback, fixed_offset)
    try:
        reader.execute(f"CREATE OR REPLACE TEMP VIEW __raw AS {raw_select_sql(table)}").fetchall()
        reader.execute(f"CREATE OR REPLACE TEMP TABLE __out AS {select}").fetchall()
    except duckdb.Error as exc:
        # A mapping expression failed on some row (e.g. CAST('abc' AS INTEGER)). We do not null
        # the value silently: the user fixes the expression (try_cast + a text fallback).
        raise _failing_column(reader, table, exc) from exc

    kinds = {
        kind: (int(n), first, last)
        for kind, n, first, last in reader.execute(
            "SELECT __main_kind, count(*), min(__main_at), max(__main_at) FROM __out GROUP BY ALL"
        ).fetchall()
    }
    landing_columns = ", ".join([*map(_quote_ident, CONTRACT[table.name]), "dt"])
    stream = reader.sql(f"SELECT {landing_columns} FROM __out").to_arrow_reader(STREAM_BATCH_ROWS)
    writer.register("__landing", stream)
    try:
        writer.execute(
            f"COPY __landing TO {_sql_str(str(out_dir))} "
            f"(FORMAT parquet, PARTITION_BY (dt), FILENAME_PATTERN '{prefix}-{{i}}')"
        ).fetchall()
        written = writer.execute(
            f"SELECT count(*) FROM read_parquet({_sql_str(str(out_dir / '*' / '*.parquet'))})"
        ).fetchall()[0][0]
    except duckdb.Error as exc:
        raise OSError(f"writing the {table.name} landing files failed: {_first_line(exc)}") from exc
    finally:
        writer.unregister("__landing")
    reader.execute("DROP TABLE __out").fetchall()

    partitions = sorted(p.name.removeprefix("dt=") for p in out_dir.iterdir() if p.is_dir())
    return _table_report(table, int(written), partitions, kinds)


def _table_report(
    table: TableMapping,
    written: int,
    partitions: list[str],
    kinds: dict[str | None, tuple[int, Any, Any]],
) -> TableReport:
    def count(*names: str | None) -> int:
        return sum(kinds.get(name, (0, None, None))[0] for name in names)

    if PARTITION_COLUMN[table.name] not in table.columns:
        fallback_rows, unparsed = written, 0  # no main timestamp: every row to the fallback day
    else:
        fallback_rows = count(TIME_BLANK, TIME_UNPARSED, TIME_NONEXISTENT)
        unparsed = count(TIME_UNPARSED, TIME_NONEXISTENT)
    parsed = [v for k, v in kinds.items() if k in (TIME_OK, TIME_AMBIGUOUS)]
    first = min((v[1] for v in parsed), default=None)
    last = max((v[2] for v in parsed), default=None)
    main = PARTITION_COLUMN[table.name]
    is_date = main is not None and CONTRACT[table.name][main][0] == "date"
    fmt = ISO_DATE if is_date else ISO_TIMESTAMP
    return TableReport(
        rows_written=written,
        partitions=partitions,
        fallback_rows=fallback_rows,
        unparsed_timestamps=unparsed,
        ambiguous_times=count(TIME_AMBIGUOUS),
        nonexistent_times=count(TIME_NONEXISTENT),
        first_at=first.strftime(fmt) if first else None,
        last_at=last.strftime(fmt) if last else None,
    )


def _failing_column(
    con: duckdb.DuckDBPyConnection, table: TableMapping, exc: duckdb.Error
) -> ValueError:
    """Which column's expression failed on a row: evaluate each alone (only on failure)."""
    for spec in table.columns.values():
        try:
            con.execute(f"SELECT count(v) FROM ({_probe_sql(spec.sql)})").fetchall()
        except duckdb.Error as column_exc:
            return expression_error(spec, column_exc, on_row=True)
    return ValueError(f"tables.{table.name}: a column expression failed: {_first_line(exc)}")


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
