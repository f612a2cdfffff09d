"""The report printed after a build: the latest day's headline numbers, what got in from the
landing files (and what was quarantined, why), rows per layer, and where BI reads.

Every number is read from a mart as the build wrote it (daily_metrics, n_day_retention_rates,
metric_values, the metric catalogue seed, ml.churn_scores, user_tags, landing_row_accounting,
quarantined_rows); nothing is recomputed here. A mart that is absent or empty (an orders-only data
set, a build that stopped early) leaves its line out or says so; the summary never fails on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from userops.quality.settings import dbt_vars, mandatory_tables, reason_threshold
from userops.warehouse import connect_read_only, serving_database

LAYERS = ("staging", "intermediate", "marts")
TOP_REASONS = 3
RISK_TIERS = ("high", "medium", "low")
REASON_HINTS = {
    "bad_timestamp": "timestamps before var min_valid_timestamp ({min_valid_timestamp})"
    " or more than var max_future_days after the build",
    "duplicate": "the same key more than once",
    "missing_key": "no key",
    "missing_value": "a required value missing",
    "unparseable_value": "a value that does not parse as its type",
    "invalid_value": "a value outside its accepted set",
    "negative_amount": "a negative amount or a quantity <= 0",
}


# ------------------------------------------------------------------------------------ reading
def _exists(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    (count,) = connection.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(count)


def _columns(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [
        str(name)
        for (name,) in connection.execute(
            "select column_name from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def layer_row_counts_in(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {layer: {} for layer in LAYERS}
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


def layer_row_counts(warehouse_path: Path) -> dict[str, dict[str, int]]:
    """Row counts of every relation in the staging, intermediate and marts schemas."""
    with connect_read_only(Path(warehouse_path)) as connection:
        return layer_row_counts_in(connection)


@dataclass(frozen=True)
class NorthStar:
    metric_code: str
    name: str
    unit: str
    value: float | None
    as_of: date | None
    source: str


@dataclass(frozen=True)
class Headline:
    """The latest day of marts.daily_metrics and the churn-risk counts; None = not available."""

    metric_date: date | None = None
    dau: float | None = None
    new_users: float | None = None
    gmv: float | None = None
    paying_users: float | None = None
    paying_rate: float | None = None
    # D7 of the latest signup day whose 7 days have passed (n_day_retention_rates, overall).
    d7_signup_date: date | None = None
    d7_new_users: int | None = None
    d7_retained_users: int | None = None
    d7_retention_rate: float | None = None
    north_stars: list[NorthStar] = field(default_factory=list)
    churn_scored_date: date | None = None
    churn_tiers: dict[str, int] = field(default_factory=dict)
    churn_tag_date: date | None = None
    churn_tag_values: dict[str, int] = field(default_factory=dict)


def _latest_daily(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    if not _exists(connection, "marts", "daily_metrics"):
        return {}
    cursor = connection.execute(
        "select * from marts.daily_metrics"
        " where metric_date = (select max(metric_date) from marts.daily_metrics)"
    )
    row = cursor.fetchone()
    if row is None:
        return {}
    return dict(zip([column[0] for column in cursor.description], row, strict=True))


def _latest_d7(connection: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    if not _exists(connection, "marts", "n_day_retention_rates"):
        return None
    return connection.execute(
        """
        select signup_date, new_users, d7_retained_users, d7_retention_rate
        from marts.n_day_retention_rates
        where segment_dimension = 'overall' and d7_retention_rate is not null
        order by signup_date desc
        limit 1
        """
    ).fetchone()


def _north_star_value(
    connection: duckdb.DuckDBPyConnection, metric_code: str, model: str, column: str
) -> tuple[float | None, date | None, str]:
    """The latest overall value: metric_values for daily metrics, else the source model's
    latest row (its first date column; the 'overall' group when it has one)."""
    if _exists(connection, "marts", "metric_values"):
        row = connection.execute(
            "select metric_value, metric_date from marts.metric_values"
            " where metric_code = ? and dimension = 'overall'"
            " order by metric_date desc limit 1",
            [metric_code],
        ).fetchone()
        if row is not None:
            return _number(row[0]), row[1], "marts.metric_values"
    if not model or not _exists(connection, "marts", model):
        return None, None, f"marts.{model}"
    columns = connection.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'marts' and table_name = ? order by ordinal_position",
        [model],
    ).fetchall()
    names = [name for name, _ in columns]
    dates = [name for name, data_type in columns if str(data_type).upper() == "DATE"]
    if column not in names or not dates:
        return None, None, f"marts.{model}"
    group = next(
        (name for name in ("group_dimension", "segment_dimension", "dimension") if name in names),
        None,
    )
    where = f"where \"{group}\" = 'overall'" if group else ""
    row = connection.execute(
        f'select "{column}", "{dates[0]}" from marts."{model}" {where}'
        f' order by "{dates[0]}" desc limit 1'
    ).fetchone()
    if row is None:
        return None, None, f"marts.{model}"
    return _number(row[0]), row[1], f"marts.{model}.{column}"


def _north_stars(connection: duckdb.DuckDBPyConnection) -> list[NorthStar]:
    if not _exists(connection, "config", "metric_catalogue"):
        return []
    stars = connection.execute(
        "select metric_code, name_en, unit, source_model, source_column"
        " from config.metric_catalogue where is_north_star order by metric_code"
    ).fetchall()
    result = []
    for code, name, unit, model, column in stars:
        value, as_of, source = _north_star_value(connection, code, model or "", column or "")
        result.append(NorthStar(code, name or code, unit or "", value, as_of, source))
    return result


def _churn_scores(connection: duckdb.DuckDBPyConnection) -> tuple[date | None, dict[str, int]]:
    if not _exists(connection, "ml", "churn_scores"):
        return None, {}
    rows = connection.execute(
        "select scored_date, risk_tier, count(*) from ml.churn_scores"
        " where scored_date = (select max(scored_date) from ml.churn_scores) group by all"
    ).fetchall()
    if not rows:
        return None, {}
    return rows[0][0], {tier: int(count) for _, tier, count in rows}


def _churn_tags(connection: duckdb.DuckDBPyConnection) -> tuple[date | None, dict[str, int]]:
    if not _exists(connection, "marts", "user_tags"):
        return None, {}
    rows = connection.execute(
        "select as_of_date, tag_value, count(*) from marts.user_tags"
        " where tag_code = 'churn_risk'"
        " and as_of_date = (select max(as_of_date) from marts.user_tags) group by all"
    ).fetchall()
    if not rows:
        return None, {}
    return rows[0][0], {value: int(count) for _, value, count in rows}


def read_headline(connection: duckdb.DuckDBPyConnection) -> Headline:
    daily = _latest_daily(connection)
    d7 = _latest_d7(connection)
    scored_date, tiers = _churn_scores(connection)
    tag_date, tag_values = _churn_tags(connection)
    return Headline(
        metric_date=daily.get("metric_date"),
        dau=_number(daily.get("dau")),
        new_users=_number(daily.get("new_users")),
        gmv=_number(daily.get("gmv")),
        paying_users=_number(daily.get("paying_users")),
        paying_rate=_number(daily.get("paying_rate")),
        d7_signup_date=d7[0] if d7 else None,
        d7_new_users=int(d7[1]) if d7 and d7[1] is not None else None,
        d7_retained_users=int(d7[2]) if d7 and d7[2] is not None else None,
        d7_retention_rate=_number(d7[3]) if d7 else None,
        north_stars=_north_stars(connection),
        churn_scored_date=scored_date,
        churn_tiers=tiers,
        churn_tag_date=tag_date,
        churn_tag_values=tag_values,
    )


@dataclass(frozen=True)
class LandingTable:
    """One row of marts.landing_row_accounting with its quarantine reasons, most rows first."""

    table_name: str
    raw_rows: int
    staged_rows: int
    quarantined_rows: int
    reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def staged_share(self) -> float | None:
        return self.staged_rows / self.raw_rows if self.raw_rows else None

    def over_threshold(
        self, overrides: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float, str, float]]:
        """(reason, share of raw rows, dq var, its max share) for each reason above its var,
        then ("all reasons", ...) when the quarantined share is above dq_max_quarantined_share:
        the two limits of the dbt quarantine gate (macros/landing/quarantine_gate.sql).
        `overrides`: the build's --vars, over dbt_project.yml's, as dbt reads them."""
        values = {**dbt_vars(), **(overrides or {})}
        found = []
        if not self.raw_rows:
            return found
        for reason, count in self.reasons:
            var, limit = reason_threshold(reason, values)
            share = count / self.raw_rows
            if share > limit:
                found.append((reason, share, var, limit))
        total_limit = float(values["dq_max_quarantined_share"])
        if self.quarantined_rows / self.raw_rows > total_limit:
            share = self.quarantined_rows / self.raw_rows
            found.append(("all reasons", share, "dq_max_quarantined_share", total_limit))
        return found

    def is_flagged(self, mandatory: bool, overrides: Mapping[str, Any] | None = None) -> bool:
        """Flagged: a mandatory table without rows, or a share above a limit of the gate."""
        if not self.raw_rows:
            return mandatory
        return bool(self.over_threshold(overrides))


def read_landing_tables(connection: duckdb.DuckDBPyConnection) -> list[LandingTable] | None:
    """None when the build has no landing_row_accounting (reasons are left out without
    quarantined_rows)."""
    if not _exists(connection, "marts", "landing_row_accounting"):
        return None
    reasons: dict[str, list[tuple[str, int]]] = {}
    if _exists(connection, "marts", "quarantined_rows"):
        for table, reason, count in connection.execute(
            "select table_name, quarantine_reason, count(*) from marts.quarantined_rows"
            " group by all order by 1, 3 desc, 2"
        ).fetchall():
            reasons.setdefault(table, []).append((reason, int(count)))
    rows = connection.execute(
        "select table_name, raw_rows, staged_rows, quarantined_rows"
        " from marts.landing_row_accounting"
    ).fetchall()
    order = {"users": 0, "events": 1, "orders": 2, "order_items": 3, "marketing_spend": 4}
    tables = [
        LandingTable(str(name), int(raw), int(staged), int(quarantined), reasons.get(name, []))
        for name, raw, staged, quarantined in rows
    ]
    return sorted(tables, key=lambda table: (order.get(table.table_name, 99), table.table_name))


@dataclass(frozen=True)
class Summary:
    headline: Headline
    landing: list[LandingTable] | None
    layers: dict[str, dict[str, int]]


def read_summary(warehouse_path: Path) -> Summary:
    """Everything the summary prints; raises WarehouseUnavailable when the file cannot be read."""
    with connect_read_only(Path(warehouse_path)) as connection:
        return Summary(
            read_headline(connection),
            read_landing_tables(connection),
            layer_row_counts_in(connection),
        )


def read_landing(warehouse_path: Path) -> list[LandingTable] | None:
    with connect_read_only(Path(warehouse_path)) as connection:
        return read_landing_tables(connection)


# ------------------------------------------------------------------------------------ formatting
def _integer(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}".replace("%", " %")


def _amount(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def format_value(value: float | None, unit: str, metric_code: str = "") -> str:
    """A catalogue metric value by its unit: users/orders/events as integers, currency with two
    decimals, a ratio named as a share as a percentage."""
    from userops.quality.marts import is_share_column

    if unit in ("users", "orders", "events"):
        return _integer(value)
    if unit == "currency":
        return _amount(value)
    if is_share_column(metric_code) or metric_code.endswith("retention"):
        return _percent(value)
    return "n/a" if value is None else f"{value:,.3f}"


def format_headline(headline: Headline) -> list[str]:
    if headline.metric_date is None:
        lines = ["Latest day: no daily metrics (marts.daily_metrics is absent or empty)"]
    else:
        stars = {star.metric_code for star in headline.north_stars}

        def star(code: str) -> str:
            return "   * north star" if code in stars else ""

        lines = [
            f"Latest day {headline.metric_date} (marts.daily_metrics)",
            f"  DAU                  {_integer(headline.dau):>14}{star('dau')}",
            f"  New users            {_integer(headline.new_users):>14}{star('new_users')}",
            f"  GMV                  {_amount(headline.gmv):>14}{star('gmv')}",
            f"  Paying rate          {_percent(headline.paying_rate):>14}"
            f"   ({_integer(headline.paying_users)} paying users of "
            f"{_integer(headline.dau)} active){star('paying_rate')}",
        ]
    if headline.d7_signup_date is not None:
        lines.append(
            f"  D7 retention         {_percent(headline.d7_retention_rate):>14}"
            f"   ({_integer(headline.d7_retained_users)} of {_integer(headline.d7_new_users)} "
            f"users who signed up on {headline.d7_signup_date}, the latest signup day 7 days "
            "back; marts.n_day_retention_rates)"
        )
    elif headline.metric_date is not None:
        lines.append("  D7 retention                    n/a   (no signup day is 7 days back yet)")
    shown = {"dau", "new_users", "gmv", "paying_rate"}
    for north_star in headline.north_stars:
        if north_star.metric_code in shown:
            continue
        lines.append(
            f"  North star: {north_star.name} "
            f"{format_value(north_star.value, north_star.unit, north_star.metric_code)}"
            f" ({north_star.as_of or 'no value'}, {north_star.source})"
        )
    if len(headline.north_stars) > 1:
        codes = ", ".join(star.metric_code for star in headline.north_stars)
        lines.append(f"  ! {len(headline.north_stars)} north stars in the catalogue: {codes}")
    if headline.churn_tiers:
        total = sum(headline.churn_tiers.values())
        tiers = ", ".join(f"{headline.churn_tiers.get(tier, 0):,} {tier}" for tier in RISK_TIERS)
        lines.append(
            f"  Churn risk (model)   {tiers} of {total:,} scored users"
            f" (ml.churn_scores, {headline.churn_scored_date})"
        )
    if headline.churn_tag_values:
        values = ", ".join(
            f"{count:,} {value}" for value, count in sorted(headline.churn_tag_values.items())
        )
        lines.append(
            f"  Churn risk (tag)     {values} (user_tags churn_risk, {headline.churn_tag_date})"
        )
    return lines


def _reason_text(table: LandingTable) -> str:
    if not table.reasons or not table.quarantined_rows:
        return ""
    shown = ", ".join(
        f"{reason} {count / table.quarantined_rows:.0%}".replace("%", " %")
        for reason, count in table.reasons[:TOP_REASONS]
    )
    return f" - top reason{'s' if len(table.reasons) > 1 else ''}: {shown}"


def format_landing(
    tables: list[LandingTable] | None, overrides: Mapping[str, Any] | None = None
) -> list[str]:
    """The landing lines; `overrides`: the --vars of the build they report on (the gate's
    limits and the timestamp floor are judged and named with them)."""
    if tables is None:
        return ["Landing: no marts.landing_row_accounting in this warehouse"]
    mandatory = set(mandatory_tables())
    lines = ["What got in (marts.landing_row_accounting; reasons: marts.quarantined_rows)"]
    warnings = []
    for table in tables:
        flagged = table.is_flagged(table.table_name in mandatory, overrides)
        marker = "!" if flagged else " "
        if not table.raw_rows:
            state = "mandatory, no rows" if table.table_name in mandatory else "optional, absent"
            lines.append(f"{marker} {table.table_name:<16} no landing files ({state})")
            if flagged:
                warnings.append(f"! {table.table_name}: no landing rows at all.")
            continue
        lines.append(
            f"{marker} {table.table_name:<16} {table.raw_rows:>12,} raw"
            f" {table.staged_rows:>12,} staged ({_percent(table.staged_share)})"
            f" {table.quarantined_rows:>10,} quarantined{_reason_text(table)}"
        )
        if flagged:
            warnings.append(_warning(table, overrides or {}))
    return lines + warnings


def _warning(table: LandingTable, overrides: Mapping[str, Any]) -> str:
    text = (
        f"! {table.table_name}: only {_percent(table.staged_share)} of {table.raw_rows:,} raw "
        "rows got in."
    )
    over = table.over_threshold(overrides)
    if over and over[0][0] == "all reasons":  # no reason alone is above its var
        _, share, var, limit = over[0]
        text += (
            f" {_percent(share)} are quarantined for any reason, above {var} = {limit:g}."
            " See marts.quarantined_rows for examples."
        )
    elif over:  # flagged tables with rows have at least one
        reason, share, var, limit = over[0]
        floor = (
            f"--vars: {overrides['min_valid_timestamp']}"
            if "min_valid_timestamp" in overrides
            else f"dbt_project.yml: {dbt_vars()['min_valid_timestamp']}"
        )
        hint = REASON_HINTS.get(reason, reason).format(min_valid_timestamp=floor)
        text += (
            f" {_percent(share)} are {reason} ({hint}), above {var} = {limit:g}."
            " See marts.quarantined_rows for examples"
            + (
                "; old history needs a lower var min_valid_timestamp."
                if reason == "bad_timestamp"
                else "."
            )
        )
    return text


def format_layers(counts: dict[str, dict[str, int]]) -> list[str]:
    lines = []
    for layer in LAYERS:
        models = counts.get(layer, {})
        lines.append(f"{layer} ({len(models)} models, {sum(models.values()):,} rows)")
        lines += [f"  {name:<40} {rows:>12,}" for name, rows in models.items()]
    return lines


def format_where(warehouse_path: Path) -> list[str]:
    serving = serving_database(warehouse_path)
    published = (
        f"BI reads the serving copy {serving}"
        if serving.exists()
        else f"BI reads the serving copy {serving} (not published yet: userops publish)"
    )
    return [
        f"Working warehouse (builds write here): {warehouse_path}",
        published,
        f"  SQLAlchemy URI:  duckdb:///{serving}?access_mode=read_only",
        '  query it:        .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{serving}', read_only=True).sql('from marts.daily_metrics order by metric_date desc "
        "limit 5'))\"",
        "  Dagster UI:      make dagster   (then open http://127.0.0.1:3000)",
    ]


def format_summary(summary: Summary, warehouse_path: Path) -> str:
    # Details first: a terminal shows the end, so the headline numbers and where BI reads come
    # last.
    lines = ["", "userops build summary", "====================="]
    lines += format_layers(summary.layers)
    lines += [""] + format_landing(summary.landing)
    lines += [""] + format_headline(summary.headline)
    lines += [""] + format_where(warehouse_path)
    return "\n".join(lines)
