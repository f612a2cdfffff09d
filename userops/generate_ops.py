"""The operations-loop landing tables of the sample data (docs/operations_loop.md).

Written by ``userops.generate.generate`` after the five core tables, from the same hidden
population, into the same layout (``<table>/dt=YYYY-MM-DD/part-0.parquet``, partitioned by the
UTC day of the row's main timestamp):

- ``contact_preferences``: ~4 % of users opt out of push and ~2 % of SMS some days after
  signup; a fifth of them opt back in later.
- ``deliveries`` (receipts): three campaigns.
  * ``onboarding`` for the audience ``new_users`` (seeds/audiences.csv): a push on each of a new
    user's first seven days after signup, to the audience's *treatment* group only. The holdout
    is the audience's own hash rule (first 8 hex digits of md5(audience_id|user_id) / 16^8 below
    the holdout share, models/marts/audiences/audience_members.sql), so the generator never
    messages a user the warehouse holds out. Message ids are the ones `userops deliver` sends
    (userops.delivery.message_id), so these receipts look like receipts of its own sends.
  * ``daily_deals``: a push to ~8 % of the users alive each day.
  * ``win_back``: an SMS to ~60 % of users two weeks after their (hidden) churn day.
  Delivered ~93 % (push) / 97 % (SMS); a push is opened with a probability that falls with the
  user's churn propensity, and a click follows 40 % of opens. SMS opens are not tracked (null).
  Opted-out users receive no push (or SMS) after their opt-out.
- ``experiment_exposures``: the two experiments of seeds/experiments.csv, each exposing ~80 %
  of the users alive during its last 21 / 28 days, once, at a random alive day, 50/50. The
  variants change no behaviour (A/A): their true effect is zero.
- ``feedback``: each user answers an NPS survey with probability ~30 % on a random alive day;
  the score falls with the churn propensity (detractors churn more), plus a CSAT answer after
  half of the resolved service tickets (lower for complaints and slow resolutions).
- ``service_tickets``: Poisson tickets over a user's life, more for churn-prone users, who
  also complain more; first reply after ~2 h, resolution after ~20 h (lognormal), none yet
  when that lies after the end of the data.

Every draw comes from its own RNG stream (``[seed, 10 + i, ...]``), so the core tables are
byte-identical with or without these; nothing reads the clock.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from userops.delivery_ids import message_ids

if TYPE_CHECKING:
    from userops.generate import Population, Window

OPS_TABLES = (
    "contact_preferences",
    "deliveries",
    "experiment_exposures",
    "feedback",
    "service_tickets",
)
_STREAM_PREFERENCES, _STREAM_DELIVERIES, _STREAM_EXPOSURES, _STREAM_SERVICE = 10, 11, 12, 13

SEC_US = 1_000_000
DAY_US = 86_400 * SEC_US
HOUR_US = 3600 * SEC_US

ONBOARDING_AUDIENCE = "new_users"
ONBOARDING_HOLDOUT_SHARE = 0.1  # seeds/audiences.csv, new_users
ONBOARDING_DAYS = 7
EXPERIMENTS = (
    ("checkout_one_tap", ("control", "one_tap"), 28),
    ("home_feed_ranking", ("control", "personalised"), 21),
)
TICKET_CATEGORIES = ("complaint", "delivery", "refund", "product_question", "account")
TICKET_CHANNELS = ("phone", "chat", "email")
SURVEY_CHANNELS = ("app", "sms", "email")
COMMENTS = {
    "promoter": ("fresh and fast", "great deals", "love the app"),
    "passive": ("ok", "delivery could be faster", "prices are fine"),
    "detractor": ("late delivery", "fruit was bad", "refund took too long", "too many pushes"),
}

SCHEMAS: dict[str, pa.Schema] = {
    "contact_preferences": pa.schema(
        [
            ("user_id", pa.string()),
            ("channel", pa.string()),
            ("contact_status", pa.string()),
            ("updated_at", pa.timestamp("us")),
        ]
    ),
    "deliveries": pa.schema(
        [
            ("message_id", pa.string()),
            ("user_id", pa.string()),
            ("channel", pa.string()),
            ("sent_at", pa.timestamp("us")),
            ("audience_id", pa.string()),
            ("campaign_id", pa.string()),
            ("delivered_at", pa.timestamp("us")),
            ("opened_at", pa.timestamp("us")),
            ("clicked_at", pa.timestamp("us")),
            ("failure_reason", pa.string()),
        ]
    ),
    "experiment_exposures": pa.schema(
        [
            ("experiment_id", pa.string()),
            ("user_id", pa.string()),
            ("variant", pa.string()),
            ("exposed_at", pa.timestamp("us")),
        ]
    ),
    "feedback": pa.schema(
        [
            ("feedback_id", pa.string()),
            ("user_id", pa.string()),
            ("submitted_at", pa.timestamp("us")),
            ("survey_type", pa.string()),
            ("score", pa.int32()),
            ("comment", pa.string()),
            ("survey_channel", pa.string()),
        ]
    ),
    "service_tickets": pa.schema(
        [
            ("ticket_id", pa.string()),
            ("user_id", pa.string()),
            ("opened_at", pa.timestamp("us")),
            ("category", pa.string()),
            ("channel", pa.string()),
            ("first_replied_at", pa.timestamp("us")),
            ("resolved_at", pa.timestamp("us")),
        ]
    ),
}
_PARTITION_COLUMN = {
    "contact_preferences": "updated_at",
    "deliveries": "sent_at",
    "experiment_exposures": "exposed_at",
    "feedback": "submitted_at",
    "service_tickets": "opened_at",
}


def holdout_bucket(audience_id: str, user_id: str) -> float:
    """audience_members' bucket: first 8 hex digits of md5(audience_id|user_id) / 16^8."""
    digest = hashlib.md5(f"{audience_id}|{user_id}".encode()).hexdigest()  # noqa: S324
    return int(digest[:8], 16) / 16**8


def _ids(prefix: str, n: int, width: int = 9) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], pa.string())


def _ts(us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(us, np.int64), pa.int64(), mask=mask).cast(pa.timestamp("us"))


def _labels(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(np.asarray(codes, np.int64)))


def _alive_until(pop: Population, win: Window) -> np.ndarray:
    """Exclusive last alive day of each user's first life, capped at the window."""
    return np.minimum(pop.churn_day, win.days)


def _random_day(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A uniform day in [lo, hi) per row (hi > lo)."""
    return lo + np.floor(rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def _local_time_us(rng: np.random.Generator, n: int, first_hour: int, last_hour: int) -> np.ndarray:
    return (rng.integers(first_hour * 3600, last_hour * 3600, n)) * SEC_US


def _end_us(win: Window) -> int:
    """The last microsecond of the data (end of the last business day, in UTC)."""
    return int(win.local_to_utc_us(win.days, np.zeros(1, np.int64))[0]) - SEC_US


def _contact_preferences(seed: int, pop: Population, win: Window) -> tuple[pa.Table, dict]:
    rng = np.random.default_rng([seed, _STREAM_PREFERENCES])
    rows: list[tuple[np.ndarray, str, str, np.ndarray]] = []
    opt_out_day: dict[str, np.ndarray] = {}
    for channel, share in (("push", 0.04), ("sms", 0.02)):
        out_day = np.full(pop.n, np.iinfo(np.int64).max)
        chosen = np.flatnonzero(rng.random(pop.n) < share * (0.6 + pop.propensity))
        day = pop.signup_day[chosen] + 1 + rng.geometric(1 / 10, len(chosen))
        keep = day < win.days
        chosen, day = chosen[keep], day[keep]
        out_day[chosen] = day
        at = win.local_to_utc_us(day, _local_time_us(rng, len(day), 8, 23))
        rows.append((chosen, channel, "opted_out", at))
        back = rng.random(len(chosen)) < 0.2
        back_day = day[back] + 2 + rng.geometric(1 / 10, int(back.sum()))
        ok = back_day < win.days
        back_users = chosen[back][ok]
        out_day[back_users] = np.iinfo(np.int64).max  # back in: receives messages again
        at_back = win.local_to_utc_us(back_day[ok], _local_time_us(rng, int(ok.sum()), 8, 23))
        rows.append((back_users, channel, "opted_in", at_back))
        opt_out_day[channel] = out_day
    users = np.concatenate([r[0] for r in rows])
    table = pa.table(
        {
            "user_id": pop.ids.take(pa.array(users)),
            "channel": pa.array(np.concatenate([np.full(len(r[0]), r[1]) for r in rows])),
            "contact_status": pa.array(np.concatenate([np.full(len(r[0]), r[2]) for r in rows])),
            "updated_at": _ts(np.concatenate([r[3] for r in rows])),
        },
        schema=SCHEMAS["contact_preferences"],
    )
    return table, opt_out_day


def _receipts(
    rng: np.random.Generator,
    pop: Population,
    win: Window,
    users: np.ndarray,
    sent_us: np.ndarray,
    channel: str,
) -> dict[str, pa.Array]:
    """Delivered / opened / clicked times of messages sent to `users` at `sent_us`."""
    n = len(users)
    end = _end_us(win)
    delivered = rng.random(n) < (0.93 if channel == "push" else 0.97)
    delivered_us = sent_us + rng.integers(1, 90, n) * SEC_US
    if channel == "push":
        opened = delivered & (rng.random(n) < 0.15 + 0.35 * (1.0 - pop.propensity[users]))
        opened_us = delivered_us + (rng.exponential(2.0, n) * HOUR_US).astype(np.int64)
    else:  # SMS opens are not tracked
        opened = np.zeros(n, bool)
        opened_us = delivered_us
    opened &= opened_us <= end
    clicked = (
        (opened & (rng.random(n) < 0.4))
        if channel == "push"
        else (delivered & (rng.random(n) < 0.03))
    )
    clicked_us = np.where(opened, opened_us, delivered_us) + rng.integers(2, 300, n) * SEC_US
    clicked &= clicked_us <= end
    delivered &= delivered_us <= end
    failure = np.where(
        delivered, None, np.where(rng.random(n) < 0.6, "device_unreachable", "token_invalid")
    )
    return {
        "delivered_at": _ts(delivered_us, ~delivered),
        "opened_at": _ts(opened_us, ~(opened & delivered)),
        "clicked_at": _ts(clicked_us, ~(clicked & delivered)),
        "failure_reason": pa.array(failure.tolist(), pa.string()),
    }


def _deliveries(
    seed: int, pop: Population, win: Window, opt_out_day: dict[str, np.ndarray]
) -> pa.Table:
    rng = np.random.default_rng([seed, _STREAM_DELIVERIES])
    tables: list[pa.Table] = []
    start = np.datetime64(win.start, "D")

    def add(users: np.ndarray, day: np.ndarray, sent_local_us: np.ndarray, channel: str,
            campaign: str, audience: str | None, ids: pa.Array) -> None:  # fmt: skip
        if len(users) == 0:
            return
        sent_us = win.local_to_utc_us(day, sent_local_us)
        receipts = _receipts(rng, pop, win, users, sent_us, channel)
        tables.append(
            pa.table(
                {
                    "message_id": ids,
                    "user_id": pop.ids.take(pa.array(users)),
                    "channel": pa.array(np.full(len(users), channel)),
                    "sent_at": _ts(sent_us),
                    "audience_id": pa.array([audience] * len(users), pa.string()),
                    "campaign_id": pa.array(np.full(len(users), campaign)),
                    **receipts,
                },
                schema=SCHEMAS["deliveries"],
            )
        )

    # Onboarding for the new_users audience: treatment members only, days 1..7 after signup.
    treated = np.array(
        [holdout_bucket(ONBOARDING_AUDIENCE, uid) >= ONBOARDING_HOLDOUT_SHARE
         for uid in pop.ids.to_pylist()]
    )  # fmt: skip
    offsets = np.arange(1, ONBOARDING_DAYS + 1)
    users = np.repeat(np.flatnonzero(treated), len(offsets))
    day = pop.signup_day[users] + np.tile(offsets, int(treated.sum()))
    keep = (day < win.days) & (day < opt_out_day["push"][users])
    users, day = users[keep], day[keep]
    order = np.lexsort((users, day))
    users, day = users[order], day[order]
    dates = (start + day).astype(str)
    ids = message_ids(
        ONBOARDING_AUDIENCE, dates.tolist(), "push", pop.ids.take(pa.array(users)).to_pylist()
    )
    add(users, day, _local_time_us(rng, len(users), 10, 11), "push", "onboarding",
        ONBOARDING_AUDIENCE, pa.array(ids, pa.string()))  # fmt: skip

    # Daily deals: ~8 % of the users alive on each day.
    deal_users, deal_days = [], []
    for d in range(win.days):
        alive = np.flatnonzero(pop.alive_mask(d) & (d < opt_out_day["push"]))
        chosen = alive[rng.random(len(alive)) < 0.08]
        deal_users.append(chosen)
        deal_days.append(np.full(len(chosen), d))
    users, day = np.concatenate(deal_users), np.concatenate(deal_days)
    add(users, day, _local_time_us(rng, len(users), 19, 20), "push", "daily_deals", None,
        _ids("md", len(users), 10))  # fmt: skip

    # Win-back SMS two weeks after the hidden churn day.
    day = pop.churn_day + 14
    users = np.flatnonzero((day < win.days) & (rng.random(pop.n) < 0.6))
    users = users[day[users] < opt_out_day["sms"][users]]
    day = day[users]
    order = np.lexsort((users, day))
    add(users[order], day[order], _local_time_us(rng, len(users), 11, 12), "sms", "win_back",
        None, _ids("mw", len(users), 10))  # fmt: skip
    return pa.concat_tables(tables) if tables else SCHEMAS["deliveries"].empty_table()


def _experiment_exposures(seed: int, pop: Population, win: Window) -> pa.Table:
    rng = np.random.default_rng([seed, _STREAM_EXPOSURES])
    tables = []
    until = _alive_until(pop, win)
    for experiment, variants, length in EXPERIMENTS:
        first = max(0, win.days - length)
        lo = np.maximum(pop.signup_day, first)
        eligible = np.flatnonzero((until > lo) & (rng.random(pop.n) < 0.8))
        day = _random_day(rng, lo[eligible], until[eligible])
        exposed_us = win.local_to_utc_us(day, _local_time_us(rng, len(eligible), 8, 23))
        exposed_us = np.minimum(exposed_us, _end_us(win))
        variant = rng.integers(0, len(variants), len(eligible))
        tables.append(
            pa.table(
                {
                    "experiment_id": pa.array(np.full(len(eligible), experiment)),
                    "user_id": pop.ids.take(pa.array(eligible)),
                    "variant": _labels(variants, variant),
                    "exposed_at": _ts(exposed_us),
                },
                schema=SCHEMAS["experiment_exposures"],
            )
        )
    return pa.concat_tables(tables)


def nps_scores(rng: np.random.Generator, propensity: np.ndarray) -> np.ndarray:
    """NPS answers 0-10: mean 9.6 for the least churn-prone users, falling by 8 points across
    the propensity range, with noise; detractors (<= 6) are the churn-prone ones."""
    raw = 9.6 - 8.0 * propensity + rng.normal(0.0, 1.4, len(propensity))
    return np.clip(np.round(raw), 0, 10).astype(np.int32)


def _service(seed: int, pop: Population, win: Window) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng([seed, _STREAM_SERVICE])
    end = _end_us(win)
    until = _alive_until(pop, win)
    life = np.maximum(until - pop.signup_day, 0)

    # Tickets: rate per alive day rises with churn propensity; complaints too.
    counts = rng.poisson(life * 0.004 * (0.5 + 3.0 * pop.propensity))
    t_user = np.repeat(np.arange(pop.n), counts)
    t_day = _random_day(
        rng, pop.signup_day[t_user], np.maximum(until[t_user], pop.signup_day[t_user] + 1)
    )
    t_open = win.local_to_utc_us(t_day, _local_time_us(rng, len(t_user), 8, 23))
    order = np.argsort(t_open, kind="stable")
    t_user, t_open = t_user[order], t_open[order]
    p_complaint = 0.15 + 0.5 * pop.propensity[t_user]
    rest = rng.integers(1, len(TICKET_CATEGORIES), len(t_user))
    category = np.where(rng.random(len(t_user)) < p_complaint, 0, rest)
    reply_us = t_open + (rng.lognormal(np.log(2.0), 0.8, len(t_user)) * HOUR_US).astype(np.int64)
    resolve_us = reply_us + (rng.lognormal(np.log(18.0), 0.9, len(t_user)) * HOUR_US).astype(
        np.int64
    )
    replied, resolved = reply_us <= end, resolve_us <= end
    tickets = pa.table(
        {
            "ticket_id": _ids("t", len(t_user)),
            "user_id": pop.ids.take(pa.array(t_user)),
            "opened_at": _ts(t_open),
            "category": _labels(TICKET_CATEGORIES, category),
            "channel": _labels(TICKET_CHANNELS, rng.choice(3, len(t_user), p=[0.25, 0.6, 0.15])),
            "first_replied_at": _ts(reply_us, ~replied),
            "resolved_at": _ts(resolve_us, ~resolved),
        },
        schema=SCHEMAS["service_tickets"],
    )

    # NPS: one answer from ~30 % of users, on a random day of their life.
    answering = np.flatnonzero((life > 0) & (rng.random(pop.n) < 0.3))
    n_day = _random_day(rng, pop.signup_day[answering], until[answering])
    n_at = win.local_to_utc_us(n_day, _local_time_us(rng, len(answering), 9, 22))
    n_score = nps_scores(rng, pop.propensity[answering])
    # CSAT after half of the resolved tickets: lower for complaints and slow resolutions.
    after = np.flatnonzero(resolved & (rng.random(len(t_user)) < 0.5))
    c_at = np.minimum(resolve_us[after] + rng.integers(60, 7200, len(after)) * SEC_US, end)
    slow = (resolve_us[after] - t_open[after]) > 36 * HOUR_US
    c_raw = 4.6 - 1.2 * (category[after] == 0) - 0.7 * slow - 1.5 * pop.propensity[t_user[after]]
    c_score = np.clip(np.round(c_raw + rng.normal(0, 0.7, len(after))), 1, 5).astype(np.int32)

    kind = np.where(n_score >= 9, "promoter", np.where(n_score >= 7, "passive", "detractor"))
    comment = [
        COMMENTS[k][i % len(COMMENTS[k])] if draw < 0.4 else None
        for i, (k, draw) in enumerate(zip(kind, rng.random(len(kind)), strict=True))
    ]
    users = np.concatenate([answering, t_user[after]])
    at = np.concatenate([n_at, c_at])
    order = np.argsort(at, kind="stable")
    feedback = pa.table(
        {
            "feedback_id": _ids("f", len(users)),
            "user_id": pop.ids.take(pa.array(users[order])),
            "submitted_at": _ts(at[order]),
            "survey_type": pa.array(
                np.concatenate([np.full(len(answering), "nps"), np.full(len(after), "csat")])[order]
            ),
            "score": pa.array(np.concatenate([n_score, c_score])[order], pa.int32()),
            "comment": pa.array((comment + [None] * len(after)), pa.string()).take(pa.array(order)),
            "survey_channel": _labels(
                SURVEY_CHANNELS, rng.choice(3, len(users), p=[0.7, 0.2, 0.1])
            ),
        },
        schema=SCHEMAS["feedback"],
    )
    return tickets, feedback


def _write_partitioned(table: pa.Table, name: str, root: Path, win: Window) -> int:
    """One file per UTC day of the table's partition column, rows in time order."""
    column = _PARTITION_COLUMN[name]
    table = table.take(pc.sort_indices(table, sort_keys=[(column, "ascending")]))
    us = np.asarray(pc.cast(table[column], pa.int64()))
    part = (us - win.start_utc_us) // DAY_US
    if len(part) and (part.min() < 0 or part.max() >= win.days):
        raise AssertionError(f"{name}: rows outside the window")
    bounds = np.flatnonzero(np.r_[True, part[1:] != part[:-1], True]) if len(part) else []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        folder = root / name / f"dt={win.date(int(part[lo])).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.slice(lo, hi - lo).cast(SCHEMAS[name]),
            folder / "part-0.parquet",
            compression="zstd",
            compression_level=1,
        )
    return table.num_rows


def write_ops_tables(landing_dir: Path, pop: Population, win: Window, seed: int) -> dict[str, int]:
    """Write the five operations tables; returns rows written per table."""
    preferences, opt_out_day = _contact_preferences(seed, pop, win)
    tickets, feedback = _service(seed, pop, win)
    tables = {
        "contact_preferences": preferences,
        "deliveries": _deliveries(seed, pop, win, opt_out_day),
        "experiment_exposures": _experiment_exposures(seed, pop, win),
        "feedback": feedback,
        "service_tickets": tickets,
    }
    return {
        name: _write_partitioned(table, name, landing_dir, win) for name, table in tables.items()
    }
