"""PII never reaches BI in clear (docs/landing_contract.md): the generator's emails and phone
numbers appear nowhere in the served copy, its Parquet files or any relation of the warehouse
(staging included), not even inside the raw JSON rows `quarantined_rows` keeps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest
from conftest import Build

from userops.serving import publish
from userops.sql import sql_identifier, sql_string_literal

# Tokens a clear value could hide in: an email inside any run of non-separator characters
# around an @, a phone number inside any run of 11+ digits (e.g. +8613912345678).
TOKEN = r"[^\s\"',;:<>()\[\]{}]+@[^\s\"',;:<>()\[\]{}]+|[0-9]{11,}"


def pii_hash(value: str) -> str:
    """What staging's hash_pii computes: SHA-256 of the trimmed, lower-cased text."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


def landing_pii(landing_dir: Path) -> tuple[set[str], set[str]]:
    """Every email and phone number the generator wrote, lower-cased and trimmed."""
    glob = sql_string_literal(str(landing_dir / "users" / "*" / "*.parquet"))
    rows = duckdb.sql(
        f"select distinct lower(trim(email)), lower(trim(phone)) from read_parquet({glob})"
    ).fetchall()
    emails = {email for email, _ in rows if email}
    phones = {phone for _, phone in rows if phone}
    return emails, phones


def clear_pii_found(
    connection: duckdb.DuckDBPyConnection,
    relation: str,
    emails: set[str],
    phones: set[str],
) -> dict[str, list[str]]:
    """Column -> the clear emails or phones found in it. Every column is read as text (a struct
    or list as its text form), so JSON inside a string is searched like any other text."""
    columns = [
        row[0] for row in connection.execute(f"describe select * from {relation}").fetchall()
    ]
    # One pass over the relation (a staging view is computed once, not once per column).
    tokens_per_column = " union all ".join(
        f"select {index} as column_index, unnest(regexp_extract_all("
        f"lower(cast({sql_identifier(column)} as varchar)), {sql_string_literal(TOKEN)})) as token "
        "from scanned"
        for index, column in enumerate(columns)
    )
    rows = connection.execute(
        f"with scanned as materialized (select * from {relation}) "
        f"select distinct column_index, token from ({tokens_per_column})"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for index, token in rows:
        hits = [value for value in emails | phones if value in token]
        if hits:
            found.setdefault(columns[index], []).extend(hits)
    return {column: sorted(set(hits))[:3] for column, hits in found.items()}


def relations(connection: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    rows = connection.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? order by all",
        [catalog],
    ).fetchall()
    return [
        f"{sql_identifier(catalog)}.{sql_identifier(schema)}.{sql_identifier(table)}"
        for schema, table in rows
    ]


@pytest.fixture(scope="module")
def published(sample_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert sample_build.result.returncode == 0, sample_build.result.stdout[-3000:]
    serving_dir = tmp_path_factory.mktemp("pii_serving")
    publish(sample_build.warehouse_path, serving_dir)
    return serving_dir


def test_the_sample_has_pii_to_find(sample_build: Build) -> None:
    emails, phones = landing_pii(sample_build.landing_dir)
    # 400 generated users (plus the generator's bad rows): a scan that finds nothing must have
    # had something to find.
    assert len(emails) > 350 and len(phones) > 350
    assert all("@" in email for email in emails)
    assert all(len(phone) == 11 and phone.isdigit() for phone in phones)


def test_no_served_table_or_parquet_file_holds_clear_pii(
    sample_build: Build, published: Path
) -> None:
    emails, phones = landing_pii(sample_build.landing_dir)
    leaks: dict[str, dict[str, list[str]]] = {}
    with duckdb.connect(str(published / "userops.duckdb"), read_only=True) as connection:
        served = relations(connection, "userops")
        assert any(name.endswith('"quarantined_rows"') for name in served), served
        for relation in served:
            if found := clear_pii_found(connection, relation, emails, phones):
                leaks[relation] = found
    parquet_files = sorted((published / "parquet" / "current").glob("**/*.parquet"))
    assert any(path.name == "quarantined_rows.parquet" for path in parquet_files)
    with duckdb.connect() as connection:
        for path in parquet_files:
            relation = f"read_parquet({sql_string_literal(path)})"
            if found := clear_pii_found(connection, relation, emails, phones):
                leaks[str(path)] = found
    assert leaks == {}


def test_no_warehouse_relation_holds_clear_pii(sample_build: Build) -> None:
    """Staging and intermediate models too: the clear values stay in the landing files."""
    emails, phones = landing_pii(sample_build.landing_dir)
    leaks: dict[str, dict[str, list[str]]] = {}
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        catalog = connection.execute("select current_database()").fetchone()[0]
        every = relations(connection, catalog)
        assert any('"base_landing__users"' in name for name in every), every
        for relation in every:
            if found := clear_pii_found(connection, relation, emails, phones):
                leaks[relation] = found
    assert leaks == {}


def test_quarantined_users_keep_the_hash_of_what_arrived(sample_build: Build) -> None:
    """A quarantined user row still shows the operator which user it was: its raw_record has
    email_hash and phone_hash, the SHA-256 of the trimmed, lower-cased value (what
    stg_landing__users joins a CRM on), and no email or phone key."""
    glob = sql_string_literal(str(sample_build.landing_dir / "users" / "*" / "*.parquet"))
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        landed = connection.execute(
            f"select user_id, email, phone from read_parquet({glob}) "
            "where email is not null and phone is not null"
        ).fetchall()
        records = [
            json.loads(raw)
            for (raw,) in connection.execute(
                "select raw_record from marts.quarantined_rows where table_name = 'users'"
            ).fetchall()
        ]
    assert records, "the sample quarantines some user rows"
    hashes = {pii_hash(email): phone for _, email, phone in landed}
    matched = 0
    for record in records:
        assert "email" not in record and "phone" not in record, record
        assert {"email_hash", "phone_hash", "user_id", "filename"} <= record.keys(), record
        if record["email_hash"] in hashes:
            assert record["phone_hash"] == pii_hash(hashes[record["email_hash"]])
            matched += 1
    assert matched > 0
