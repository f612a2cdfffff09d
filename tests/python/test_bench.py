"""The benchmark's table: medians of the repeats and ratios of those medians."""

from __future__ import annotations

from userops.bench import median_step, summarise, users_for


def record(step: str, seconds: float, peak: float = 100.0, code: int = 0, **detail) -> dict:
    return {
        "scale": "1m",
        "step": step,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "returncode": code,
        "detail": detail,
    }


def test_median_step_takes_the_middle_repeat_and_fails_if_any_failed() -> None:
    step = median_step([record("full", 30.0), record("full", 10.0, 300.0), record("full", 20.0)])
    assert step == {"seconds": 20.0, "peak_rss_mb": 100.0, "returncode": 0, "repeats": 3}
    assert median_step([record("full", 1.0), record("full", 2.0, code=1)])["returncode"] == 1
    assert median_step([]) is None


def test_summarise_gives_ratios_of_medians() -> None:
    records = [
        record("generate", 4.0, rows={"events": 900, "orders": 100}),
        record("floor", 0.5),
        record("floor", 0.4),
        record("floor", 0.6),
        # Full 20, 40, 30 -> 30; day run 3, 9, 6 -> 6: 20 %, and 60x the floor's median 0.5.
        record("full", 20.0, dbt_threads=2),
        record("full", 40.0, dbt_threads=2),
        record("full", 30.0),
        record("incremental", 3.0),
        record("incremental", 9.0),
        record("incremental", 6.0),
        record("pandas", 10.0),
        record("dbt_startup", 7.0),
        record("dbt_startup", 5.0),
        record("dbt_startup", 9.0),
    ]
    row = summarise(records).splitlines()[2]
    assert row == (
        "| 1m | 900 | 1,000 | 3 | 2 | 0.5 (100) | 30.0 (100) | 60.0 | 6.0 (100) | 20.0 % | 7.0 |"
        " 10.0 (100) | 3.00 |"
    )


def test_users_for_scales_events_to_users() -> None:
    # 58,000 users over 120 days gave 9.84 M events (1.414 per user and day).
    assert users_for(10_000_000) == 58_934  # 10 M / (120 x 1.414) = 58,934.5
    assert users_for(10) == 100
