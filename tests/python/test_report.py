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
    dau_waterfall_chart,
    default_report_path,
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
