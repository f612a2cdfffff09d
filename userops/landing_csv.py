"""Checks of CSV landing files before dbt reads them: one line naming the file (and line) for the
faults DuckDB's CSV reader reports misleadingly or not at all.

DuckDB reads a zero-byte file as one column `column0` (so the build said every required column
was missing), points at the row *before* a byte that is not UTF-8, and lets a row with more or
fewer fields than the header derail its dialect sniffer (one column named after the whole
header line). A UTF-8 byte-order mark (what Excel writes) is no fault: DuckDB skips it, and so do
these checks. What each fault does is in docs/landing_contract.md.

Cost: every file is read once as bytes (UTF-8 validation, C speed) and once by DuckDB with the
dialect fixed (field counts), before dbt reads it again; measured figures in
docs/landing_contract.md.
"""

from __future__ import annotations

import codecs
import csv
import glob
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from userops.quality.settings import landing_glob

UTF8_BOM = codecs.BOM_UTF8
# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts with UTF-16's).
OTHER_BOMS = [
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
]
# Delimiters a header may use; DuckDB's sniffer detects the same ones.
DELIMITERS = [",", ";", "\t", "|"]
CHUNK_BYTES = 1 << 20
UNCLOSED_QUOTE = 'a quoted value that is never closed (a missing "?)'
HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class CsvProblem:
    """A fault of one file; `line` is the 1-based line of the file (the header is line 1)."""

    file: Path
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


def encoding_problem(path: Path) -> CsvProblem | None:
    """Empty file, a byte-order mark of another encoding, or the first line that is not UTF-8."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if not head:
            return CsvProblem(path, "empty file (0 bytes): deliver it again or delete it")
        for bom, name in OTHER_BOMS:
            if head.startswith(bom):
                return CsvProblem(path, f"not UTF-8 ({name}): save it as CSV UTF-8", 1)
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0  # bytes before the current chunk
        while chunk := handle.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                # error.start counts from the bytes the decoder held back from the last chunk
                # (a character split between two chunks).
                held = len(error.object) - len(chunk)
                return _not_utf8(path, offset - held + error.start)
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:  # the file ends inside a character
            return _not_utf8(path, offset - len(error.object) + error.start)
    return None


def _not_utf8(path: Path, position: int) -> CsvProblem:
    """The problem for a byte at `position` that is not UTF-8, with a guess at the encoding.
    Reads the file up to that line again: only ever for the one failing file."""
    with path.open("rb") as handle:
        before = handle.read(position)
        rest = handle.readline()
    line_start = before.rfind(b"\n") + 1
    line = before.count(b"\n") + 1
    raw_line = before[line_start:] + rest
    return CsvProblem(path, f"not UTF-8 ({guess_encoding(raw_line)}): {_convert_hint()}", line)


def guess_encoding(raw_line: bytes) -> str:
    """'looks like GBK' when the bytes read as GB18030 (GBK's superset) with some Chinese."""
    try:
        text = raw_line.decode("gb18030")
    except UnicodeDecodeError:
        return "unknown encoding"
    if any("\u4e00" <= character <= "\u9fff" for character in text):
        return "looks like GBK"
    return "unknown encoding"


def _convert_hint() -> str:
    return "convert the file to UTF-8 (e.g. iconv -f GBK -t UTF-8) and deliver it again"


def read_header(path: Path) -> tuple[str, list[str]]:
    """(delimiter, column names) of the first line, without a UTF-8 BOM: the delimiter is the
    candidate that splits it into the most fields."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    text = head.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    first_line = text.splitlines()[0] if text.strip() else ""
    best = (",", [first_line])
    for delimiter in DELIMITERS:
        fields = next(csv.reader([first_line], delimiter=delimiter), [])
        if len(fields) > len(best[1]):
            best = (delimiter, fields)
    # Trimmed and lower-cased, as DuckDB's header and the dbt macros read names.
    return best[0], [name.strip().lower() for name in best[1]]


def header_problem(path: Path, required: Iterable[str]) -> CsvProblem | None:
    delimiter, columns = read_header(path)
    if columns in ([], [""]):
        return CsvProblem(path, "no header row (the first line is blank)", 1)
    missing = [column for column in required if column not in columns]
    if missing:
        shown = delimiter.join(columns) if len(columns) > 1 else columns[0]
        return CsvProblem(
            path,
            f"the header has no required column {', '.join(repr(m) for m in missing)} "
            f"(header: {shown[:200]!r}; fields separated by , ; tab or |)",
            1,
        )
    return None


def field_count_problems(paths: list[Path]) -> list[CsvProblem]:
    """The first row of each file whose number of fields differs from its header's: DuckDB
    reads the files with the dialect fixed (header, delimiter, RFC 4180 quotes), so quoted
    delimiters, quotes and line breaks inside values count as one field."""
    # One read per header (DuckDB's rejects table cannot be combined with union_by_name).
    by_header: dict[tuple[str, tuple[str, ...]], list[Path]] = {}
    for path in paths:
        delimiter, columns = read_header(path)
        by_header.setdefault((delimiter, tuple(columns)), []).append(path)
    problems: list[CsvProblem] = []
    # No progress bar: it would print to the terminal of `userops build`.
    with duckdb.connect() as connection:
        connection.execute("set enable_progress_bar = false").fetchall()
        for (delimiter, columns), files in by_header.items():
            try:
                problems.extend(_rejected_rows(connection, files, delimiter, len(columns)))
            except duckdb.Error:
                # One file DuckDB cannot read at all stops the read of the group: read them one
                # by one to name it.
                for file in files:
                    try:
                        problems.extend(_rejected_rows(connection, [file], delimiter, len(columns)))
                    except duckdb.Error as error:
                        first_line = str(error).splitlines()[0]
                        problems.append(CsvProblem(file, f"unreadable CSV ({first_line})"))
    return problems


def _rejected_rows(
    connection: duckdb.DuckDBPyConnection, files: list[Path], delimiter: str, width: int
) -> list[CsvProblem]:
    """The first rejected row of each file, read with RFC 4180 quotes; a file whose only fault
    is a quote never closed is read again without quoting, as DuckDB's sniffer reads it
    in the build (the quote is then part of the value: `"SAVE 10` loads as written)."""
    problems = _rejected_rows_quoted(connection, files, delimiter, width, quote='"')
    kept = []
    for problem in problems:
        if problem.message == UNCLOSED_QUOTE and not _rejected_rows_quoted(
            connection, [problem.file], delimiter, width, quote=""
        ):
            continue
        kept.append(problem)
    return kept


def _rejected_rows_quoted(
    connection: duckdb.DuckDBPyConnection,
    files: list[Path],
    delimiter: str,
    width: int,
    quote: str,
) -> list[CsvProblem]:
    """Reads the files with the dialect fixed, nothing sniffed (a sniffer would guess another
    dialect for a file with a bad row), and returns the first rejected row of each file."""
    columns = {f"c{index}": "varchar" for index in range(width)}
    connection.execute(
        "select count(*) from read_csv($files, auto_detect = false, header = true,"
        " columns = $columns, delim = $delim, quote = $quote, escape = $quote, comment = '',"
        " store_rejects = true, rejects_scan = 'csv_scans', rejects_table = 'csv_errors')",
        {
            "files": [str(file) for file in files],
            "columns": columns,
            "delim": delimiter,
            "quote": quote,
        },
    ).fetchall()
    # A row short of two fields has a rejected row per missing field: the first one
    # ("Found: 4" before "Found: 5") counts its fields.
    rows = connection.execute(
        "select scans.file_path, errors.line, errors.error_type, errors.error_message"
        " from csv_errors as errors inner join csv_scans as scans"
        " on errors.scan_id = scans.scan_id and errors.file_id = scans.file_id"
        " order by scans.file_path, errors.line, errors.column_idx"
    ).fetchall()
    connection.execute("drop table csv_errors").fetchall()
    connection.execute("drop table csv_scans").fetchall()
    problems = []
    seen: set[str] = set()
    for file, line, error_type, message in rows:
        if file not in seen:
            seen.add(file)
            problems.append(CsvProblem(Path(file), _row_message(error_type, message), line))
    return problems


def _row_message(error_type: str, error_message: str) -> str:
    expected = found = None
    if "Expected Number of Columns:" in error_message:
        parts = error_message.replace(":", " ").split()
        numbers = [int(part) for part in parts if part.isdigit()]
        if len(numbers) >= 2:
            expected, found = numbers[0], numbers[1]
    if error_type == "TOO MANY COLUMNS" and expected is not None:
        return (
            f"{found} fields where the header has {expected} (an unquoted delimiter in a value? "
            'quote the value: "a, b")'
        )
    if error_type == "MISSING COLUMNS" and expected is not None:
        return f"{found} fields where the header has {expected} (a row cut short?)"
    if error_type == "UNQUOTED VALUE" and "unterminated" in error_message:
        return UNCLOSED_QUOTE
    if error_type == "UNQUOTED VALUE":
        return 'a quote after the end of a quoted value (double a quote inside one: "a ""b""")'
    return f"unreadable row ({error_message})"


def csv_problems(landing_dir: Path, required: Mapping[str, list[str]]) -> list[CsvProblem]:
    """Every landing CSV file's first problem, by table: encoding and header first (cheap, and
    DuckDB cannot read the rest of such a file), then field counts of the files that passed."""
    problems: list[CsvProblem] = []
    readable: list[Path] = []
    for table, columns in required.items():
        for name in sorted(glob.glob(landing_glob(landing_dir, table, "csv"))):
            path = Path(name)
            problem = encoding_problem(path) or header_problem(path, columns)
            if problem:
                problems.append(problem)
            else:
                readable.append(path)
    if readable:
        problems.extend(field_count_problems(readable))
    return problems
