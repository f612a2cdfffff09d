"""The HTML report: every chart draws a mart's own values, a warehouse without marts gives a
page of explained empty panels, and the page needs no network."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import Build

from userops.report import (
    CHARTS,
    Marts,
    audience_chart,
    dau_waterfall_chart,
    default_report_path,
    funnel_chart,
    north_star_chart,
    quality_chart,
    write_report,
)


def test_report_path_follows_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "data" / "warehouse" / "userops.duckdb"
    assert default_report_path(warehouse) == tmp_path / "data" / "reports" / "userops_report.html"


def test_a_missing_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="build it first"):
        write_report(tmp_path / "nowhere.duckdb")


def test_a_warehouse_without_marts_gives_explained_empty_panels(tmp_path: Path) -> None:
    warehouse = tmp_path / "empty.duckdb"
    duckdb.connect(str(warehouse)).close()
    report = write_report(warehouse, tmp_path / "report.html")
    assert report.rendered == []
    assert len(report.empty) == len(CHARTS)
    assert all(reason.startswith("not built: ") for reason in report.empty.values())
    page = report.path.read_text()
    assert page.count('class="empty"') == len(CHARTS)


def test_funnels_and_audiences_are_named_from_their_seeds(tmp_path: Path) -> None:
    """The funnel and audience panels label their traces with the seeds' names (funnels.csv
    funnel_name_zh / funnel_name_en, audiences.csv audience_name), not the bare codes."""
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        connection.execute(
            """
            create schema config;
            create schema marts;
            create table config.funnels as
                select * from (values
                    ('purchase', '购买漏斗', 'Purchase funnel', 1, 'view_item'),
                    ('purchase', '购买漏斗', 'Purchase funnel', 2, 'purchase')
                ) as t(funnel_code, funnel_name_zh, funnel_name_en, step_number, event_name);
            create table marts.funnel_conversions as
                select * from (values
                    ('purchase', 1, 'view_item', 10, 0.0, false),
                    ('purchase', 2, 'purchase', 4, 30.0, false)
                ) as t(funnel_code, step_number, event_name, users, median_minutes_to_convert,
                    is_provisional);
            create table config.audiences as
                select 'new_users' as audience_id, '新用户激活' as audience_name;
            create table marts.audience_outcomes as
                select 'new_users' as audience_id, 'conversion' as outcome,
                    date '2026-06-01' as audience_date, 0.05 as absolute_lift,
                    0.01 as lift_ci_lower, 0.09 as lift_ci_upper, true as is_window_complete;
            """
        )
        marts = Marts(connection)
        funnels = funnel_chart(marts).figure.data
        audiences = audience_chart(marts).figure.data
    assert [trace.name for trace in funnels] == ["购买漏斗 Purchase funnel"]
    assert list(audiences[0].y) == ["新用户激活 new_users · conversion"]


def test_charts_draw_the_marts_values(sample_build: Build, tmp_path: Path) -> None:
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        marts = Marts(connection)
        gmv = connection.execute(
            "select gmv from marts.daily_metrics order by metric_date"
        ).fetchall()
        north_star = north_star_chart(marts)
        # The first panel is the north star (GMV by default), drawn from daily_metrics as is.
        assert north_star.figure.data[0].y.tolist() == [row[0] for row in gmv]
        waterfall = dau_waterfall_chart(marts).figure.data[0]
        latest = connection.execute(
            "select comparison_dau, new_users, resurrected_users, newly_dormant_users, dau"
            " from marts.dau_change_decompositions where comparison = 'day_over_day'"
            " order by metric_date desc limit 1"
        ).fetchone()
        assert list(waterfall.y) == [latest[0], latest[1], latest[2], -latest[3], latest[4]]
        quality = quality_chart(marts).figure.data[0]
        accounting = connection.execute(
            "select table_name, quarantined_rows * 1.0 / raw_rows"
            " from marts.landing_row_accounting order by table_name"
        ).fetchall()
        assert list(quality.x) == [row[0] for row in accounting]
        assert list(quality.y) == pytest.approx([row[1] for row in accounting])
    report = write_report(sample_build.warehouse_path, tmp_path / "report.html")
    page = report.path.read_text()
    # plotly.js is inlined once: no script is fetched from anywhere.
    assert "<script src=" not in page and page.count("Plotly.newPlot") == len(report.rendered)
    assert {"north_star", "retention", "layers", "quality", "dau_waterfall"} <= set(report.rendered)
