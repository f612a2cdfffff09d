"""The operations-loop tables of the sample generator (userops/generate_ops.py), read straight
from the session sample's files and its hidden ground truth."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from scipy import stats

from userops.generate import generate
from userops.generate_ops import OPS_TABLES, holdout_bucket


def read(landing: Path, table: str) -> duckdb.DuckDBPyRelation:
    return duckdb.sql(f"select * from read_parquet('{landing}/{table}/*/*.parquet')")


def test_every_ops_table_is_written_per_day(sample_landing: Path) -> None:
    for table in OPS_TABLES:
        files = list((sample_landing / table).rglob("*.parquet"))
        assert files and all(f.parent.name.startswith("dt=2026-") for f in files), table


def test_onboarding_receipts_skip_the_audience_holdout(sample_landing: Path) -> None:
    rows = read(sample_landing, "deliveries").filter("audience_id = 'new_users'").fetchall()
    users = {row[1] for row in rows}
    assert len(users) > 50
    # The audience's own hash rule (audience_members): no holdout member is ever messaged.
    assert all(holdout_bucket("new_users", user) >= 0.1 for user in users)
    # Ids are the ones userops deliver sends: audience:date:channel:user.
    assert all(row[0] == f"new_users:{row[0].split(':')[1]}:push:{row[1]}" for row in rows)


def test_receipts_are_consistent(sample_landing: Path) -> None:
    bad = read(sample_landing, "deliveries").filter(
        "delivered_at < sent_at or opened_at < delivered_at or clicked_at < sent_at"
        " or (opened_at is not null and delivered_at is null)"
    )
    assert bad.fetchall() == []
    by_channel = dict(
        read(sample_landing, "deliveries")
        .aggregate("channel, avg(case when delivered_at is null then 0 else 1 end)")
        .fetchall()
    )
    assert 0.85 < by_channel["push"] < 1 and 0.9 < by_channel["sms"] <= 1


def test_nps_falls_with_the_hidden_churn_propensity(sample_landing: Path) -> None:
    truth = sample_landing.parent / "ground_truth" / "user_churn_truth.parquet"
    feedback = f"{sample_landing}/feedback/*/*.parquet"
    answers = duckdb.sql(
        f"select f.score, t.churn_propensity from read_parquet('{feedback}') f"
        f" join read_parquet('{truth}') t using (user_id) where f.survey_type = 'nps'"
    ).fetchall()
    scores, propensity = zip(*answers, strict=True)
    assert len(scores) > 80
    assert stats.spearmanr(scores, propensity).statistic < -0.4


def test_ops_tables_are_deterministic(tmp_path: Path) -> None:
    from datetime import date

    for run in ("a", "b"):
        generate(tmp_path / run, users=120, days=20, end_date=date(2026, 6, 30), seed=3)
    for table in OPS_TABLES:
        for file in sorted((tmp_path / "a" / table).rglob("*.parquet")):
            twin = tmp_path / "b" / file.relative_to(tmp_path / "a")
            assert file.read_bytes() == twin.read_bytes(), file
            assert pq.read_metadata(file).num_rows > 0


@pytest.mark.parametrize("users,days", [(1, 1), (30, 3)])
def test_tiny_data_sets_still_write(tmp_path: Path, users: int, days: int) -> None:
    from datetime import date

    counts = generate(tmp_path / "l", users=users, days=days, end_date=date(2026, 6, 30))
    assert set(OPS_TABLES) <= set(counts)
