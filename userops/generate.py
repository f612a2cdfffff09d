"""Deterministic, vectorised sample-data generator for the userops landing zone.

Writes the five landing tables of ``docs/landing_contract.md``::

    <landing_dir>/<table>/dt=YYYY-MM-DD/part-0.parquet      # users, events, orders, order_items,
                                                           # marketing_spend
    <ground_truth_dir>/user_churn_truth.parquet             # hidden churn state per user
    <ground_truth_dir>/injected_defects.json                # exact count of injected bad rows

How the data is shaped
----------------------
Every user is governed by hidden per-user parameters drawn once (numpy, one RNG stream):
acquisition channel (sets quality: churn propensity shift, purchase propensity, coupon
dependence), churn propensity (Beta(2, 5) shifted by channel) which sets a daily churn hazard
(plus a "one-and-done" share that leaves within days), an optional later reactivation
window, activity probability, sessions per active day, browsing interest, cart and pay
propensities, basket size (bigger in large cities) and Dirichlet category preferences.

The simulation runs per *business* day (Asia/Shanghai, UTC+8, no DST): a user is "alive"
from signup until the churn day and again inside the reactivation window; an alive user is
active on a day with a probability boosted on weekends and in the first days after signup.
Each active day has 1 + Poisson sessions, each a funnel app_open -> page_view/search/view_item
-> add_to_cart -> checkout -> pay_success; every pay_success is exactly one order
(``properties.order_id`` links them). Web events carry no ``session_id`` (the warehouse
derives web sessions from the inactivity gap). Users have events only on days they are alive
(plus the signup day), so ``user_churn_truth.parquet`` can score churn models. Dates in the
truth file are business dates.

Rows are written partitioned by the UTC day of their timestamp (spend by its business date),
so a business day spans two UTC partitions; the last UTC partition ends at 16:00 UTC (= the
end of the last business day): late sessions of the last day are compressed to end by then.

Volume: at the defaults (10k users, 120 days) 1.42 events per user-day (events / (users x days)),
i.e. ~1.7M events, ~21k orders, ~47k order items. Users sign up spread over the window and many
churn, so only ~13% of user-days are active; an active user-day has ~11 events in ~1.5 sessions.
Events are linear in ``users``; in ``days`` they grow sublinearly, because a user's life is
bounded by churn (events per user-day: 2.26 at 30 days, 1.81 at 60, 1.42 at 120, 0.98 at 240).
Scale with ``users``: 58k users x 120 days gives ~9.8M events (about 15-20 s on 2 cores, 0.4 GB
RSS), and 580k users gives ~99M events (about 2 minutes, 1.2 GB RSS).

Bad rows
--------
With ``bad_row_share`` > 0 each partition file gets ~``bad_row_share`` x its clean rows as
EXTRA rows, each triggering exactly one quarantine reason of the contract (types rotate through
a per-table list, so every type appears once a table has a handful of bad rows). Duplicates are
exact copies in the same file, or same-key rows with changed content in the *next* day's file
(the clean original wins on file name). Unknown raw event names are added too (not quarantined;
counted as ``unknown_event_name``). Exact counts go to ``injected_defects.json``.

Determinism: every random draw comes from ``numpy.random.default_rng([seed, stream, ...])``
keyed by day/table, nothing reads the clock, and Parquet is written with fixed options, so the
same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TABLES = ("users", "events", "orders", "order_items", "marketing_spend")
REASONS = (
    "missing_key",
    "missing_value",
    "unparseable_value",
    "invalid_value",
    "bad_timestamp",
    "negative_amount",
    "duplicate",
)

SEC_US = 1_000_000
DAY_US = 86_400 * SEC_US
TZ_OFFSET_US = 8 * 3600 * SEC_US  # Asia/Shanghai is UTC+8 all year
EPOCH = date(1970, 1, 1)

# RNG stream ids: each concern gets its own stream so changing one never shifts another.
_STREAM_POPULATION, _STREAM_DAY, _STREAM_DEFECTS, _STREAM_SPEND, _STREAM_CATALOG = 1, 2, 3, 4, 5

# ----------------------------------------------------------------------------- dimensions
CHANNELS = ("organic", "paid_search", "social", "referral", "app_store")
CHANNEL_SHARE = np.array([0.34, 0.20, 0.17, 0.12, 0.17])
CHANNEL_WEEKEND = np.array([1.10, 0.85, 1.30, 1.20, 1.00])  # social/referral spike on weekends
CHANNEL_NOISE = np.array([0.08, 0.25, 0.25, 0.15, 0.20])  # paid budgets swing day to day
CHANNEL_CHURN_SHIFT = np.array([-0.04, 0.05, 0.12, -0.08, 0.02])
CHANNEL_BUY_MULT = np.array([1.00, 0.90, 0.75, 1.15, 0.95])
CHANNEL_COUPON_DEP = np.array([0.08, 0.15, 0.22, 0.10, 0.12])
# Paid channels: cost per acquisition in CNY (referral = invite bonus per invited signup).
SPEND_CAC_CNY = {"paid_search": 45.0, "social": 28.0, "app_store": 60.0, "referral": 15.0}
SPEND_BASE_CNY = {"paid_search": 300.0, "social": 200.0, "app_store": 250.0, "referral": 0.0}
# The fixed daily budgets above are sized for this many users; smaller or larger samples scale
# them, so CAC (and the payback period in marts.channel_paybacks) does not depend on sample size.
SPEND_BASE_USERS = 10_000

PLATFORMS = ("ios", "android", "web", "miniprogram")
_WEB = PLATFORMS.index("web")
PLATFORM_BY_CHANNEL = np.array(
    [
        [0.36, 0.40, 0.12, 0.12],  # organic
        [0.30, 0.38, 0.27, 0.05],  # paid_search lands on web pages
        [0.20, 0.25, 0.05, 0.50],  # social = mostly WeChat mini program
        [0.30, 0.30, 0.05, 0.35],  # referral links open in WeChat
        [0.50, 0.50, 0.00, 0.00],  # app_store installs are apps by definition
    ]
)
GENDERS = ("female", "male", "unknown")
GENDER_P = np.array([0.56, 0.37, 0.07])

CITIES = (
    ("Shanghai", 1), ("Beijing", 1), ("Shenzhen", 1), ("Guangzhou", 1),
    ("Chengdu", 2), ("Hangzhou", 2), ("Wuhan", 2), ("Nanjing", 2), ("Chongqing", 2),
    ("Xi'an", 2), ("Suzhou", 2), ("Tianjin", 2),
    ("Kunming", 3), ("Fuzhou", 3), ("Hefei", 3), ("Jinan", 3), ("Nanning", 3),
    ("Luoyang", 4), ("Yichang", 4), ("Zhuzhou", 4), ("Jiujiang", 4),
    ("Shangrao", 5), ("Tianshui", 5), ("Anshun", 5),
)  # fmt: skip
TIER_WEIGHT = {1: 0.09, 2: 0.045, 3: 0.03, 4: 0.02, 5: 0.015}  # per city, by tier
TIER_BASKET = np.array([0.0, 1.30, 1.15, 1.00, 0.85, 0.75])  # index = tier

CATEGORIES = (
    "fresh_fruit", "vegetables", "dairy", "snacks", "beverages",
    "household", "personal_care", "baby", "frozen", "bakery",
)  # fmt: skip
CATEGORY_POP = np.array([0.16, 0.15, 0.12, 0.11, 0.10, 0.08, 0.07, 0.05, 0.08, 0.08])
CATEGORY_PRICE_CNY = np.array([15.0, 6.0, 12.0, 10.0, 6.0, 25.0, 35.0, 60.0, 20.0, 10.0])
SEARCH_TERMS = (
    ("strawberry", "durian", "blueberry"), ("bok choy", "tomato", "potato"),
    ("milk", "yogurt", "cheese"), ("chips", "nuts", "chocolate"),
    ("cola", "tea drink", "sparkling water"), ("tissue", "detergent", "trash bags"),
    ("shampoo", "toothpaste", "face mask"), ("diapers", "formula", "baby wipes"),
    ("dumplings", "ice cream", "frozen shrimp"), ("bread", "croissant", "cake"),
)  # fmt: skip
PRODUCTS_PER_CATEGORY = 120

COUPONS = ("NEW20", "FRESH10", "WEEKEND15", "VIP5", "SAVE8")
COUPON_CENTS = np.array([2000, 1000, 1500, 500, 800])
ORDER_STATUSES = ("paid", "cancelled", "refunded")
ORDER_STATUS_P = np.array([0.93, 0.045, 0.025])
PAY_METHODS = ("wechat_pay", "alipay", "card")
PUSH_CAMPAIGNS = ("daily_deals", "cart_reminder", "restock", "flash_sale")
SHARE_CHANNELS = ("wechat", "moments", "weibo", "link")
LOGIN_METHODS = ("sms", "wechat", "password")
BROWSE_PAGES = ("home", "category", "promo", "cart", "profile", "orders")
UNKNOWN_EVENT_NAMES = ("legacy_banner_click", "ar_tryon", "live_stream_view")

# Event types in within-session order; browse events share a stage and interleave randomly.
EVENT_NAMES = (
    "push_receive", "push_click", "app_open", "login", "signup", "invite_accepted",
    "page_view", "search", "view_item", "coupon_claim",
    "add_to_cart", "checkout", "pay_success", "share",
)  # fmt: skip
(
    EV_PUSH_RECEIVE, EV_PUSH_CLICK, EV_APP_OPEN, EV_LOGIN, EV_SIGNUP, EV_INVITE,
    EV_PAGE_VIEW, EV_SEARCH, EV_VIEW_ITEM, EV_COUPON, EV_CART, EV_CHECKOUT, EV_PAY, EV_SHARE,
) = range(len(EVENT_NAMES))  # fmt: skip
EV_STAGE = np.array([0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 7, 8, 9, 10])
EV_PAGE = (
    None, "home", "home", "login", "signup", "invite_landing",
    None, "search", "item_detail", "coupon_center",
    "item_detail", "checkout", "payment", "item_detail",
)  # fmt: skip

# Local (Asia/Shanghai) hourly activity: morning bump, lunch, strong evening peak, some night use.
WEEKDAY_HOURS = np.array(
    [2.0, 1.0, 0.5, 0.3, 0.3, 0.6, 1.6, 3.2, 4.0, 4.2, 4.6, 5.2,
     6.4, 5.0, 4.4, 4.3, 4.5, 5.2, 6.2, 7.8, 9.2, 9.6, 7.2, 4.0]
)  # fmt: skip
WEEKEND_HOURS = np.array(
    [2.8, 1.6, 0.8, 0.4, 0.3, 0.4, 0.9, 1.8, 3.2, 4.6, 5.6, 6.2,
     6.6, 5.8, 5.4, 5.4, 5.6, 6.0, 6.6, 7.6, 8.6, 8.8, 7.0, 4.6]
)  # fmt: skip

SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema(
        [
            ("user_id", pa.string()),
            ("signup_at", pa.timestamp("us")),
            ("acquisition_channel", pa.string()),
            ("platform", pa.string()),
            ("gender", pa.string()),
            ("birth_year", pa.int32()),
            ("city", pa.string()),
            ("city_tier", pa.int32()),
            ("email", pa.string()),
            ("phone", pa.string()),
        ]
    ),
    "events": pa.schema(
        [
            ("event_id", pa.string()),
            ("user_id", pa.string()),
            ("event_time", pa.timestamp("us")),
            ("event_name", pa.string()),
            ("session_id", pa.string()),
            ("platform", pa.string()),
            ("page", pa.string()),
            ("referrer_user_id", pa.string()),
            ("properties", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("user_id", pa.string()),
            ("ordered_at", pa.timestamp("us")),
            ("status", pa.string()),
            ("amount", pa.string()),  # text on purpose: lets unparseable amounts exist
            ("discount", pa.decimal128(12, 2)),
            ("coupon_code", pa.string()),
            ("currency", pa.string()),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_id", pa.string()),
            ("product_id", pa.string()),
            ("category", pa.string()),
            ("quantity", pa.int32()),
            ("unit_price", pa.decimal128(12, 2)),
        ]
    ),
    "marketing_spend": pa.schema(
        [
            ("spend_date", pa.date32()),
            ("channel", pa.string()),
            ("spend", pa.decimal128(14, 2)),
        ]
    ),
}
# Column each table's rows are ordered by inside a file (order_items use their order's time).
_SORT_KEY = {
    "users": "signup_at",
    "events": "event_time",
    "orders": "ordered_at",
    "order_items": "_ordered_at",
    "marketing_spend": "channel",
}


# ============================================================================ Arrow helpers
def _fixed_width_ids(prefix: str, ints: np.ndarray, width: int) -> pa.Array:
    """Zero-padded ids like ``u00000123`` built straight into an Arrow buffer.

    ~5x faster than pyarrow's cast+lpad+join, which matters at 100M event ids.
    """
    n = len(ints)
    head = np.frombuffer(prefix.encode(), np.uint8)
    row = len(head) + width
    buf = np.empty((n, row), np.uint8)
    buf[:, : len(head)] = head
    rest = np.asarray(ints, np.int64).copy()
    for j in range(width - 1, -1, -1):
        buf[:, len(head) + j] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(n + 1, dtype=np.int64) * row
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    ).cast(pa.string())


def _labels(values: tuple[str | None, ...], codes: np.ndarray, mask: np.ndarray | None = None):
    """Map integer codes to strings (``mask`` True -> null)."""
    return pa.array(values, pa.string()).take(pa.array(codes, pa.int32(), mask=mask))


def _decimal(cents: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Exact decimal(p, 2) from integer cents (no float rounding) via the 128-bit buffer."""
    cents = np.asarray(cents, np.int64)
    buf = np.empty((len(cents), 2), np.int64)
    buf[:, 0] = cents
    buf[:, 1] = cents >> 63  # sign-extend into the high word
    return pa.Array.from_buffers(typ, len(cents), [None, pa.py_buffer(buf)])


def _cents_text(cents: np.ndarray) -> pa.Array:
    """Non-negative cents -> "123.40" decimal strings."""
    cents = np.asarray(cents, np.int64)
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, np.int64), pa.int64()).cast(pa.timestamp("us"))


def _scatter(n: int, parts: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """Assemble one string column from per-subset arrays (positions not covered -> null)."""
    covered = np.zeros(n, bool)
    for idx, _ in parts:
        covered[idx] = True
    rest = np.flatnonzero(~covered)
    positions = np.concatenate([idx for idx, _ in parts] + [rest])
    values = pa.concat_arrays([arr for _, arr in parts] + [pa.nulls(len(rest), pa.string())])
    return values.take(pa.array(np.argsort(positions, kind="stable")))


def _with(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


# ============================================================================ calendar
@dataclass(frozen=True)
class Window:
    """The generated business-day window; day index 0 = first day."""

    start: date
    days: int

    @property
    def start_utc_us(self) -> int:
        return (self.start - EPOCH).days * DAY_US

    def date(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def is_weekend(self, day: int | np.ndarray) -> np.ndarray:
        return (self.start.weekday() + np.asarray(day)) % 7 >= 5

    def local_to_utc_us(self, day: np.ndarray | int, local_us: np.ndarray) -> np.ndarray:
        """Business day index + microseconds since local midnight -> UTC epoch microseconds."""
        return self.start_utc_us + np.asarray(day, np.int64) * DAY_US + local_us - TZ_OFFSET_US

    def utc_day(self, utc_us: np.ndarray) -> np.ndarray:
        """UTC partition index of UTC epoch microseconds."""
        return (np.asarray(utc_us) - self.start_utc_us) // DAY_US


def _sample_local_seconds(
    rng: np.random.Generator, weekend: np.ndarray, min_hour: np.ndarray | int = 0
) -> np.ndarray:
    """Seconds since local midnight from the hourly curve, conditioned on hour >= min_hour."""
    n = len(weekend)
    min_hour = np.broadcast_to(np.asarray(min_hour, np.int64), (n,))
    draw = rng.random(n)
    hours = np.empty(n, np.int64)
    for curve, sel in ((WEEKEND_HOURS, weekend), (WEEKDAY_HOURS, ~weekend)):
        cdf = np.concatenate([[0.0], np.cumsum(curve)])
        lo = cdf[min_hour[sel]]
        target = lo + draw[sel] * (cdf[-1] - lo)
        hours[sel] = np.clip(np.searchsorted(cdf, target, side="right") - 1, 0, 23)
    return hours * 3600 + rng.integers(0, 3600, n)


# ============================================================================ population
@dataclass
class Population:
    """All users, sorted by signup time (index i has user_id u{i+1:08d})."""

    n: int
    ids: pa.Array
    signup_day: np.ndarray
    signup_sec: np.ndarray
    channel: np.ndarray
    platform: np.ndarray
    gender: np.ndarray
    birth_year: np.ndarray
    birth_year_null: np.ndarray
    city: np.ndarray
    propensity: np.ndarray
    churn_day: np.ndarray  # first business day in churned state (may lie beyond the window)
    react_day: np.ndarray  # first day of reactivation window (huge if none)
    react_end: np.ndarray  # exclusive end of reactivation window
    p_active: np.ndarray
    sess_lambda: np.ndarray
    interest: np.ndarray
    p_cart: np.ndarray
    p_pay: np.ndarray
    p_coupon: np.ndarray
    coupon_dep: np.ndarray
    basket: np.ndarray
    cat_cum: np.ndarray  # (n, n_categories) cumulative preference
    referrer: np.ndarray  # inviting user's index, -1 if none
    n_orders: np.ndarray  # orders so far (mutable simulation state: first-order coupons)

    def alive_mask(self, day: int) -> np.ndarray:
        """Users who may be active on `day` (signup day excluded: it has its own session)."""
        in_life = day < self.churn_day
        in_react = (self.react_day <= day) & (day < self.react_end)
        return (self.signup_day < day) & (in_life | in_react)


def _signup_cells(rng: np.random.Generator, users: int, win: Window) -> np.ndarray:
    """Expected signups per (day, channel): trend x weekday pattern x daily budget noise."""
    days = np.arange(win.days)
    trend = np.exp(0.004 * days)
    weekend = win.is_weekend(days)[:, None]
    weekday_mult = np.where(weekend, CHANNEL_WEEKEND[None, :], 1.0)
    noise = rng.lognormal(0.0, CHANNEL_NOISE[None, :], (win.days, len(CHANNELS)))
    weights = CHANNEL_SHARE[None, :] * weekday_mult * trend[:, None] * noise
    return rng.multinomial(users, (weights / weights.sum()).ravel()).reshape(weights.shape)


def _choose_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def _draw_population(seed: int, users: int, win: Window) -> tuple[Population, np.ndarray]:
    """Draw every user and their hidden parameters; also returns signups per (day, channel)."""
    rng = np.random.default_rng([seed, _STREAM_POPULATION])
    cells = _signup_cells(rng, users, win)
    day = np.repeat(np.repeat(np.arange(win.days), len(CHANNELS)), cells.ravel())
    channel = np.repeat(np.tile(np.arange(len(CHANNELS)), win.days), cells.ravel())
    # Day 0 signups start at 08:00 local (= 00:00 UTC) so nothing lands before the window.
    sec = _sample_local_seconds(rng, win.is_weekend(day), np.where(day == 0, 8, 0))
    order = np.lexsort((channel, sec, day))
    day, channel, sec = day[order], channel[order], sec[order]
    n = users

    propensity = np.clip(rng.beta(2.0, 5.0, n) + CHANNEL_CHURN_SHIFT[channel], 0.01, 0.99)
    hazard = 0.003 + 0.12 * propensity**2
    one_and_done = rng.random(n) < 0.45 * propensity
    life = np.where(one_and_done, rng.geometric(0.5, n), rng.geometric(hazard))
    churn_day = day + life
    reactivates = rng.random(n) < 0.30 * (1.0 - propensity)
    react_day = np.where(
        reactivates, churn_day + 7 + rng.geometric(1 / 20, n), np.iinfo(np.int32).max
    )
    react_end = np.where(reactivates, react_day + rng.geometric(1 / 14, n), react_day)

    city_tiers = np.array([t for _, t in CITIES])
    city_w = np.array([TIER_WEIGHT[t] for t in city_tiers])
    city = rng.choice(len(CITIES), n, p=city_w / city_w.sum())
    coupon_dep = rng.random(n) < CHANNEL_COUPON_DEP[channel]
    prefs = rng.dirichlet(CATEGORY_POP * 4.0, n)

    # Referral users mostly arrive through an invite from an earlier, engaged user.
    referrer = np.full(n, -1, np.int64)
    invited = np.flatnonzero((channel == CHANNELS.index("referral")) & (rng.random(n) < 0.85))
    invited = invited[invited > 0]
    cum_w = np.cumsum((1.2 - propensity) ** 2)
    referrer[invited] = np.searchsorted(
        cum_w, rng.random(len(invited)) * cum_w[invited - 1], "right"
    )

    pop = Population(
        n=n,
        ids=_fixed_width_ids("u", np.arange(1, n + 1), 8),
        signup_day=day.astype(np.int64),
        signup_sec=sec,
        channel=channel,
        platform=_choose_rows(rng, PLATFORM_BY_CHANNEL[channel]),
        gender=rng.choice(len(GENDERS), n, p=GENDER_P),
        birth_year=(win.start.year - np.clip(rng.normal(33, 9, n), 16, 75)).astype(np.int32),
        birth_year_null=rng.random(n) < 0.04,
        city=city,
        propensity=propensity,
        churn_day=churn_day.astype(np.int64),
        react_day=react_day.astype(np.int64),
        react_end=react_end.astype(np.int64),
        p_active=rng.beta(2.2, 2.8, n) * (1.0 - 0.4 * propensity),
        sess_lambda=rng.gamma(2.0, 0.3, n),
        interest=rng.beta(2.0, 2.0, n),
        p_cart=np.clip(rng.beta(2.0, 6.0, n) * CHANNEL_BUY_MULT[channel], 0.0, 0.95),
        p_pay=rng.beta(6.0, 2.0, n),
        p_coupon=np.where(coupon_dep, 0.35, 0.04),
        coupon_dep=coupon_dep,
        basket=rng.lognormal(0.0, 0.35, n) * TIER_BASKET[city_tiers[city]],
        cat_cum=np.cumsum(prefs, axis=1),
        referrer=referrer,
        n_orders=np.zeros(n, np.int64),
    )
    return pop, cells


def _users_table(seed: int, pop: Population, win: Window) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng([seed, _STREAM_POPULATION, 1])  # PII only
    n = pop.n
    signup_us = win.local_to_utc_us(pop.signup_day, pop.signup_sec * SEC_US)
    handles = (
        "lihua",
        "wangfang",
        "zhangwei",
        "liuyang",
        "chenjing",
        "yangli",
        "zhaolei",
        "zhoujie",
    )
    domains = ("@qq.example", "@163.example", "@gmail.example", "@outlook.example")
    email = pc.binary_join_element_wise(
        _labels(handles, rng.integers(0, len(handles), n)),
        _fixed_width_ids("", rng.integers(0, 100_000, n), 5),
        _labels(domains, rng.integers(0, len(domains), n)),
        "",
    )
    phone = pc.binary_join_element_wise(
        _labels(("13", "15", "17", "18", "19"), rng.integers(0, 5, n)),
        _fixed_width_ids("", rng.integers(0, 1_000_000_000, n), 9),
        "",
    )
    tiers = np.array([t for _, t in CITIES], np.int32)
    table = pa.table(
        {
            "user_id": pop.ids,
            "signup_at": _timestamps(signup_us),
            "acquisition_channel": _labels(CHANNELS, pop.channel),
            "platform": _labels(PLATFORMS, pop.platform),
            "gender": _labels(GENDERS, pop.gender),
            "birth_year": pa.array(pop.birth_year, pa.int32(), mask=pop.birth_year_null),
            "city": _labels(tuple(c for c, _ in CITIES), pop.city),
            "city_tier": pa.array(tiers[pop.city], pa.int32()),
            "email": email,
            "phone": phone,
        },
        schema=SCHEMAS["users"],
    )
    return table, win.utc_day(signup_us)


def _truth_table(pop: Population, win: Window) -> pa.Table:
    last = win.days - 1
    churned = pop.churn_day <= last
    reactivated = pop.react_day <= last
    alive_at_end = (last < pop.churn_day) | ((pop.react_day <= last) & (last < pop.react_end))
    start_days = (win.start - EPOCH).days
    return pa.table(
        {
            "user_id": pop.ids,
            "churn_propensity": pa.array(pop.propensity, pa.float64()),
            "churn_date": pa.array(
                (start_days + np.minimum(pop.churn_day, last)).astype(np.int32), mask=~churned
            ).cast(pa.date32()),
            "is_churned_at_end": pa.array(~alive_at_end),
            "reactivation_date": pa.array(
                (start_days + np.minimum(pop.react_day, last)).astype(np.int32), mask=~reactivated
            ).cast(pa.date32()),
        }
    )


# ============================================================================ catalog
@dataclass(frozen=True)
class Catalog:
    price_cents: np.ndarray  # (n_categories * PRODUCTS_PER_CATEGORY,)
    product_ids: pa.Array
    popularity_cdf: np.ndarray  # Zipf-like within a category


def _draw_catalog(seed: int) -> Catalog:
    rng = np.random.default_rng([seed, _STREAM_CATALOG])
    k = PRODUCTS_PER_CATEGORY
    base = np.repeat(CATEGORY_PRICE_CNY, k)
    price = np.maximum(np.round(base * rng.lognormal(0.0, 0.45, base.size) * 10) * 10, 100)
    cat = np.repeat(np.arange(len(CATEGORIES)), k)
    pop = 1.0 / np.arange(1, k + 1) ** 0.9
    return Catalog(
        price_cents=price.astype(np.int64),
        product_ids=_fixed_width_ids("p", cat * 10_000 + np.tile(np.arange(k), len(CATEGORIES)), 6),
        popularity_cdf=np.cumsum(pop) / pop.sum(),
    )


def _pick_categories(rng: np.random.Generator, pop: Population, users: np.ndarray) -> np.ndarray:
    """A category per row, drawn from that row's user's preferences."""
    cum = pop.cat_cum[users]
    return np.minimum((rng.random(len(users))[:, None] > cum).sum(axis=1), len(CATEGORIES) - 1)


def _pick_products(rng: np.random.Generator, cat: Catalog, categories: np.ndarray) -> np.ndarray:
    within = np.searchsorted(cat.popularity_cdf, rng.random(len(categories)), side="right")
    return categories * PRODUCTS_PER_CATEGORY + np.minimum(within, PRODUCTS_PER_CATEGORY - 1)


# ============================================================================ daily simulation
@dataclass
class _Counters:
    """Global id counters carried across days (ids grow with time)."""

    event: int = 1
    session: int = 1
    order: int = 1


@dataclass
class _Sessions:
    user: np.ndarray
    is_signup: np.ndarray
    start_us: np.ndarray  # UTC epoch microseconds


def _day_sessions(rng: np.random.Generator, d: int, pop: Population, win: Window) -> _Sessions:
    """Who is active on business day d and when their sessions start."""
    new_users = np.flatnonzero(pop.signup_day == d)
    tenure = np.maximum(d - pop.signup_day, 0)
    weekend = bool(win.is_weekend(d))
    # New users are far more active in their first days (honeymoon), weekends a bit busier.
    p = pop.p_active * (1.12 if weekend else 1.0) * (1.0 + 0.8 * np.exp(-tenure / 4.0))
    forced = pop.react_day == d  # a reactivation is visible on its first day
    active = pop.alive_mask(d) & ((rng.random(pop.n) < np.minimum(p, 0.97)) | forced)
    returning = np.flatnonzero(active)
    per_user = 1 + rng.poisson(pop.sess_lambda[returning])
    ret_users = np.repeat(returning, per_user)
    ret_sec = _sample_local_seconds(rng, np.full(len(ret_users), weekend))
    users = np.concatenate([new_users, ret_users])
    local_us = np.concatenate([pop.signup_sec[new_users], ret_sec]) * SEC_US
    return _Sessions(
        user=users,
        is_signup=np.arange(len(users)) < len(new_users),
        start_us=win.local_to_utc_us(d, local_us),
    )


def _funnel_counts(
    rng: np.random.Generator, s: _Sessions, pop: Population, pay_factor: np.ndarray | float = 1.0
) -> np.ndarray:
    """(event type, session) -> how many events of that type the session has. `pay_factor`
    scales each session's chance to pay (an injected incident, see Incident)."""
    u, n = s.user, len(s.user)
    regular = ~s.is_signup
    counts = np.zeros((len(EVENT_NAMES), n), np.int64)
    counts[EV_PUSH_RECEIVE] = counts[EV_PUSH_CLICK] = regular & (rng.random(n) < 0.12)
    counts[EV_APP_OPEN] = regular
    counts[EV_LOGIN] = regular & (rng.random(n) < 0.08)
    counts[EV_SIGNUP] = s.is_signup
    counts[EV_INVITE] = s.is_signup & (pop.referrer[u] >= 0)
    counts[EV_PAGE_VIEW] = 1 + rng.poisson(1.8, n)
    counts[EV_SEARCH] = (rng.random(n) < 0.35) * (1 + rng.poisson(0.4, n))
    counts[EV_VIEW_ITEM] = rng.poisson(0.8 + 2.2 * pop.interest[u])
    counts[EV_COUPON] = rng.random(n) < pop.p_coupon[u]
    has_cart = (counts[EV_VIEW_ITEM] > 0) & (rng.random(n) < pop.p_cart[u])
    counts[EV_CART] = has_cart * (1 + rng.poisson(0.5, n))
    has_checkout = has_cart & (rng.random(n) < 0.62)
    counts[EV_CHECKOUT] = has_checkout
    # Coupon-dependent users mostly only pay when they grabbed a coupon in the session.
    coupon_mult = np.where(counts[EV_COUPON] > 0, 1.25, 0.45)
    pay_p = pop.p_pay[u] * np.where(pop.coupon_dep[u], coupon_mult, 1.0) * pay_factor
    counts[EV_PAY] = has_checkout & (rng.random(n) < np.minimum(pay_p, 0.98))
    counts[EV_SHARE] = rng.random(n) < 0.04
    return counts


def _expand_sessions(
    rng: np.random.Generator, s: _Sessions, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Explode session counts into (session index, event type, UTC us), ordered within session."""
    n_sessions = counts.shape[1]
    if counts.sum() == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    # Session-major repeat gives events grouped by session in stage order without a sort.
    ev_type = np.repeat(np.tile(np.arange(len(EVENT_NAMES)), n_sessions), counts.T.ravel())
    ev_sess = np.repeat(np.arange(n_sessions), counts.sum(axis=0))
    # Browse events of a session are contiguous: shuffle them within their session.
    browse = np.flatnonzero(EV_STAGE[ev_type] == EV_STAGE[EV_PAGE_VIEW])
    key = (ev_sess[browse] << 20) | rng.integers(0, 1 << 20, len(browse))
    ev_type[browse] = ev_type[browse][np.argsort(key)]
    first = np.r_[True, ev_sess[1:] != ev_sess[:-1]]
    gaps = (1_500 + rng.exponential(22_000, len(ev_type))).astype(np.int64) * 1000  # us
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], np.bincount(ev_sess, minlength=n_sessions))
    return ev_sess, ev_type, s.start_us[ev_sess] + elapsed


def _fit_into_window(
    ev_sess: np.ndarray, ev_us: np.ndarray, start_us: np.ndarray, win: Window
) -> np.ndarray:
    """Compress the sessions of the last day that would run past its midnight.

    A real export ends at the end of its last business day; without this, a late session's tail
    would make the latest data date one day later than the window with a handful of rows.
    Session starts (and so signup times) are kept; only the gaps inside the session shrink.
    """
    last_us = win.local_to_utc_us(win.days, np.zeros(1, np.int64))[0] - SEC_US
    if len(ev_us) == 0 or ev_us.max() <= last_us:
        return ev_us
    elapsed = ev_us - start_us[ev_sess]
    duration = np.zeros(len(start_us), np.int64)
    np.maximum.at(duration, ev_sess, elapsed)
    room = np.maximum(last_us - start_us, 0)
    overflowing = (start_us + duration > last_us)[ev_sess]
    scaled = elapsed * room[ev_sess] // np.maximum(duration[ev_sess], 1)
    return np.where(overflowing, start_us[ev_sess] + scaled, ev_us)


def _orders_for(
    rng: np.random.Generator, users: np.ndarray, pop: Population, cat: Catalog, weekend: bool
) -> dict[str, np.ndarray]:
    """Items, totals, coupons and status for one order per entry of `users` (in time order)."""
    n = len(users)
    n_items = np.minimum(1 + rng.binomial(4, np.clip(0.25 * pop.basket[users], 0, 1)), 5)
    item_order = np.repeat(np.arange(n), n_items)
    product = _pick_products(rng, cat, _pick_categories(rng, pop, users[item_order]))
    # (order_id, product_id) must be unique: keep the first draw of a repeated product.
    _, keep = np.unique(item_order * len(cat.price_cents) + product, return_index=True)
    item_order, product = item_order[keep], product[keep]  # now sorted by order, product
    quantity = np.minimum(1 + rng.poisson(0.25 + 0.35 * pop.basket[users[item_order]]), 12)
    price = cat.price_cents[product]
    subtotal = np.bincount(item_order, weights=quantity * price, minlength=n).astype(np.int64)

    # First orders often use the welcome coupon; coupon-dependent users almost always use one.
    first_order = pop.n_orders[users] == 0
    np.add.at(pop.n_orders, users, 1)
    use = rng.random(n) < np.where(pop.coupon_dep[users], 0.85, np.where(first_order, 0.5, 0.08))
    regular_coupons = np.array([1, 2, 3, 4]) if weekend else np.array([1, 3, 4])
    code = np.where(first_order, 0, regular_coupons[rng.integers(0, len(regular_coupons), n)])
    discount = np.where(use, np.minimum(COUPON_CENTS[code], subtotal // 2), 0)
    return {
        "item_order": item_order,
        "product": product,
        "quantity": quantity,
        "price": price,
        "discount": discount,
        "amount": subtotal - discount,
        "coupon": np.where(use, code, -1),
        "status": rng.choice(len(ORDER_STATUSES), n, p=ORDER_STATUS_P),
    }


def _json(*pieces: str | pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*pieces, "")


def _event_properties(
    rng: np.random.Generator,
    ev_type: np.ndarray,
    ev_user: np.ndarray,
    pop: Population,
    cat: Catalog,
    order_ids: pa.Array,
    amount_text: pa.Array,
) -> pa.Array:
    """JSON text per event type; types without properties stay null."""
    parts: list[tuple[np.ndarray, pa.Array]] = []
    item_rows = np.flatnonzero((ev_type == EV_VIEW_ITEM) | (ev_type == EV_CART))
    categories = _pick_categories(rng, pop, ev_user[item_rows])
    products = cat.product_ids.take(pa.array(_pick_products(rng, cat, categories)))
    parts.append(
        (
            item_rows,
            _json('{"category": "', _labels(CATEGORIES, categories), '", "product_id": "',
                  products, '"}'),
        )
    )  # fmt: skip
    search_rows = np.flatnonzero(ev_type == EV_SEARCH)
    term = _pick_categories(rng, pop, ev_user[search_rows]) * 3 + rng.integers(
        0, 3, len(search_rows)
    )
    flat_terms = tuple(t for terms in SEARCH_TERMS for t in terms)
    parts.append((search_rows, _json('{"query": "', _labels(flat_terms, term), '"}')))
    pay_rows = np.flatnonzero(ev_type == EV_PAY)
    method = _labels(PAY_METHODS, rng.choice(3, len(pay_rows), p=[0.62, 0.33, 0.05]))
    parts.append(
        (
            pay_rows,
            _json('{"order_id": "', order_ids, '", "amount": "', amount_text,
                  '", "payment_method": "', method, '"}'),
        )
    )  # fmt: skip

    def simple(ev: int, key: str, values: tuple[str, ...]) -> None:
        rows = np.flatnonzero(ev_type == ev)
        labels = _labels(values, rng.integers(0, len(values), len(rows)))
        parts.append((rows, _json(f'{{"{key}": "', labels, '"}')))

    simple(EV_COUPON, "coupon_code", COUPONS[1:])
    simple(EV_PUSH_RECEIVE, "campaign", PUSH_CAMPAIGNS)
    simple(EV_PUSH_CLICK, "campaign", PUSH_CAMPAIGNS)
    simple(EV_SHARE, "share_channel", SHARE_CHANNELS)
    simple(EV_LOGIN, "method", LOGIN_METHODS)
    signup_rows = np.flatnonzero(ev_type == EV_SIGNUP)
    channel = _labels(CHANNELS, pop.channel[ev_user[signup_rows]])
    parts.append((signup_rows, _json('{"channel": "', channel, '"}')))
    return _scatter(len(ev_type), parts)


def _simulate_day(
    d: int,
    pop: Population,
    cat: Catalog,
    win: Window,
    seed: int,
    ids: _Counters,
    incident: Incident | None = None,
) -> dict[str, tuple[pa.Table, np.ndarray]]:
    """All events, orders and items of business day d, each with its UTC partition index."""
    rng = np.random.default_rng([seed, _STREAM_DAY, d])
    sessions = _day_sessions(rng, d, pop, win)
    pay_factor = _incident_pay_factor(incident, d, sessions, pop, win)
    counts = _funnel_counts(rng, sessions, pop, pay_factor)
    ev_sess, ev_type, ev_us = _expand_sessions(rng, sessions, counts)
    if d == win.days - 1:
        ev_us = _fit_into_window(ev_sess, ev_us, sessions.start_us, win)
    ev_user = sessions.user[ev_sess]
    session_no = ids.session + ev_sess
    ids.session += len(sessions.user)

    # Pushes that were not clicked: sent to users active today (so they never make a churned
    # user look active), at the 10:00 or 19:30 local campaign slots.
    returning = np.unique(sessions.user[~sessions.is_signup])
    pushed = returning[rng.random(len(returning)) < 0.2]
    slot = np.where(rng.random(len(pushed)) < 0.5, 10 * 3600, 19 * 3600 + 1800)
    push_us = win.local_to_utc_us(d, (slot + rng.integers(0, 600, len(pushed))) * SEC_US)
    ev_user = np.concatenate([ev_user, pushed])
    ev_type = np.concatenate([ev_type, np.full(len(pushed), EV_PUSH_RECEIVE)])
    ev_us = np.concatenate([ev_us, push_us])
    session_no = np.concatenate([session_no, np.full(len(pushed), -1)])

    order = np.argsort(ev_us, kind="stable")  # ids increase with time
    ev_user, ev_type, ev_us, session_no = (
        ev_user[order],
        ev_type[order],
        ev_us[order],
        session_no[order],
    )
    n_ev = len(ev_type)

    pay_rows = np.flatnonzero(ev_type == EV_PAY)
    o = _orders_for(rng, ev_user[pay_rows], pop, cat, bool(win.is_weekend(d)))
    order_ids = _fixed_width_ids("o", ids.order + np.arange(len(pay_rows)), 10)
    ids.order += len(pay_rows)
    amount_text = _cents_text(o["amount"])

    # page_view pages are random browse pages; other types have a fixed page (or none).
    page_code = ev_type.copy()
    view_rows = np.flatnonzero(ev_type == EV_PAGE_VIEW)
    page_code[view_rows] = len(EV_PAGE) + rng.integers(0, len(BROWSE_PAGES), len(view_rows))
    page = _labels(EV_PAGE + BROWSE_PAGES, page_code)
    referrer = np.where(ev_type == EV_INVITE, pop.referrer[ev_user], -1)
    events = pa.table(
        {
            "event_id": _fixed_width_ids("e", ids.event + np.arange(n_ev), 11),
            "user_id": pop.ids.take(pa.array(ev_user)),
            "event_time": _timestamps(ev_us),
            "event_name": _labels(EVENT_NAMES, ev_type),
            # The web SDK sends no session id: web users' sessions come from the gap rule.
            "session_id": _session_ids(np.where(pop.platform[ev_user] == _WEB, -1, session_no)),
            "platform": _labels(PLATFORMS, pop.platform[ev_user]),
            "page": page,
            "referrer_user_id": pop.ids.take(pa.array(np.maximum(referrer, 0), mask=referrer < 0)),
            "properties": _event_properties(
                rng, ev_type, ev_user, pop, cat, order_ids, amount_text
            ),
        },
        schema=SCHEMAS["events"],
    )
    ids.event += n_ev

    pay_us = ev_us[pay_rows]
    orders = pa.table(
        {
            "order_id": order_ids,
            "user_id": pop.ids.take(pa.array(ev_user[pay_rows])),
            "ordered_at": _timestamps(pay_us),
            "status": _labels(ORDER_STATUSES, o["status"]),
            "amount": amount_text,
            "discount": _decimal(o["discount"], SCHEMAS["orders"].field("discount").type),
            "coupon_code": _labels(COUPONS, np.maximum(o["coupon"], 0), mask=o["coupon"] < 0),
            "currency": pa.array(np.full(len(pay_rows), "CNY"), pa.string()),
        },
        schema=SCHEMAS["orders"],
    )
    item_order = o["item_order"]
    items = pa.table(
        {
            "order_id": order_ids.take(pa.array(item_order)),
            "product_id": cat.product_ids.take(pa.array(o["product"])),
            "category": _labels(CATEGORIES, o["product"] // PRODUCTS_PER_CATEGORY),
            "quantity": pa.array(o["quantity"], pa.int32()),
            "unit_price": _decimal(o["price"], SCHEMAS["order_items"].field("unit_price").type),
            "_ordered_at": _timestamps(pay_us[item_order]),
        }
    )
    return {
        "events": (events, win.utc_day(ev_us)),
        "orders": (orders, win.utc_day(pay_us)),
        "order_items": (items, win.utc_day(pay_us[item_order])),
    }


def _session_ids(session_no: np.ndarray) -> pa.Array:
    """Session ids ``s0000000001``; -1 (events outside a session) -> null."""
    ids = _fixed_width_ids("s", np.maximum(session_no, 0), 10)
    return pc.if_else(pa.array(session_no < 0), pa.scalar(None, pa.string()), ids)


def _marketing_spend(
    seed: int, cells: np.ndarray, pop: Population, win: Window
) -> tuple[pa.Table, np.ndarray]:
    """Daily spend per paid channel ~ that day's acquisitions x CAC, with noise."""
    rng = np.random.default_rng([seed, _STREAM_SPEND])
    referral = CHANNELS.index("referral")
    invited_per_day = np.bincount(
        pop.signup_day[(pop.referrer >= 0) & (pop.channel == referral)], minlength=win.days
    )
    rows_day, rows_channel, rows_cents = [], [], []
    base_scale = len(pop.channel) / SPEND_BASE_USERS
    for name, cac in SPEND_CAC_CNY.items():
        c = CHANNELS.index(name)
        acquired = invited_per_day if c == referral else cells[:, c]
        noise = 1.0 if c == referral else rng.lognormal(0.0, 0.15, win.days)
        cny = (acquired * cac + SPEND_BASE_CNY[name] * base_scale) * noise
        rows_day.append(np.arange(win.days))
        rows_channel.append(np.full(win.days, c))
        rows_cents.append(np.round(cny * 100).astype(np.int64))
    day = np.concatenate(rows_day)
    start_days = (win.start - EPOCH).days
    return pa.table(
        {
            "spend_date": pa.array((start_days + day).astype(np.int32)).cast(pa.date32()),
            "channel": _labels(CHANNELS, np.concatenate(rows_channel)),
            "spend": _decimal(
                np.concatenate(rows_cents), SCHEMAS["marketing_spend"].field("spend").type
            ),
        }
    ), day


# ============================================================================ defects
# Rotation of defect types per table (repeats = weight). Only types that the table's columns can
# express: native-typed columns cannot be unparseable, and only orders.status has a closed set.
DEFECT_CYCLE: dict[str, tuple[str, ...]] = {
    "users": ("duplicate", "missing_key", "bad_timestamp", "duplicate", "missing_value"),
    "events": (
        "duplicate", "missing_key", "unparseable_value", "duplicate", "bad_timestamp",
        "missing_value", "duplicate", "unparseable_value", "missing_key",
    ),
    "orders": (
        "duplicate", "unparseable_value", "negative_amount", "missing_key", "invalid_value",
        "duplicate", "bad_timestamp", "missing_value", "unparseable_value",
    ),
    "order_items": ("duplicate", "negative_amount", "missing_key", "missing_value", "duplicate"),
    "marketing_spend": (
        "duplicate", "negative_amount", "missing_key", "missing_value", "bad_timestamp",
    ),
}  # fmt: skip
UNKNOWN_EVENT_SHARE = 0.2  # unknown-name events per bad row (of bad_row_share)
LATE_DUPLICATE_SHARE = 0.35  # duplicates that change content and land in the next file

_BAD_JSON = (
    '{"category": "dairy"',
    "{category: fresh_fruit}",
    "not json",
    '{"coupon_code": "FRESH10"',
    "{'query': 'milk'}",
)
_BAD_AMOUNTS = ("N/A", "12,50", "¥88", "abc", "1.2.3")
_BAD_STATUSES = ("PAID?", "pending_review", "unknown")
_PK = {
    "users": "user_id",
    "events": "event_id",
    "orders": "order_id",
    "order_items": "product_id",  # the part of (order_id, product_id) we can make fresh
    "marketing_spend": None,
}


def _pick(rng: np.random.Generator, options: tuple, k: int) -> list:
    return [options[i] for i in rng.integers(0, len(options), k)]


def _bad_times_us(rng: np.random.Generator, k: int) -> np.ndarray:
    """Timestamps in 1970-1989 (before the default min_valid_timestamp, 1990-01-01) or in 2099:
    bad whatever the build date is."""
    # Drawn as 1970-1999 and folded onto 1970-1989, so every other value of a data set stays
    # what the same seed gave before the floor moved from 2000 to 1990.
    is_old = rng.random(k) < 0.6
    drawn = rng.integers(1970, 2000, k)
    years = np.where(is_old, 1970 + (drawn - 1970) % 20, 2099)
    days = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    days += rng.integers(0, 365, k)
    return days * DAY_US + rng.integers(0, 86_400, k) * SEC_US


def _blank_or_null(rng: np.random.Generator, k: int) -> pa.Array:
    return pa.array(_pick(rng, (None, None, "", "   "), k), pa.string())


def _null_one_of(table: pa.Table, rng: np.random.Generator, columns: tuple[str, ...]) -> pa.Table:
    """Null exactly one of `columns` per row."""
    which = rng.integers(0, len(columns), table.num_rows)
    for i, col in enumerate(columns):
        hit = pa.array(which == i)
        typ = table.schema.field(col).type
        table = _with(table, col, pc.if_else(hit, pa.scalar(None, typ), table[col]))
    return table


def _corrupt(
    table_name: str,
    kind: str,
    src: pa.Table,
    rng: np.random.Generator,
    fresh: Callable[[int], pa.Array],
) -> pa.Table:
    """Turn clean rows into rows that trigger exactly `kind` (fresh keys avoid accidental dups)."""
    k = src.num_rows
    pk = _PK[table_name]
    if kind not in ("duplicate", "missing_key") and pk is not None:
        src = _with(src, pk, fresh(k))
    if kind == "missing_key":
        return _missing_key(table_name, src, rng, fresh)
    if kind == "missing_value":
        required = {
            "users": ("signup_at",),
            "events": ("event_time", "event_name"),
            "orders": ("ordered_at", "status", "amount"),
            "order_items": ("category", "quantity", "unit_price"),
            "marketing_spend": ("spend",),
        }[table_name]
        return _null_one_of(src, rng, required)
    if kind == "unparseable_value":
        if table_name == "events":
            return _with(src, "properties", pa.array(_pick(rng, _BAD_JSON, k), pa.string()))
        return _with(src, "amount", pa.array(_pick(rng, _BAD_AMOUNTS, k), pa.string()))
    if kind == "invalid_value":
        return _with(src, "status", pa.array(_pick(rng, _BAD_STATUSES, k), pa.string()))
    if kind == "bad_timestamp":
        col = {"users": "signup_at", "events": "event_time", "orders": "ordered_at"}.get(table_name)
        if col is None:  # marketing_spend: a date
            days = (_bad_times_us(rng, k) // DAY_US).astype(np.int32)
            return _with(src, "spend_date", pa.array(days).cast(pa.date32()))
        return _with(src, col, _timestamps(_bad_times_us(rng, k)))
    if kind == "negative_amount":
        return _negative(table_name, src, rng)
    raise ValueError(f"{table_name} cannot carry {kind}")


def _missing_key(
    table_name: str, src: pa.Table, rng: np.random.Generator, fresh: Callable[[int], pa.Array]
) -> pa.Table:
    k = src.num_rows
    if table_name == "marketing_spend":
        return _with(src, "channel", _blank_or_null(rng, k))
    if table_name == "users":
        return _with(src, "user_id", _blank_or_null(rng, k))
    # Tables with a primary and a foreign key: blank one of them, keep the other fresh.
    pk = _PK[table_name]
    fk = {"events": "user_id", "orders": "user_id", "order_items": "order_id"}[table_name]
    src = _with(src, pk, fresh(k))
    blank_pk = pa.array(rng.random(k) < 0.4)
    blanks = _blank_or_null(rng, k)
    src = _with(src, pk, pc.if_else(blank_pk, blanks, src[pk]))
    return _with(src, fk, pc.if_else(blank_pk, src[fk], blanks))


def _negative(table_name: str, src: pa.Table, rng: np.random.Generator) -> pa.Table:
    k = src.num_rows
    cents = rng.integers(100, 20_000, k)
    if table_name == "orders":
        neg_amount = rng.random(k) < 0.6
        amount = pc.binary_join_element_wise("-", _cents_text(cents), "")
        src = _with(src, "amount", pc.if_else(pa.array(neg_amount), amount, src["amount"]))
        neg_disc = _decimal(-np.minimum(cents, 3_000), src.schema.field("discount").type)
        return _with(src, "discount", pc.if_else(pa.array(neg_amount), src["discount"], neg_disc))
    if table_name == "order_items":
        bad_qty = rng.random(k) < 0.6
        qty = pa.array(-rng.integers(0, 3, k), pa.int32())  # 0, -1 or -2
        price = _decimal(-cents, src.schema.field("unit_price").type)
        src = _with(src, "quantity", pc.if_else(pa.array(bad_qty), qty, src["quantity"]))
        return _with(src, "unit_price", pc.if_else(pa.array(bad_qty), src["unit_price"], price))
    if table_name == "marketing_spend":
        return _with(src, "spend", _decimal(-cents * 10, src.schema.field("spend").type))
    raise ValueError(f"{table_name} has no amounts")


def _changed_copy(table_name: str, src: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Same key, different (still valid) content: a late correction of a clean row."""
    k = src.num_rows
    if table_name == "users":  # the user "switched device": ios -> android, anything else -> ios
        return _with(
            src, "platform", pc.if_else(pc.equal(src["platform"], "ios"), "android", "ios")
        )
    if table_name == "events":
        delay = pa.array(rng.integers(1, 600, k) * SEC_US, pa.duration("us"))
        return _with(src, "event_time", pc.add(src["event_time"], delay))
    if table_name == "orders":
        status = pc.if_else(pc.equal(src["status"], "refunded"), "cancelled", "refunded")
        return _with(src, "status", status)
    if table_name == "order_items":
        return _with(src, "quantity", pc.add(src["quantity"], pa.scalar(1, pa.int32())))
    cents = np.asarray(pc.cast(src["spend"], pa.float64())) * 107  # spend x 1.07, in cents
    return _with(
        src, "spend", _decimal(np.round(cents).astype(np.int64), src.schema.field("spend").type)
    )


# ============================================================================ writing
# Unique ids gain nothing from dictionary encoding; skipping it makes writing faster.
_NO_DICTIONARY = {"event_id", "session_id", "email", "phone"}


class _BackgroundWriter:
    """Writes Parquet files on one worker thread (Arrow releases the GIL while encoding), so
    encoding day d overlaps simulating day d+1 on the second core. At most `max_pending` tables
    wait, which bounds memory. File bytes do not depend on timing."""

    def __init__(self, max_pending: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: deque[Future[None]] = deque()
        self._max_pending = max_pending

    def write(self, table: pa.Table, path: Path) -> None:
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        dictionary = [c for c in table.column_names if c not in _NO_DICTIONARY]
        self._pending.append(
            self._pool.submit(
                pq.write_table,
                table,
                path,
                compression="zstd",
                compression_level=1,
                use_dictionary=dictionary,
            )
        )

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()  # re-raises a failed write
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _is_sorted(column: pa.ChunkedArray) -> bool:
    values = column.to_numpy()
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())


def _interleave(
    clean: pa.Table | None, extras: list[pa.Table], rng: np.random.Generator
) -> pa.Table:
    """Spread the extra (bad) rows over a few random spots of the file instead of the end.

    Zero-copy slices: a full-table shuffle would cost as much as generating the rows.
    """
    extra = pa.concat_tables(extras) if extras else None
    if clean is None or extra is None or extra.num_rows == 0:
        return pa.concat_tables([t for t in (clean, extra) if t is not None])
    extra = extra.take(pa.array(rng.permutation(extra.num_rows)))
    n_spots = min(16, extra.num_rows)
    cuts = np.sort(rng.integers(0, clean.num_rows + 1, n_spots))
    split = np.sort(rng.permutation(np.arange(1, extra.num_rows))[: n_spots - 1])
    pieces, prev = [], 0
    for spot, lo, hi in zip(cuts, np.r_[0, split], np.r_[split, extra.num_rows], strict=True):
        pieces += [clean.slice(prev, spot - prev), extra.slice(lo, hi - lo)]
        prev = spot
    pieces.append(clean.slice(prev))
    return pa.concat_tables(pieces)


@dataclass
class _Sink:
    """Buffers one table's rows per UTC partition, injects defects and writes each file once."""

    name: str
    writer: _BackgroundWriter
    root: Path
    win: Window
    seed: int
    share: float
    pending: dict[int, list[pa.Table]] = field(default_factory=dict)
    late: pa.Table | None = None
    cursor: int = 0
    fresh_no: int = 0
    next_part: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    rows: int = 0

    def add(self, table: pa.Table, part: np.ndarray) -> None:
        if table.num_rows == 0:
            return
        if part.min() < 0 or part.max() >= self.win.days:
            raise AssertionError(f"{self.name}: rows outside the window")
        if (np.diff(part) < 0).any():  # time-sorted input is already grouped: slice, don't copy
            order = np.argsort(part, kind="stable")
            part = part[order]
            table = table.take(pa.array(order))
        bounds = np.flatnonzero(np.r_[True, part[1:] != part[:-1], True])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            self.pending.setdefault(int(part[lo]), []).append(table.slice(lo, hi - lo))

    def flush_through(self, last_part: int) -> None:
        """Write every not-yet-written partition <= last_part (in order: late dups carry over)."""
        for p in range(self.next_part, last_part + 1):
            self._write(p)
        self.next_part = max(self.next_part, last_part + 1)

    def _fresh(self, p: int, k: int) -> pa.Array:
        prefix = {"users": "u", "events": "e", "orders": "o", "order_items": "p"}[self.name]
        ids = _fixed_width_ids(f"{prefix}x{p:05d}", self.fresh_no + np.arange(k), 7)
        self.fresh_no += k
        return ids

    def _write(self, p: int) -> None:
        parts = self.pending.pop(p, [])
        clean = pa.concat_tables(parts) if parts else None
        if clean is not None and not _is_sorted(clean[_SORT_KEY[self.name]]):
            sort_idx = pc.sort_indices(clean, sort_keys=[(_SORT_KEY[self.name], "ascending")])
            clean = clean.take(sort_idx)
        rng = np.random.default_rng([self.seed, _STREAM_DEFECTS, TABLES.index(self.name), p])
        extras, new_late = self._defects(clean, rng, p)
        if self.late is not None:
            extras.append(self.late)
        self.late = new_late
        tables = ([clean] if clean is not None else []) + extras
        if not tables:
            return
        out = _interleave(clean, extras, rng)
        out = out.select(SCHEMAS[self.name].names).cast(SCHEMAS[self.name])
        folder = self.root / self.name / f"dt={self.win.date(p).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        self.writer.write(out, folder / "part-0.parquet")
        self.rows += out.num_rows

    def _defects(
        self, clean: pa.Table | None, rng: np.random.Generator, p: int
    ) -> tuple[list[pa.Table], pa.Table | None]:
        if clean is None or self.share <= 0:
            return [], None
        n = clean.num_rows
        cycle = DEFECT_CYCLE[self.name]
        n_bad = int(rng.binomial(n, min(self.share, 1.0)))
        kinds = np.array(
            [cycle[(self.cursor + i) % len(cycle)] for i in range(n_bad)], dtype=object
        )
        self.cursor += n_bad
        extras: list[pa.Table] = []
        late: pa.Table | None = None
        for kind in REASONS:
            k = int((kinds == kind).sum())
            if k == 0:
                continue
            src = clean.take(pa.array(rng.integers(0, n, k)))
            self.defects[kind] = self.defects.get(kind, 0) + k
            if kind != "duplicate":
                extras.append(_corrupt(self.name, kind, src, rng, lambda m: self._fresh(p, m)))
                continue
            is_late = rng.random(k) < LATE_DUPLICATE_SHARE
            if p == self.win.days - 1:
                is_late[:] = False  # no later file to put them in
            extras.append(src.filter(pa.array(~is_late)))
            if is_late.any():
                late = _changed_copy(self.name, src.filter(pa.array(is_late)), rng)
        if self.name == "events":
            k = int(rng.binomial(n, min(self.share * UNKNOWN_EVENT_SHARE, 1.0)))
            if k:
                src = clean.take(pa.array(rng.integers(0, n, k)))
                src = _with(src, "event_id", self._fresh(p, k))
                src = _with(src, "event_name", pa.array(_pick(rng, UNKNOWN_EVENT_NAMES, k)))
                src = _with(src, "properties", pa.nulls(k, pa.string()))
                extras.append(src)
                self.defects["unknown_event_name"] = self.defects.get("unknown_event_name", 0) + k
        return extras, late


def _write_tables(
    landing_dir: Path,
    win: Window,
    seed: int,
    users: int,
    bad_row_share: float,
    writer: _BackgroundWriter,
    incident: Incident | None = None,
) -> tuple[dict[str, _Sink], Population]:
    """Simulate and write every landing table; returns the sinks (counts) and the population."""
    sinks = {name: _Sink(name, writer, landing_dir, win, seed, bad_row_share) for name in TABLES}
    last = win.days - 1
    pop, cells = _draw_population(seed, users, win)
    cat = _draw_catalog(seed)
    users_table, users_part = _users_table(seed, pop, win)
    sinks["users"].add(users_table, users_part)
    sinks["users"].flush_through(last)
    spend, spend_part = _marketing_spend(seed, cells, pop, win)
    sinks["marketing_spend"].add(spend, spend_part)
    sinks["marketing_spend"].flush_through(last)

    counters = _Counters()
    for d in range(win.days):
        day_tables = _simulate_day(d, pop, cat, win, seed, counters, incident)
        for name, (table, part) in day_tables.items():
            sinks[name].add(table, part)
            # Business day d reaches into UTC day d at most, so UTC days < d are complete.
            sinks[name].flush_through(d - 1)
    for name in ("events", "orders", "order_items"):
        sinks[name].flush_through(last)
    return sinks, pop


# ============================================================================ incidents
@dataclass(frozen=True)
class Incident:
    """A known incident to inject (for alert tests and demos): on business day `day`, the
    chance that a session of a user acquired through `channel` ends in a payment is multiplied
    by `pay_factor` (0.5 = that channel's conversion halves). Nothing else changes: the random
    draws are the same, so every other day's behaviour is identical to the data without it."""

    channel: str
    day: date
    pay_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"incident channel must be one of {', '.join(CHANNELS)}")
        if not 0.0 <= self.pay_factor <= 1.0:
            raise ValueError("incident pay_factor must be in [0, 1]")

    @classmethod
    def parse(cls, text: str, end_date: date) -> Incident:
        """CHANNEL:DAY[:FACTOR]; DAY is YYYY-MM-DD, `last` (end_date) or -N (N days before
        end_date). E.g. paid_search:2026-11-20:0.5, organic:last:0.3."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"incident {text!r}: expected CHANNEL:DAY[:FACTOR]")
        try:
            factor = float(parts[2]) if len(parts) == 3 else 0.5
            if parts[1] == "last":
                day = end_date
            elif parts[1].startswith("-"):
                day = end_date - timedelta(days=int(parts[1][1:]))
            else:
                day = date.fromisoformat(parts[1])
        except ValueError:
            raise ValueError(
                f"incident {text!r}: DAY must be YYYY-MM-DD, last or -N and FACTOR a number"
            ) from None
        return cls(parts[0], day, factor)

    def as_dict(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "day": self.day.isoformat(),
            "pay_factor": self.pay_factor,
            "metric": "paying_rate",
            "dimension": "acquisition_channel",
        }


def _incident_pay_factor(
    incident: Incident | None, d: int, sessions: _Sessions, pop: Population, win: Window
) -> np.ndarray | float:
    if incident is None or win.start + timedelta(days=d) != incident.day:
        return 1.0
    hit = pop.channel[sessions.user] == CHANNELS.index(incident.channel)
    return np.where(hit, incident.pay_factor, 1.0)


# ============================================================================ entry point
def generate(
    landing_dir: Path,
    *,
    users: int = 10_000,
    days: int = 120,
    end_date: date,
    seed: int = 42,
    bad_row_share: float = 0.01,
    ground_truth_dir: Path | None = None,
    incident: Incident | None = None,
) -> dict[str, int]:
    """Write the five landing tables under landing_dir (<table>/dt=YYYY-MM-DD/part-0.parquet) for
    `days` days ending on end_date (inclusive), then the five operations-loop tables
    (userops/generate_ops.py). Returns rows written per table (bad rows included).
    `incident` injects a known drop in one channel's conversion on one day (ground truth in
    incident.json).
    """
    if users < 1 or days < 1:
        raise ValueError("users and days must be positive")
    if not 0.0 <= bad_row_share < 1.0:
        raise ValueError("bad_row_share must be in [0, 1)")
    if isinstance(end_date, datetime):  # a datetime is a date too; keep only the day
        end_date = end_date.date()
    landing_dir = Path(landing_dir)
    truth_dir = Path(ground_truth_dir) if ground_truth_dir else landing_dir.parent / "ground_truth"
    win = Window(start=end_date - timedelta(days=days - 1), days=days)

    from userops.generate_ops import OPS_TABLES, write_ops_tables

    for name in (*TABLES, *OPS_TABLES):  # never mix two data sets in one folder
        shutil.rmtree(landing_dir / name, ignore_errors=True)
    writer = _BackgroundWriter()
    try:
        sinks, pop = _write_tables(landing_dir, win, seed, users, bad_row_share, writer, incident)
    finally:
        writer.close()

    truth_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        _truth_table(pop, win), truth_dir / "user_churn_truth.parquet", compression="zstd"
    )
    defects = {name: {r: sinks[name].defects.get(r, 0) for r in REASONS} for name in TABLES}
    defects["events"]["unknown_event_name"] = sinks["events"].defects.get("unknown_event_name", 0)
    (truth_dir / "injected_defects.json").write_text(json.dumps(defects, indent=2) + "\n")
    incident_file = truth_dir / "incident.json"
    if incident is None:
        incident_file.unlink(missing_ok=True)
    else:
        incident_file.write_text(json.dumps(incident.as_dict(), indent=2) + "\n")
    # The operations-loop tables (userops/generate_ops.py): own RNG streams, written last.
    ops_rows = write_ops_tables(landing_dir, pop, win, seed)
    return {**{name: sinks[name].rows for name in TABLES}, **ops_rows}
