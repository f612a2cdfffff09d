"""`userops report`: one self-contained HTML page that shows the state of the users.

Every chart reads a mart (or an ml. table) as it is: the page filters and pivots, it never
recomputes a metric. plotly.js is inlined once, so the file opens without a network. Labels are
bilingual, Chinese names from the catalogue seeds (metric_catalogue, metric_views) next to the
English ones. A chart whose mart is missing or empty says so in its place instead of failing the
page (an orders-only log has no events, so no funnels or paths).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from userops.sql import sql_string_literal

REPORT_FILE = "userops_report.html"
# The north star and one metric per AARRR stage, in the order of the funnel of pirate metrics.
AARRR_METRICS = ("new_users", "activation_rate", "dau", "d7_retention", "paying_rate", "k_factor")
LAYER_ORDER = {
    "value_tier": ["core", "normal", "marginal"],
    "lifecycle_stage": ["new", "active", "reactivated", "silent", "churned"],
}


@dataclass
class Chart:
    """One panel of the page: a plotly figure, or the reason there is none."""

    key: str
    title_zh: str
    title_en: str
    figure: Any = None
    empty_reason: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Report:
    path: Path
    bytes: int
    seconds: float
    charts: list[Chart] = field(default_factory=list)

    @property
    def rendered(self) -> list[str]:
        return [chart.key for chart in self.charts if chart.figure is not None]

    @property
    def empty(self) -> dict[str, str]:
        return {c.key: c.empty_reason or "" for c in self.charts if c.figure is None}


def default_report_path(warehouse_path: Path) -> Path:
    """`reports/` beside the warehouse's folder: data/warehouse/x.duckdb -> data/reports/."""
    return Path(warehouse_path).resolve().parent.parent / "reports" / REPORT_FILE


class Marts:
    """Read-only access to the warehouse's tables, by name."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        self.tables = {
            f"{schema}.{name}"
            for schema, name in connection.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }

    def has(self, *tables: str) -> bool:
        return all(table in self.tables for table in tables)

    def frame(self, sql: str, parameters: Sequence[Any] = ()) -> pd.DataFrame:
        return self.connection.execute(sql, list(parameters)).df()


def _names(marts: Marts) -> dict[str, tuple[str, str]]:
    """metric_code -> (Chinese, English) from the catalogue seed."""
    if not marts.has("config.metric_catalogue"):
        return {}
    frame = marts.frame("select metric_code, name_zh, name_en from config.metric_catalogue")
    return {row.metric_code: (row.name_zh, row.name_en) for row in frame.itertuples()}


def _label(names: dict[str, tuple[str, str]], code: str) -> str:
    zh, en = names.get(code, (code, code))
    return f"{zh} {en}"


def _seed_names(marts: Marts, seed: str, key: str, zh: str, en: str) -> dict[str, str]:
    """key -> "Chinese English" from a config seed (the key itself when the seed is absent)."""
    if not marts.has(f"config.{seed}"):
        return {}
    frame = marts.frame(f"select distinct {key} as code, {zh} as zh, {en} as en from config.{seed}")
    return {str(row.code): f"{row.zh} {row.en}" for row in frame.itertuples()}


def _missing(key: str, zh: str, en: str, *tables: str) -> Chart:
    return Chart(key, zh, en, empty_reason=f"not built: {', '.join(tables)}")


def _layout(figure: Any, height: int = 420) -> Any:
    figure.update_layout(
        height=height,
        margin={"l": 60, "r": 30, "t": 40, "b": 50},
        template="plotly_white",
        font={"family": "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"},
        legend={"orientation": "h", "y": -0.18},
    )
    return figure


# ------------------------------------------------------------------ charts
def north_star_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    zh, en = "北极星指标与AARRR", "North star and AARRR metrics"
    if not marts.has("marts.daily_metrics", "config.metric_catalogue"):
        return _missing("north_star", zh, en, "marts.daily_metrics")
    names = _names(marts)
    north_star = marts.frame(
        "select metric_code, source_column, aarrr_stage from config.metric_catalogue"
        " where is_north_star"
    )
    codes = [north_star.metric_code[0], *AARRR_METRICS]
    columns = dict(
        marts.frame("select metric_code, source_column from config.metric_catalogue").values
    )
    daily = marts.frame("select * from marts.daily_metrics order by metric_date")
    if daily.empty:
        return Chart("north_star", zh, en, empty_reason="marts.daily_metrics is empty")
    anomalies = pd.DataFrame()
    if marts.has("marts.metric_baselines"):
        anomalies = marts.frame(
            "select metric_date, metric_code, metric_value, baseline_value, severity"
            " from marts.metric_baselines where dimension = 'overall'"
        )
    figure = make_subplots(
        rows=(len(codes) + 1) // 2,
        cols=2,
        subplot_titles=[
            ("★ " if i == 0 else "") + _label(names, code) for i, code in enumerate(codes)
        ],
        vertical_spacing=0.08,
    )
    for index, code in enumerate(codes):
        row, col = index // 2 + 1, index % 2 + 1
        column = columns.get(code, code)
        figure.add_trace(
            go.Scatter(
                x=daily.metric_date,
                y=daily[column],
                mode="lines",
                name=_label(names, code),
                line={"width": 2},
                showlegend=False,
            ),
            row=row,
            col=col,
        )
        if not anomalies.empty:
            series = anomalies[anomalies.metric_code == code]
            figure.add_trace(
                go.Scatter(
                    x=series.metric_date,
                    y=series.baseline_value,
                    mode="lines",
                    name="基线 baseline",
                    line={"width": 1, "dash": "dot", "color": "#888"},
                    showlegend=index == 0,
                ),
                row=row,
                col=col,
            )
            flagged = series[series.severity.notna()]
            figure.add_trace(
                go.Scatter(
                    x=flagged.metric_date,
                    y=flagged.metric_value,
                    mode="markers",
                    name="异常 anomaly",
                    marker={"color": "#d62728", "size": 10, "symbol": "x"},
                    showlegend=index == 0,
                ),
                row=row,
                col=col,
            )
    return Chart(
        "north_star",
        zh,
        en,
        _layout(figure, height=260 * ((len(codes) + 1) // 2)),
        note="Red crosses: days in marts.alerts (metric_baselines severity); dotted: baseline.",
    )


def retention_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "留存热力图", "Retention heat-map"
    if not marts.has("marts.retention_cohorts"):
        return _missing("retention", zh, en, "marts.retention_cohorts")
    frame = marts.frame(
        "select cohort_grain, retention_type, cohort_start_date, period_number, retention_rate,"
        " cohort_size, is_provisional from marts.retention_cohorts"
        " where segment_dimension = 'overall' and cohort_basis = 'first_time'"
        " and retention_mode = 'classic'"
        " order by cohort_grain, retention_type, cohort_start_date, period_number"
    )
    if frame.empty:
        return Chart("retention", zh, en, empty_reason="marts.retention_cohorts is empty")
    figure = go.Figure()
    combos = list(frame.groupby(["cohort_grain", "retention_type"], sort=False).groups)
    order = {"day": 0, "week": 1, "month": 2}
    combos.sort(key=lambda combo: (order.get(combo[0], 9), combo[1]))
    for index, (grain, kind) in enumerate(combos):
        part = frame[(frame.cohort_grain == grain) & (frame.retention_type == kind)]
        pivot = part.pivot(
            index="cohort_start_date", columns="period_number", values="retention_rate"
        )
        provisional = part[part.is_provisional]
        visible = index == 0
        figure.add_trace(
            go.Heatmap(
                z=pivot.values,
                x=[str(period) for period in pivot.columns],
                y=[str(day) for day in pivot.index],
                colorscale="Blues",
                zmin=0,
                zmax=1,
                colorbar={"title": "rate"},
                hovertemplate="cohort %{y}<br>period %{x}<br>retention %{z:.1%}<extra></extra>",
                visible=visible,
                name=f"{grain} {kind}",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=[str(period) for period in provisional.period_number],
                y=[str(day) for day in provisional.cohort_start_date],
                mode="markers",
                marker={"symbol": "circle-open", "color": "#ff7f0e", "size": 7},
                name="未完结 provisional",
                visible=visible,
                hoverinfo="skip",
            )
        )
    buttons = []
    for index, (grain, kind) in enumerate(combos):
        visible = [False] * (2 * len(combos))
        visible[2 * index] = visible[2 * index + 1] = True
        grain_zh = {"day": "日", "week": "周", "month": "月"}.get(grain, grain)
        kind_zh = {"activity": "活跃", "purchase": "购买"}.get(kind, kind)
        buttons.append(
            {
                "label": f"{grain_zh}{kind_zh} {grain} {kind}",
                "method": "update",
                "args": [{"visible": visible}],
            }
        )
    figure.update_layout(
        updatemenus=[{"buttons": buttons, "x": 0, "y": 1.15, "xanchor": "left"}],
        xaxis_title="period 期数",
        yaxis_title="cohort 同期群",
        yaxis={"autorange": "reversed"},
    )
    return Chart(
        "retention",
        zh,
        en,
        _layout(figure, height=560),
        note="First-time cohorts, classic retention; orange rings: provisional cells (the "
        "period has not closed). The menu switches grain and type.",
    )


def ltv_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "同期群价值曲线", "Value-cohort LTV curves"
    table = next((t for t in ("marts.value_cohorts", "marts.cohort_values") if marts.has(t)), None)
    if table is None:
        return _missing("ltv", zh, en, "marts.value_cohorts")
    columns = set(marts.frame(f"select * from {table} limit 0").columns)
    needed = {"cohort_start_date", "period_number", "cumulative_gmv_per_user"}
    if not needed <= columns:
        return Chart("ltv", zh, en, empty_reason=f"{table} lacks {sorted(needed - columns)}")
    filters = []
    if "cohort_grain" in columns:
        filters.append("cohort_grain = 'month'")
    if "acquisition_channel" in columns:
        filters.append("acquisition_channel = 'all'")
    where = f"where {' and '.join(filters)}" if filters else ""
    frame = marts.frame(
        f"select cohort_start_date, period_number, cumulative_gmv_per_user from {table}"
        f" {where} order by cohort_start_date, period_number"
    )
    if frame.empty:
        return Chart("ltv", zh, en, empty_reason=f"{table} is empty")
    figure = go.Figure()
    for cohort, part in frame.groupby("cohort_start_date"):
        figure.add_trace(
            go.Scatter(
                # Plain lists: plotly sends pandas columns as typed binary arrays, which the
                # page reads back as objects without a length (the browser test counts points).
                x=[int(value) for value in part.period_number],
                y=[float(value) for value in part.cumulative_gmv_per_user],
                mode="lines+markers",
                name=str(cohort),
            )
        )
    figure.update_layout(
        xaxis_title="period 期数", yaxis_title="cumulative GMV per user 人均累计GMV"
    )
    return Chart("ltv", zh, en, _layout(figure))


RFM_GRID_COLUMNS = (
    (True, True, "F高 M高"),
    (True, False, "F高 M低"),
    (False, True, "F低 M高"),
    (False, False, "F低 M低"),
)


def rfm_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    zh, en = "RFM分层与用户金字塔", "RFM segments and the layer pyramid"
    if not marts.has("marts.user_layers"):
        return _missing("layers", zh, en, "marts.user_layers")
    latest = marts.frame("select max(as_of_date) as day from marts.user_layers").day[0]
    if pd.isna(latest):
        return Chart("layers", zh, en, empty_reason="marts.user_layers is empty")
    latest = pd.Timestamp(latest).date()
    rfm = marts.frame(
        "select rfm_segment, is_recency_high, is_frequency_high, is_monetary_high,"
        " count(*) as users from marts.user_layers where as_of_date = ? group by all",
        [latest],
    )
    tiers = {
        dimension: marts.frame(
            f"select {dimension} as layer, count(*) as users from marts.user_layers"
            f" where as_of_date = ? group by 1",
            [latest],
        ).set_index("layer")
        for dimension in ("value_tier", "lifecycle_stage")
    }
    figure = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.44, 0.28, 0.28],
        subplot_titles=[
            "RFM 8类 segments (R × F, M)",
            "价值分层 10/80/10 value tier",
            "生命周期 lifecycle",
        ],
        specs=[[{"type": "heatmap"}, {"type": "funnel"}, {"type": "funnel"}]],
    )
    # The grid: recency high / low by (frequency, monetary); never-buyers are listed apart.
    buyers = rfm[rfm.rfm_segment != "未购买"]
    z, text = [], []
    for recency in (True, False):
        z_row, text_row = [], []
        for frequency, monetary, _ in RFM_GRID_COLUMNS:
            cell = buyers[
                (buyers.is_recency_high == recency)
                & (buyers.is_frequency_high == frequency)
                & (buyers.is_monetary_high == monetary)
            ]
            users = int(cell.users.sum())
            name = cell.rfm_segment.iloc[0] if len(cell) else ""
            z_row.append(users)
            text_row.append(f"{name}<br>{users}")
        z.append(z_row)
        text.append(text_row)
    never = int(rfm[rfm.rfm_segment == "未购买"].users.sum())
    figure.add_trace(
        go.Heatmap(
            z=z,
            x=[label for _, _, label in RFM_GRID_COLUMNS],
            y=["R高 recent", "R低 lapsed"],
            text=text,
            texttemplate="%{text}",
            colorscale="Oranges",
            showscale=False,
            hovertemplate="%{y} %{x}: %{z} users<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for col, dimension in ((2, "value_tier"), (3, "lifecycle_stage")):
        frame = tiers[dimension]
        order = [layer for layer in LAYER_ORDER[dimension] if layer in frame.index]
        order += [layer for layer in frame.index if layer not in order]
        frame = frame.loc[order]
        figure.add_trace(
            go.Funnel(
                y=list(frame.index),
                x=list(frame.users),
                textinfo="value+percent total",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    return Chart(
        "layers",
        zh,
        en,
        _layout(figure, height=420),
        note=f"Users per layer on the latest as-of date, {latest}; {never} users have never "
        "bought (未购买) and sit outside the grid.",
    )


def migration_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "分层迁移桑基图", "Layer migrations"
    if not marts.has("marts.layer_migrations"):
        return _missing("migrations", zh, en, "marts.layer_migrations")
    frame = marts.frame(
        "select from_layer, to_layer, user_count, as_of_date, previous_as_of_date"
        " from marts.layer_migrations where layer_dimension = 'lifecycle_stage'"
        " and period_grain = 'week' and as_of_date = (select max(as_of_date)"
        " from marts.layer_migrations where period_grain = 'week')"
    )
    if frame.empty:
        return Chart("migrations", zh, en, empty_reason="no weekly lifecycle migration yet")
    sources = [f"{layer} ({frame.previous_as_of_date[0]})" for layer in frame.from_layer]
    targets = [f"{layer} ({frame.as_of_date[0]})" for layer in frame.to_layer]
    nodes = list(dict.fromkeys(sources + targets))
    figure = go.Figure(
        go.Sankey(
            node={"label": nodes, "pad": 15},
            link={
                "source": [nodes.index(node) for node in sources],
                "target": [nodes.index(node) for node in targets],
                "value": list(frame.user_count),
            },
        )
    )
    return Chart(
        "migrations", zh, en, _layout(figure, height=460), note="Lifecycle, week over week."
    )


def funnel_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "漏斗与转化时长", "Funnels and time to convert"
    if not marts.has("marts.funnel_conversions"):
        return _missing("funnels", zh, en, "marts.funnel_conversions")
    frame = marts.frame(
        "select funnel_code, step_number, event_name, sum(users) as users,"
        " median(median_minutes_to_convert) as median_minutes"
        " from marts.funnel_conversions where not is_provisional"
        " group by funnel_code, step_number, event_name order by funnel_code, step_number"
    )
    if frame.empty:
        return Chart("funnels", zh, en, empty_reason="no closed funnel entries (no events?)")
    names = _seed_names(marts, "funnels", "funnel_code", "funnel_name_zh", "funnel_name_en")
    figure = go.Figure()
    for funnel, part in frame.groupby("funnel_code"):
        figure.add_trace(
            go.Funnel(
                y=[f"{row.step_number}. {row.event_name}" for row in part.itertuples()],
                x=list(part.users),
                name=names.get(str(funnel), str(funnel)),
                textinfo="value+percent initial",
                customdata=part.median_minutes,
                hovertemplate="%{y}: %{x} users<br>median of daily median minutes to convert "
                "%{customdata:.1f}<extra>%{fullData.name}</extra>",
            )
        )
    return Chart(
        "funnels",
        zh,
        en,
        _layout(figure, height=460),
        note="Users per step over every closed entry day; hover: time to convert.",
    )


def paths_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "用户路径桑基图", "User paths"
    table = "marts.event_paths"
    if not marts.has(table):
        return _missing("paths", zh, en, table)
    columns = set(marts.frame(f"select * from {table} limit 0").columns)
    needed = {"step_number", "from_event", "to_event", "users"}
    if not needed <= columns:
        return Chart("paths", zh, en, empty_reason=f"{table} lacks {sorted(needed - columns)}")
    filters = ["step_number <= 4"]
    if "direction" in columns:
        filters.append("direction = 'after'")
    anchor = None
    if "anchor_event" in columns:
        # The anchor most users reach (the paths mart walks several, var path_anchor_events).
        anchors = marts.frame(
            f"select anchor_event, max(anchor_users) as users from {table}"
            " group by all order by users desc, anchor_event limit 1"
        )
        if not anchors.empty:
            anchor = str(anchors.anchor_event[0])
            filters.append(f"anchor_event = {sql_string_literal(anchor)}")
    frame = marts.frame(
        f"select step_number, from_event, to_event, sum(users) as users from {table}"
        f" where {' and '.join(filters)} group by all order by step_number"
    )
    if frame.empty:
        return Chart("paths", zh, en, empty_reason=f"{table} is empty (no events?)")
    sources = [f"{row.step_number - 1}:{row.from_event}" for row in frame.itertuples()]
    targets = [f"{row.step_number}:{row.to_event}" for row in frame.itertuples()]
    nodes = list(dict.fromkeys(sources + targets))
    figure = go.Figure(
        go.Sankey(
            node={"label": [node.split(":", 1)[1] for node in nodes], "pad": 10},
            link={
                "source": [nodes.index(node) for node in sources],
                "target": [nodes.index(node) for node in targets],
                "value": list(frame.users),
            },
        )
    )
    note = f"Users after their first {anchor} (steps 1-4; other, drop_off)." if anchor else ""
    return Chart("paths", zh, en, _layout(figure, height=520), note=note)


def dau_waterfall_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "日活变动瀑布图", "DAU change waterfall"
    if not marts.has("marts.dau_change_decompositions"):
        return _missing("dau_waterfall", zh, en, "marts.dau_change_decompositions")
    frame = marts.frame(
        "select * from marts.dau_change_decompositions where comparison = 'day_over_day'"
        " order by metric_date desc limit 1"
    )
    if frame.empty:
        return Chart("dau_waterfall", zh, en, empty_reason="no DAU decomposition yet")
    row = frame.iloc[0]
    figure = go.Figure(
        go.Waterfall(
            x=[
                f"日活 DAU {row.comparison_date}",
                "新增 new",
                "回流 resurrected",
                "沉默 newly dormant",
                f"日活 DAU {row.metric_date}",
            ],
            measure=["absolute", "relative", "relative", "relative", "total"],
            y=[
                row.comparison_dau,
                row.new_users,
                row.resurrected_users,
                -row.newly_dormant_users,
                row.dau,
            ],
            text=[
                str(int(row.comparison_dau)),
                f"+{int(row.new_users)}",
                f"+{int(row.resurrected_users)}",
                f"-{int(row.newly_dormant_users)}",
                str(int(row.dau)),
            ],
        )
    )
    return Chart(
        "dau_waterfall",
        zh,
        en,
        _layout(figure),
        note="DAU = DAU the day before + new + resurrected - newly dormant "
        "(marts.dau_change_decompositions).",
    )


def churn_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    zh, en = "流失模型：提升与校准", "Churn model: lift and calibration"
    if not marts.has("ml.churn_model_calibration", "ml.churn_model_evaluations"):
        return _missing("churn", zh, en, "ml.churn_model_calibration")
    version = marts.frame(
        "select model_version from ml.churn_model_evaluations order by evaluated_at desc limit 1"
    )
    if version.empty:
        return Chart("churn", zh, en, empty_reason="the churn model has not been trained")
    calibration = marts.frame(
        "select model_name, bin_lower, bin_upper, users, mean_predicted, observed_churn_rate"
        " from ml.churn_model_calibration where model_version = ? order by model_name, bin_lower",
        [version.model_version[0]],
    )
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=["提升 lift (by score)", "校准 calibration"]
    )
    for model, part in calibration.groupby("model_name"):
        # Lift at each depth: users taken from the highest score bin down; churn rate among
        # them over the churn rate of everyone (the table's own counts and rates).
        ordered = part.sort_values("bin_lower", ascending=False)
        churners = (ordered.users * ordered.observed_churn_rate).cumsum()
        taken = ordered.users.cumsum()
        overall = churners.iloc[-1] / taken.iloc[-1] if taken.iloc[-1] else float("nan")
        figure.add_trace(
            go.Scatter(
                x=taken / taken.iloc[-1],
                y=(churners / taken) / overall,
                mode="lines+markers",
                name=f"{model} lift",
            ),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=part.mean_predicted,
                y=part.observed_churn_rate,
                mode="lines+markers",
                name=f"{model} calibration",
            ),
            row=1,
            col=2,
        )
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="perfect"),
        row=1,
        col=2,
    )
    figure.update_xaxes(title_text="share of users, highest scores first", row=1, col=1)
    figure.update_xaxes(title_text="mean predicted churn", row=1, col=2)
    figure.update_yaxes(title_text="observed churn", row=1, col=2)
    return Chart("churn", zh, en, _layout(figure), note=f"Model {version.model_version[0]}.")


def audience_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go

    zh, en = "人群干预提升", "Audience lift"
    if not marts.has("marts.audience_outcomes"):
        return _missing("audiences", zh, en, "marts.audience_outcomes")
    frame = marts.frame(
        "select audience_id, outcome, audience_date, absolute_lift, lift_ci_lower, lift_ci_upper"
        " from marts.audience_outcomes where is_window_complete and absolute_lift is not null"
        " qualify row_number() over (partition by audience_id, outcome"
        " order by audience_date desc) = 1 order by audience_id, outcome"
    )
    if frame.empty:
        return Chart("audiences", zh, en, empty_reason="no audience with a closed window")
    # audiences.csv names an audience in Chinese (audience_name); its id is the English label.
    names = _seed_names(marts, "audiences", "audience_id", "audience_name", "audience_id")
    labels = [
        f"{names.get(row.audience_id, row.audience_id)} · {row.outcome}"
        for row in frame.itertuples()
    ]
    figure = go.Figure(
        go.Scatter(
            x=frame.absolute_lift,
            y=labels,
            mode="markers",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": frame.lift_ci_upper - frame.absolute_lift,
                "arrayminus": frame.absolute_lift - frame.lift_ci_lower,
            },
            marker={"size": 10},
            name="lift",
        )
    )
    figure.add_vline(x=0, line_dash="dot")
    figure.update_layout(xaxis_title="absolute lift (treatment - holdout), 95% CI")
    return Chart(
        "audiences",
        zh,
        en,
        _layout(figure, height=max(300, 40 * len(labels) + 120)),
        note="Latest audience date with a closed outcome window per audience and outcome.",
    )


def quality_chart(marts: Marts) -> Chart:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    zh, en = "数据质量", "Data quality"
    if not marts.has("marts.landing_row_accounting", "marts.quarantined_rows"):
        return _missing("quality", zh, en, "marts.landing_row_accounting")
    accounting = marts.frame("select * from marts.landing_row_accounting order by table_name")
    reasons = marts.frame(
        "select table_name, quarantine_reason, count(*) as rows from marts.quarantined_rows"
        " group by all order by table_name, rows desc"
    )
    if accounting.empty:
        return Chart("quality", zh, en, empty_reason="no landing tables")
    shares = accounting.quarantined_rows / accounting.raw_rows.where(accounting.raw_rows > 0)
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[
            "隔离占比 quarantined share of raw rows",
            "隔离原因 reasons, share of raw rows",
        ],
    )
    figure.add_trace(
        go.Bar(
            x=accounting.table_name,
            y=shares.fillna(0),
            text=[
                f"raw {row.raw_rows:,} = staged {row.staged_rows:,} + quarantined "
                f"{row.quarantined_rows:,}"
                for row in accounting.itertuples()
            ],
            hovertemplate="%{x}: %{y:.2%}<br>%{text}<extra></extra>",
            texttemplate="%{y:.2%}",
            name="隔离占比 share",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    raw = dict(zip(accounting.table_name, accounting.raw_rows, strict=True))
    for reason, part in reasons.groupby("quarantine_reason"):
        figure.add_trace(
            go.Bar(
                x=part.table_name,
                y=[
                    rows / raw[table] if raw.get(table) else 0
                    for table, rows in zip(part.table_name, part.rows, strict=True)
                ],
                customdata=part.rows,
                hovertemplate="%{x} " + str(reason) + ": %{customdata} rows (%{y:.3%})"
                "<extra></extra>",
                name=str(reason),
            ),
            row=1,
            col=2,
        )
    figure.update_layout(barmode="stack")
    figure.update_yaxes(tickformat=".2%", row=1, col=1)
    figure.update_yaxes(tickformat=".2%", row=1, col=2)
    return Chart(
        "quality",
        zh,
        en,
        _layout(figure, height=420),
        note="Every raw row is staged or quarantined with a reason (hover: the counts).",
    )


CHARTS: tuple[Callable[[Marts], Chart], ...] = (
    north_star_chart,
    retention_chart,
    ltv_chart,
    rfm_chart,
    migration_chart,
    funnel_chart,
    paths_chart,
    dau_waterfall_chart,
    churn_chart,
    audience_chart,
    quality_chart,
)


def alerts_rows(marts: Marts) -> list[dict[str, Any]]:
    if not marts.has("marts.alerts", "marts.alert_explanations"):
        return []
    from userops.alerts import Alert

    recent = (
        "select * from marts.alerts where metric_date >= (select max(metric_date) - 6"
        " from marts.metric_baselines)"
    )
    cursor = marts.connection.execute(
        f"{recent} order by metric_date desc, abs(robust_score) desc limit 20"
    )
    names = [column[0] for column in cursor.description]
    records = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    cursor = marts.connection.execute(
        "select * from marts.alert_explanations where alert_id in"
        f" (select alert_id from ({recent})) order by explanation_kind, dimension, part_rank"
    )
    part_names = [column[0] for column in cursor.description]
    parts = [dict(zip(part_names, row, strict=True)) for row in cursor.fetchall()]
    return [
        {
            **record,
            "message": Alert(
                record, tuple(part for part in parts if part["alert_id"] == record["alert_id"])
            ).message(),
        }
        for record in records
    ]


# ------------------------------------------------------------------ page
PAGE_STYLE = """
body { font-family: 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif;
       margin: 0; background: #f6f7f9; color: #222; }
header { background: #1f3a5f; color: white; padding: 16px 32px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; opacity: 0.85; font-size: 13px; }
main { padding: 16px 32px; }
section { background: white; border-radius: 6px; margin: 0 0 18px; padding: 12px 16px;
          box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
section h2 { font-size: 17px; margin: 4px 0 8px; }
section h2 .en { color: #666; font-weight: normal; margin-left: 8px; }
.note { color: #666; font-size: 12px; margin: 4px 0 0; }
.empty { color: #a33; font-size: 14px; padding: 24px; text-align: center; }
table.alerts { border-collapse: collapse; font-size: 13px; width: 100%; }
table.alerts td, table.alerts th { border-bottom: 1px solid #eee; padding: 4px 6px;
                                   text-align: left; vertical-align: top; }
.sev-error { color: #c00; font-weight: bold; } .sev-warn { color: #c70; font-weight: bold; }
"""


def render_html(charts: Sequence[Chart], alerts: Sequence[dict[str, Any]], title: str) -> str:
    from plotly.offline import get_plotlyjs

    sections = []
    for chart in charts:
        body = (
            chart.figure.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"chart-{chart.key}",
                config={"displaylogo": False, "responsive": True},
            )
            if chart.figure is not None
            else f'<div class="empty">{html.escape(chart.empty_reason or "no data")}</div>'
        )
        note = f'<p class="note">{html.escape(chart.note)}</p>' if chart.note else ""
        sections.append(
            f'<section id="{chart.key}" data-chart="{chart.key}" '
            f'data-rendered="{str(chart.figure is not None).lower()}">'
            f'<h2>{html.escape(chart.title_zh)}<span class="en">{html.escape(chart.title_en)}'
            f"</span></h2>{body}{note}</section>"
        )
    alert_lines = "".join(
        f"<tr><td>{html.escape(str(row['metric_date']))}</td>"
        f'<td class="sev-{row["severity"]}">{html.escape(row["severity"])}</td>'
        f"<td>{html.escape(row['metric_name_zh'] or '')}</td>"
        f"<td>{html.escape(row['message'])}</td></tr>"
        for row in alerts
    )
    alerts_section = (
        '<section id="alerts" data-chart="alerts"><h2>指标告警<span class="en">Metric alerts, '
        "last 7 days</span></h2>"
        + (
            '<table class="alerts"><tr><th>day</th><th>severity</th><th>指标</th>'
            f"<th>what moved and why</th></tr>{alert_lines}</table>"
            if alerts
            else '<p class="note">No alert in the last 7 days of data.</p>'
        )
        + "</section>"
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<header><h1>用户运营报告 · {html.escape(title)}</h1>"
        f"<p>Generated {generated} from the marts. Every chart reads a table as it is.</p>"
        f"</header><main>{alerts_section}{''.join(sections)}</main>"
        "<script>window.USEROPS_CHARTS = "
        + json.dumps([chart.key for chart in charts if chart.figure is not None])
        + ";</script></body></html>"
    )


def write_report(warehouse_path: Path, output: Path | None = None) -> Report:
    """Read the marts of the warehouse and write the page atomically (temporary file, rename)."""
    started = time.perf_counter()
    warehouse_path = Path(warehouse_path).resolve()
    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}: build it first (userops build)")
    output = Path(output or default_report_path(warehouse_path)).resolve()
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        marts = Marts(connection)
        charts = [build(marts) for build in CHARTS]
        alerts = alerts_rows(marts)
    page = render_html(charts, alerts, title=warehouse_path.stem)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(output)
    return Report(output, output.stat().st_size, time.perf_counter() - started, charts)
