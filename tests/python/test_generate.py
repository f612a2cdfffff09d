"""Tests for the sample-data generator (userops.generate).

The quarantine rules of docs/landing_contract.md are re-implemented here in plain DuckDB SQL,
independently of the generator, so the injected-defect bookkeeping is checked against what is
actually in the files.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from userops.generate import TABLES, generate
from userops.quality.settings import dbt_var

END = date(2026, 11, 21)
DAYS = 21
SMALL = {"users": 400, "days": DAYS, "end_date": END}
REASONS = (
    "missing_key",
    "missing_value",
    "unparseable_value",
    "invalid_value",
    "bad_timestamp",
    "negative_amount",
    "duplicate",
)
KNOWN_EVENTS = (
    "app_open", "page_view", "search", "view_item", "add_to_cart", "checkout", "pay_success",
    "signup", "login", "share", "invite_accepted", "push_receive", "push_click", "coupon_claim",
)  # fmt: skip

REQUIRED_TYPES: dict[str, dict[str, pa.DataType]] = {
    "users": {"user_id": pa.string(), "signup_at": pa.timestamp("us")},
    "events": {
        "event_id": pa.string(),
        "user_id": pa.string(),
        "event_time": pa.timestamp("us"),
        "event_name": pa.string(),
        "properties": pa.string(),
    },
    "orders": {
        "order_id": pa.string(),
        "user_id": pa.string(),
        "ordered_at": pa.timestamp("us"),
        "status": pa.string(),
        "amount": pa.string(),
        "discount": pa.decimal128(12, 2),
    },
    "order_items": {
        "order_id": pa.string(),
        "product_id": pa.string(),
        "category": pa.string(),
        "quantity": pa.int32(),
        "unit_price": pa.decimal128(12, 2),
    },
    "marketing_spend": {
        "spend_date": pa.date32(),
        "channel": pa.string(),
        "spend": pa.decimal128(14, 2),
    },
}


# --------------------------------------------------------------------------- contract rules
def _blank(col: str) -> str:
    return f"({col} is null or trim({col}::varchar) = '')"


# Per table: key columns, other required columns, and the SQL of each rule (independent flags).
BUILD_LIMIT = f"timestamp '{END + timedelta(days=2)}'"  # "more than one day after the build"
# The project's floor (default 1990-01-01): the injected bad timestamps must lie before it.
FLOOR = str(dbt_var("min_valid_timestamp"))
RULES: dict[str, dict[str, str]] = {
    "users": {
        "missing_key": _blank("user_id"),
        "missing_value": "signup_at is null",
        "bad_timestamp": f"signup_at < timestamp '{FLOOR}' or signup_at > {BUILD_LIMIT}",
    },
    "events": {
        "missing_key": f"{_blank('event_id')} or {_blank('user_id')}",
        "missing_value": "event_time is null or event_name is null",
        "unparseable_value": "properties is not null and not json_valid(properties)",
        "bad_timestamp": f"event_time < timestamp '{FLOOR}' or event_time > {BUILD_LIMIT}",
    },
    "orders": {
        "missing_key": f"{_blank('order_id')} or {_blank('user_id')}",
        "missing_value": "ordered_at is null or status is null or amount is null",
        "unparseable_value": "amount is not null and try_cast(amount as decimal(18, 2)) is null",
        "invalid_value": "status not in ('paid', 'cancelled', 'refunded')",
        "bad_timestamp": f"ordered_at < timestamp '{FLOOR}' or ordered_at > {BUILD_LIMIT}",
        "negative_amount": "try_cast(amount as decimal(18, 2)) < 0 or discount < 0",
    },
    "order_items": {
        "missing_key": f"{_blank('order_id')} or {_blank('product_id')}",
        "missing_value": "category is null or quantity is null or unit_price is null",
        "negative_amount": "quantity <= 0 or unit_price < 0",
    },
    "marketing_spend": {
        "missing_key": f"spend_date is null or {_blank('channel')}",
        "missing_value": "spend is null",
        "bad_timestamp": f"spend_date < date '{FLOOR}' or spend_date > {BUILD_LIMIT}",
        "negative_amount": "spend < 0",
    },
}
PRIMARY_KEY = {
    "users": "user_id",
    "events": "event_id",
    "orders": "order_id",
    "order_items": "order_id, product_id",
    "marketing_spend": "spend_date, channel",
}
ROW_TIME = {
    "users": "signup_at",
    "events": "event_time",
    "orders": "ordered_at",
    "order_items": "null",
    "marketing_spend": "spend_date",
}


def _connect(landing: Path) -> duckdb.DuckDBPyConnection:
    """Views raw_<table> (all rows + file name + one flag column per rule) and clean_<table>."""
    con = duckdb.connect()
    for table in TABLES:
        rules = RULES[table]
        flags = ", ".join(f"coalesce(({sql}), false) as f_{name}" for name, sql in rules.items())
        con.sql(
            f"create view raw_{table} as select *, {flags} "
            f"from read_parquet('{landing}/{table}/*/*.parquet', filename = true, "
            f"hive_partitioning = false)"
        )
        any_flag = " or ".join(f"f_{name}" for name in rules)
        con.sql(
            f"create view ranked_{table} as select *, ({any_flag}) as is_bad, "
            f"row_number() over (partition by {PRIMARY_KEY[table]}, ({any_flag}) "
            f"order by filename, {ROW_TIME[table]}) as key_rank from raw_{table}"
        )
        con.sql(
            f"create view clean_{table} as select * from ranked_{table} "
            f"where not is_bad and key_rank = 1"
        )
    return con


def _reason_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """Quarantine reason per row, first applicable in contract order."""
    rules = RULES[table]
    cases = " ".join(f"when f_{name} then '{name}'" for name in REASONS if name in rules)
    rows = con.sql(
        f"select case {cases} when key_rank > 1 then 'duplicate' end as reason, count(*) "
        f"from ranked_{table} group by 1"
    ).fetchall()
    counts = {name: 0 for name in REASONS}
    counts.update({reason: n for reason, n in rows if reason is not None})
    return counts


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A small data set with a high defect share so every defect type shows up."""
    root = tmp_path_factory.mktemp("dirty")
    written = generate(root / "landing", bad_row_share=0.05, seed=7, **SMALL)
    return root, written


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("clean")
    written = generate(root / "landing", bad_row_share=0.0, seed=7, **SMALL)
    return root, written


@pytest.fixture(scope="module")
def con(dirty: tuple[Path, dict[str, int]]) -> duckdb.DuckDBPyConnection:
    return _connect(dirty[0] / "landing")


def _files(landing: Path) -> dict[str, bytes]:
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*.parquet"))}


# --------------------------------------------------------------------------- layout and types
def test_layout_is_one_file_per_table_and_day_inside_the_window(
    dirty: tuple[Path, dict[str, int]],
) -> None:
    landing = dirty[0] / "landing"
    window = {(END - timedelta(days=i)).isoformat() for i in range(DAYS)}
    for table in TABLES:
        files = sorted((landing / table).rglob("*"))
        parquet = [f for f in files if f.is_file()]
        assert parquet, table
        for f in parquet:
            assert f.name == "part-0.parquet"
            match = re.fullmatch(r"dt=(\d{4}-\d{2}-\d{2})", f.parent.name)
            assert match and match.group(1) in window, f
    # Events cover the whole window: every business day has activity.
    assert len(list((landing / "events").iterdir())) == DAYS


def test_required_columns_have_contract_types(dirty: tuple[Path, dict[str, int]]) -> None:
    landing = dirty[0] / "landing"
    for table, required in REQUIRED_TYPES.items():
        for f in (landing / table).rglob("*.parquet"):
            schema = pq.read_schema(f)
            for column, typ in required.items():
                assert schema.field(column).type == typ, (table, column, f)


def test_returned_counts_are_rows_in_files(
    dirty: tuple[Path, dict[str, int]], con: duckdb.DuckDBPyConnection
) -> None:
    _, written = dirty
    for table in TABLES:
        assert con.sql(f"select count(*) from raw_{table}").fetchall()[0][0] == written[table]


def test_events_per_user_day_in_documented_range(
    clean: tuple[Path, dict[str, int]],
) -> None:
    # The docstring promises ~1.4 events per user-day (the whole window, churned users included).
    per_user_day = clean[1]["events"] / (SMALL["users"] * DAYS)
    assert 0.5 < per_user_day < 3.0


# --------------------------------------------------------------------------- determinism
def test_same_arguments_give_byte_identical_files(
    tmp_path: Path, dirty: tuple[Path, dict[str, int]]
) -> None:
    generate(tmp_path / "landing", bad_row_share=0.05, seed=7, **SMALL)
    assert _files(tmp_path / "landing") == _files(dirty[0] / "landing")
    for name in ("user_churn_truth.parquet", "injected_defects.json"):
        assert (tmp_path / "ground_truth" / name).read_bytes() == (
            dirty[0] / "ground_truth" / name
        ).read_bytes()


def test_different_seed_gives_different_data(
    tmp_path: Path, dirty: tuple[Path, dict[str, int]]
) -> None:
    generate(tmp_path / "landing", bad_row_share=0.05, seed=8, **SMALL)
    ours, theirs = _files(tmp_path / "landing"), _files(dirty[0] / "landing")
    shared = set(ours) & set(theirs)
    assert shared
    assert all(ours[name] != theirs[name] for name in shared if "/events/" in f"/{name}")


def test_rerun_replaces_previous_data_set(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(landing, users=50, days=10, end_date=END, bad_row_share=0.0)
    generate(landing, users=50, days=3, end_date=END - timedelta(days=30), bad_row_share=0.0)
    dts = {p.parent.name for p in landing.rglob("*.parquet")}
    assert dts <= {f"dt={END - timedelta(days=30 + i)}" for i in range(3)}


def test_custom_ground_truth_dir(tmp_path: Path) -> None:
    generate(tmp_path / "l", users=30, days=3, end_date=END, ground_truth_dir=tmp_path / "gt")
    assert (tmp_path / "gt" / "injected_defects.json").exists()
    assert not (tmp_path / "ground_truth").exists()


# --------------------------------------------------------------------------- defects
def test_injected_defects_match_recomputed_quarantine(
    dirty: tuple[Path, dict[str, int]], con: duckdb.DuckDBPyConnection
) -> None:
    injected = json.loads((dirty[0] / "ground_truth" / "injected_defects.json").read_text())
    assert set(injected) == set(TABLES)
    for table in TABLES:
        expected = {r: injected[table][r] for r in REASONS}
        assert _reason_counts(con, table) == expected, table
        assert sum(expected.values()) > 0, table
    # The dense tables carry every defect type their columns can express.
    assert all(injected["orders"][r] > 0 for r in REASONS)
    events_expected = set(REASONS) - {"invalid_value", "negative_amount"}
    assert all(injected["events"][r] > 0 for r in events_expected)
    assert all(injected["order_items"][r] > 0 for r in ("missing_key", "negative_amount"))


def test_unknown_event_names_are_counted_and_not_bad(
    dirty: tuple[Path, dict[str, int]], con: duckdb.DuckDBPyConnection
) -> None:
    injected = json.loads((dirty[0] / "ground_truth" / "injected_defects.json").read_text())
    known = ", ".join(f"'{e}'" for e in KNOWN_EVENTS)
    unknown = con.sql(
        f"select count(*), count(*) filter (where is_bad or key_rank > 1) from ranked_events "
        f"where event_name not in ({known})"
    ).fetchall()[0]
    assert unknown == (injected["events"]["unknown_event_name"], 0)
    assert unknown[0] > 0


def test_each_bad_row_triggers_exactly_one_reason(con: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        n_flags = " + ".join(f"f_{name}::int" for name in RULES[table])
        worst = con.sql(f"select max({n_flags}) from raw_{table}").fetchall()[0][0]
        assert worst == 1, table


def test_changed_duplicates_sit_in_a_later_file(con: duckdb.DuckDBPyConnection) -> None:
    # Same event_id, different content: the clean original must win on file name (then time).
    groups = con.sql(
        """
        select event_id, count(distinct event_time) as versions,
               arg_min(event_time, (filename, event_time)) = min(event_time) as original_wins,
               min(filename) < max(filename) as spans_files
        from ranked_events where not is_bad group by event_id having count(*) > 1
        """
    ).fetchall()
    changed = [g for g in groups if g[1] > 1]
    assert changed, "expected some same-id/different-content duplicates"
    assert all(g[2] and g[3] for g in changed)


def test_zero_share_means_no_defects_at_all(clean: tuple[Path, dict[str, int]]) -> None:
    root, written = clean
    injected = json.loads((root / "ground_truth" / "injected_defects.json").read_text())
    assert all(n == 0 for counts in injected.values() for n in counts.values())
    con = _connect(root / "landing")
    for table in TABLES:
        assert _reason_counts(con, table) == dict.fromkeys(REASONS, 0), table
        assert con.sql(f"select count(*) from clean_{table}").fetchall()[0][0] == written[table]
    known = ", ".join(f"'{e}'" for e in KNOWN_EVENTS)
    assert (
        con.sql(f"select count(*) from raw_events where event_name not in ({known})").fetchall()[0][
            0
        ]
        == 0
    )


# --------------------------------------------------------------------------- clean-row sanity
def test_clean_rows_are_referentially_sound(con: duckdb.DuckDBPyConnection) -> None:
    def zero(sql: str) -> None:
        assert con.sql(sql).fetchall()[0][0] == 0, sql

    zero("select count(*) from clean_orders where user_id not in (select user_id from clean_users)")
    zero("select count(*) from clean_events where user_id not in (select user_id from clean_users)")
    zero(
        "select count(*) from clean_order_items "
        "where order_id not in (select order_id from clean_orders)"
    )
    zero(
        "select count(*) from clean_orders "
        "where order_id not in (select order_id from clean_order_items)"
    )
    # Nobody acts before signing up; signup event time is exactly signup_at.
    zero(
        "select count(*) from clean_events e join clean_users u using (user_id) "
        "where e.event_time < u.signup_at"
    )
    zero(
        "select count(*) from clean_users u left join clean_events e "
        "on e.user_id = u.user_id and e.event_name = 'signup' "
        "where e.event_time is distinct from u.signup_at"
    )


def test_every_pay_success_is_exactly_one_order(con: duckdb.DuckDBPyConnection) -> None:
    mismatches = con.sql(
        """
        with pay as (
            select user_id, event_time, properties ->> 'order_id' as order_id,
                   properties ->> 'amount' as amount
            from clean_events where event_name = 'pay_success'
        )
        select
            (select count(*) from pay) = (select count(*) from clean_orders) as same_count,
            (select count(*) from pay p full join clean_orders o using (order_id)
             where p.user_id is distinct from o.user_id
                or p.event_time is distinct from o.ordered_at
                or p.amount is distinct from o.amount) as mismatched
        """
    ).fetchall()[0]
    assert mismatches == (True, 0)


def test_order_amount_is_items_minus_discount(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.sql(
        """
        select count(*) filter (where o.amount::decimal(18, 2) <> i.subtotal - o.discount),
               count(*) filter (where not regexp_full_match(o.amount, '\\d+\\.\\d{2}')),
               count(*) filter (where o.currency <> 'CNY' or o.discount < 0),
               min(i.n_items), max(i.n_items), count(*) filter (where o.coupon_code is not null)
        from clean_orders o join (
            select order_id, sum(quantity * unit_price) as subtotal, count(*) as n_items
            from clean_order_items group by 1
        ) i using (order_id)
        """
    ).fetchall()[0]
    assert rows[:3] == (0, 0, 0)
    assert rows[3] >= 1 and rows[4] <= 5
    assert rows[5] > 0  # coupon users exist


def test_invites_point_to_earlier_users_and_mostly_explain_referrals(
    con: duckdb.DuckDBPyConnection,
) -> None:
    stats = con.sql(
        """
        select count(*) filter (where r.signup_at > u.signup_at or r.user_id is null),
               count(*) filter (where u.acquisition_channel <> 'referral'),
               count(*),
               (select count(*) from clean_users where acquisition_channel = 'referral')
        from clean_events e
        join clean_users u using (user_id)
        left join clean_users r on r.user_id = e.referrer_user_id
        where e.event_name = 'invite_accepted'
        """
    ).fetchall()[0]
    bad_referrer, non_referral, invites, referral_users = stats
    assert bad_referrer == 0 and non_referral == 0
    assert invites >= 0.6 * referral_users > 0
    assert (
        con.sql(
            "select count(*) from clean_events where referrer_user_id is not null "
            "and event_name <> 'invite_accepted'"
        ).fetchall()[0][0]
        == 0
    )


def test_activity_peaks_in_the_shanghai_evening(con: duckdb.DuckDBPyConnection) -> None:
    evening, small_hours = con.sql(
        """
        select count(*) filter (where hour(event_time + interval 8 hour) between 19 and 22),
               count(*) filter (where hour(event_time + interval 8 hour) between 3 and 5)
        from clean_events
        """
    ).fetchall()[0]
    assert evening > 5 * small_hours > 0


def test_spend_follows_paid_acquisition(con: duckdb.DuckDBPyConnection) -> None:
    corr, channels = con.sql(
        """
        with signups as (
            select (signup_at + interval 8 hour)::date as d, acquisition_channel as channel,
                   count(*) as n
            from clean_users group by all
        )
        select corr(s.spend, coalesce(g.n, 0)), count(distinct s.channel)
        from clean_marketing_spend s left join signups g on g.d = s.spend_date
             and g.channel = s.channel
        where s.channel = 'paid_search'
        """
    ).fetchall()[0]
    assert corr > 0.5
    assert (
        con.sql("select count(distinct channel) from clean_marketing_spend").fetchall()[0][0] >= 3
    )


# --------------------------------------------------------------------------- ground truth
def test_churn_truth_covers_every_user_and_matches_activity(
    dirty: tuple[Path, dict[str, int]], con: duckdb.DuckDBPyConnection
) -> None:
    truth = dirty[0] / "ground_truth" / "user_churn_truth.parquet"
    con.sql(f"create or replace view truth as select * from read_parquet('{truth}')")
    coverage = con.sql(
        """
        select (select count(*) from truth), (select count(distinct user_id) from truth),
               (select count(*) from clean_users u anti join truth t using (user_id)),
               (select count(*) from truth t anti join clean_users u using (user_id))
        """
    ).fetchall()[0]
    assert coverage[0] == coverage[1] == SMALL["users"]
    assert coverage[2:] == (0, 0)
    start = END - timedelta(days=DAYS - 1)
    checks = con.sql(
        f"""
        select count(*) filter (where churn_date < date '{start}' or churn_date > date '{END}'),
               count(*) filter (where churn_date is null and is_churned_at_end),
               count(*) filter (where churn_propensity not between 0 and 1),
               count(*) filter (where churn_date is not null),
               count(*) filter (where churn_date is null)
        from truth
        """
    ).fetchall()[0]
    assert checks[:3] == (0, 0, 0)
    assert checks[3] > 0 and checks[4] > 0  # some churn, some survive the window
    # Churned users without reactivation start no session on or after their churn date
    # (business dates, Asia/Shanghai).
    late_sessions = con.sql(
        """
        with starts as (
            select user_id, session_id, min(event_time) as started from clean_events
            where session_id is not null group by all
        )
        select count(*) from starts s join truth t using (user_id)
        where t.churn_date is not null and t.reactivation_date is null
          and (s.started + interval 8 hour)::date >= t.churn_date
        """
    ).fetchall()[0][0]
    assert late_sessions == 0


def test_high_propensity_users_churn_more(dirty: tuple[Path, dict[str, int]]) -> None:
    truth = pq.read_table(dirty[0] / "ground_truth" / "user_churn_truth.parquet").to_pandas()
    high = truth[truth.churn_propensity > truth.churn_propensity.median()]
    low = truth[truth.churn_propensity <= truth.churn_propensity.median()]
    assert high.is_churned_at_end.mean() > low.is_churned_at_end.mean() + 0.1
