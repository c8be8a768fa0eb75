"""Plotly figure builders: a DataFrame in, a figure out.

One builder per kind of chart, parameterised by column names, so the demographics, evaluation
and batch pages draw the same kind of chart the same way. No Streamlit here, so every builder
is unit-tested on its own.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.labels import AGE_BAND_NAMES, GENDER_COLOURS, GENDERS, RACE_NAMES

# One colour per category, whatever else is shown: a colour taken from a sequence in order of
# appearance would move to another category as soon as a filter removes one (Black turning into
# White's colour). Category names do not overlap, so one map serves every column.
RACE_COLORS = dict(zip(RACE_NAMES, px.colors.qualitative.Set2[:len(RACE_NAMES) - 1] + ["#B3B3B3"]))  # Unknown: grey
AGE_BAND_COLORS = dict(zip(AGE_BAND_NAMES, px.colors.sample_colorscale("Viridis", len(AGE_BAND_NAMES))))
CATEGORY_COLORS = {**GENDER_COLOURS, **RACE_COLORS, **AGE_BAND_COLORS}
CATEGORY_ORDERS = {"gender": list(GENDERS), "gender_true": list(GENDERS), "race": list(RACE_NAMES),
                   "age_band": list(AGE_BAND_NAMES), "split": ["train", "validation"]}
# Runs have no fixed colour, but each needs one clearly apart from the others (Streamlit's theme
# would otherwise give two runs two shades of blue).
RUN_COLORS = px.colors.qualitative.D3
NEUTRAL = "#8C8C8C"

# The legend goes below the plot, the title top left, and the modebar stands upright in a right
# margin of its own: in a narrow column a horizontal modebar ran into the title ("Race").
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0, title_text="")
MODEBAR = dict(orientation="v", remove=["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"])
TOP_MARGIN, MODEBAR_MARGIN = 50, 40
BAR_HEADROOM = 1.25


def _finish(fig: go.Figure, title: str) -> go.Figure:
    """The layout every builder shares: title, legend and modebar kept apart."""
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), margin=dict(l=10, r=MODEBAR_MARGIN, t=TOP_MARGIN, b=10),
                      legend=LEGEND_BELOW, modebar=MODEBAR)
    return fig


def histogram(table: pd.DataFrame, x: str, title: str, color: str | None = None, bin_size: float = 5,
              x_title: str | None = None) -> go.Figure:
    """Counts of `x` in fixed-width bins (on multiples of `bin_size`, the same for every
    trace), stacked by `color` (e.g. gender)."""
    fig = px.histogram(table, x=x, color=color, barmode="stack", color_discrete_map=CATEGORY_COLORS,
                       category_orders=CATEGORY_ORDERS, labels={x: x_title or x})
    if len(table):
        start = math.floor(table[x].min() / bin_size) * bin_size
        fig.update_traces(xbins=dict(start=start, end=table[x].max() + bin_size, size=bin_size))
    fig.update_layout(yaxis_title="count", bargap=0.05)
    return _finish(fig, title)


def share(table: pd.DataFrame, column: str, title: str) -> go.Figure:
    """Donut of how the rows split over the categories of `column`, each in its fixed colour.

    Only the percentages are written on the slices: the legend below names them, so the donut
    keeps the full width of a narrow column."""
    order = CATEGORY_ORDERS.get(column)
    tally = table[column].value_counts()
    tally = tally.reindex([c for c in order if c in tally.index]) if order else tally
    fig = px.pie(names=tally.index, values=tally.to_numpy(), hole=0.45, color=tally.index,
                 color_discrete_map=CATEGORY_COLORS)
    fig.update_traces(sort=False, textinfo="percent", textposition="inside", insidetextorientation="horizontal")
    _finish(fig, title)
    fig.update_layout(legend_y=-0.02)  # no axis labels below a donut to leave room for
    return fig


def pyramid(table: pd.DataFrame, title: str, age: str = "age", gender: str = "gender",
            bin_years: int = 5) -> go.Figure:
    """Age-gender pyramid: males to the left, females to the right, one bar per age bin.

    Only the genders present get a trace, so the legend names only what is drawn."""
    start = (table[age] // bin_years * bin_years).astype(int)
    bins = list(range(0, int(start.max()) + 1 if len(table) else bin_years, bin_years))
    labels = [f"{low}-{low + bin_years - 1}" for low in bins]
    grid = pd.crosstab(pd.Categorical(start, bins), pd.Categorical(table[gender], list(GENDERS)), dropna=False)
    fig = go.Figure()
    present = set(table[gender])
    for name, sign in zip(GENDERS, (-1, 1)):
        if name not in present:
            continue
        fig.add_bar(y=labels, x=sign * grid[name].to_numpy(), orientation="h", name=name,
                    marker_color=GENDER_COLOURS[name], customdata=grid[name].to_numpy(),
                    hovertemplate="age %{y}: %{customdata}<extra>" + name + "</extra>")
    ticks = _symmetric_ticks(int(grid.to_numpy().max()) if grid.size else 0)
    fig.update_layout(barmode="relative", bargap=0.05, yaxis_title="age",
                      xaxis=dict(title="count", tickvals=ticks, ticktext=[str(abs(t)) for t in ticks]))
    return _finish(fig, title)


def _symmetric_ticks(peak: int) -> list[int]:
    """Round tick positions from -peak to peak, so both sides of a pyramid read as counts."""
    if peak <= 0:
        return [0]
    base = 10 ** max(0, math.floor(math.log10(peak)) - 1)
    step = next(s * base for s in (1, 2, 5, 10, 20, 50) if peak / (s * base) <= 4)
    return list(range(-int(peak // step * step), int(peak // step * step) + 1, int(step)))


def heatmap(grid: pd.DataFrame, title: str, x_title: str, y_title: str, row_share: bool = False) -> go.Figure:
    """A labelled count table as a heatmap, counts written in the cells.

    With `row_share` the colour is each cell's share of its row (a confusion matrix then reads
    as recall per true class, whatever the class sizes) and the share is written beside the count.
    """
    values = grid.to_numpy(dtype=float)
    if row_share:
        totals = values.sum(axis=1, keepdims=True)
        shares = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
        text = [[f"{int(c)}<br>{s:.0%}" for c, s in zip(crow, srow)] for crow, srow in zip(values, shares)]
        values = shares
    else:
        text = [[f"{int(c)}" for c in row] for row in values]
    fig = px.imshow(values, x=[str(c) for c in grid.columns], y=[str(i) for i in grid.index], aspect="auto",
                    zmin=0, zmax=1 if row_share else None, color_continuous_scale="Blues", labels=dict(x=x_title, y=y_title,
                                                                color="share of row" if row_share else "count"))
    fig.update_traces(text=text, texttemplate="%{text}")
    fig.update_layout(coloraxis_showscale=False)  # the cells say their numbers; a colour bar only crowds the modebar
    fig.update_xaxes(side="bottom", type="category")
    fig.update_yaxes(type="category")
    return _finish(fig, title)


def curves(long: pd.DataFrame, title: str, y_title: str, x: str = "epoch") -> go.Figure:
    """Training curves from `tables.history_long`: one qualitative colour per run, solid = train,
    dashed = validation; along epochs, or (`x="progress"`) along each run's share of its planned
    epochs."""
    fig = px.line(long, x=x, y="value", color="run", line_dash="split", markers=True,
                  color_discrete_sequence=RUN_COLORS, line_dash_map={"train": "solid", "validation": "dash"},
                  category_orders=CATEGORY_ORDERS, labels={"value": y_title, "progress": "share of planned epochs"},
                  hover_data=["epoch"] if x != "epoch" else None)
    if x == "epoch":
        fig.update_xaxes(nticks=6, tickformat="d")  # whole epochs, few enough labels for a narrow column
    else:
        fig.update_xaxes(range=[0, 1.02], tickformat=".0%")
    return _finish(fig, title)


def scatter(table: pd.DataFrame, x: str, y: str, title: str, color: str | None = None,
            hover: list[str] | None = None, diagonal: bool = False, labels: dict | None = None) -> go.Figure:
    """Points of y against x; `diagonal` draws y = x (where a perfect prediction would lie)."""
    fig = px.scatter(table, x=x, y=y, color=color, opacity=0.55, hover_data=hover, color_discrete_map=CATEGORY_COLORS,
                     category_orders=CATEGORY_ORDERS, labels=labels)
    if diagonal and len(table):
        low = float(min(table[x].min(), table[y].min()))
        high = float(max(table[x].max(), table[y].max()))
        fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="perfect",
                                 line=dict(color="gray", dash="dot")))
    return _finish(fig, title)


def bars(table: pd.DataFrame, x: str, y: str, title: str, y_title: str, text: str | None = None,
         y_range: tuple[float, float] | None = None, value_format: str = ".2f") -> go.Figure:
    """One bar per row, in the fixed colour of its category (age band, gender, race) when it has
    one; `text` (e.g. the group size n) is shown on hover and below each value.

    Without `y_range` the axis leaves room above the tallest bar for its two lines of text, which
    Plotly's autorange does not count."""
    if y_range is None and len(table) and table[y].min() >= 0:
        y_range = (0, BAR_HEADROOM * table[y].max())
    fig = px.bar(table, x=x, y=y, labels={y: y_title, x: ""}, range_y=y_range,
                 hover_data=[text] if text else None, category_orders=CATEGORY_ORDERS)
    labels = [f"{v:{value_format}}" + (f"<br>n={n}" if text else "")
              for v, n in zip(table[y], table[text] if text else table[y])]
    fig.update_traces(text=labels, textposition="outside", cliponaxis=False,
                      marker_color=[CATEGORY_COLORS.get(v, NEUTRAL) for v in table[x]])
    return _finish(fig, title)


def coverage(table: pd.DataFrame, title: str, target: float) -> go.Figure:
    """Interval coverage per age band (`tables.interval_coverage`), grouped by how faces are
    banded (predicted or true age), with the promised coverage as a dashed line."""
    fig = go.Figure()
    for by, color in zip(table["by"].unique(), (GENDER_COLOURS["male"], NEUTRAL)):
        rows = table[table["by"] == by]
        # Each share inside its own bar, shrunk to the bar's width: ten labels above grouped bars
        # ran into one another; the group sizes are in the hover.
        fig.add_bar(x=rows["band"], y=rows["coverage"], name=f"by {by}", marker_color=color,
                    text=[f"{c:.0%}" for c in rows["coverage"]], textposition="inside", insidetextanchor="end",
                    textangle=0, customdata=np.stack([rows["median_width"], rows["n"]], axis=-1),
                    hovertemplate="%{x}: %{y:.1%} covered (n=%{customdata[1]}), median width %{customdata[0]:.0f} "
                                  "years<extra></extra>")
    fig.add_hline(y=target, line_dash="dash", line_color="gray", annotation_text=f"promised {target:.0%}",
                  annotation_position="bottom left")
    fig.update_layout(barmode="group", yaxis=dict(title="share of true ages inside", range=[0, BAR_HEADROOM],
                                                  tickformat=".0%", tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0]),
                      xaxis=dict(title="age band", categoryorder="array", categoryarray=list(AGE_BAND_NAMES)))
    return _finish(fig, title)


def reliability(bins: list[dict], title: str) -> go.Figure:
    """Reliability diagram: per bin of gender confidence, the share of genders that were right
    against the mean confidence; points on the diagonal mean the confidence can be taken at its word."""
    shown = [b for b in bins if b["n"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0.5, 1], y=[0.5, 1], mode="lines", name="perfectly calibrated",
                             line=dict(color="gray", dash="dot")))
    fig.add_trace(go.Scatter(x=[b["confidence"] for b in shown], y=[b["accuracy"] for b in shown],
                             mode="lines+markers", name="model", marker=dict(size=[6 + 14 * math.sqrt(b["n"] / max(
                                 c["n"] for c in shown)) for b in shown], color=GENDER_COLOURS["female"]),
                             customdata=[b["n"] for b in shown],
                             hovertemplate="confidence %{x:.1%}: %{y:.1%} right (n=%{customdata})<extra></extra>"))
    lowest = min([b["accuracy"] for b in shown] + [0.5])  # a bin right under half the time must show too
    fig.update_layout(xaxis=dict(title="gender confidence", range=[0.48, 1.02], tickformat=".0%"),
                      yaxis=dict(title="share right", range=[min(0.3, lowest - 0.05), 1.05], tickformat=".0%"))
    return _finish(fig, title)


def presence(spans: pd.DataFrame, title: str) -> go.Figure:
    """Who was in view when: one row per person (first to appear on top), a bar for each stretch
    of `start_s`..`end_s` seconds they were in view, in their gender's colour."""
    fig = go.Figure()
    people = list(dict.fromkeys(spans["person"]))
    rows = {person: f"person {person}" for person in people}
    for gender in [g for g in GENDERS if g in set(spans["gender"])]:
        part = spans[spans["gender"] == gender]
        fig.add_trace(go.Bar(y=[rows[p] for p in part["person"]], x=(part["end_s"] - part["start_s"]).clip(lower=0.05),
                             base=part["start_s"], orientation="h", name=gender, marker_color=GENDER_COLOURS[gender],
                             customdata=part[["start_s", "end_s"]],
                             hovertemplate="%{y}: %{customdata[0]:.1f}-%{customdata[1]:.1f} s<extra></extra>"))
    fig.update_yaxes(categoryorder="array", categoryarray=[rows[p] for p in reversed(people)], title_text="")
    fig.update_xaxes(title_text="seconds into the video", rangemode="tozero")
    fig.update_layout(barmode="overlay", height=max(260, 60 + 22 * len(people)))
    return _finish(fig, title)
