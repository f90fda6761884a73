"""Plotly figures of accuracy against cost: what a configuration gains, beside what it costs.
Presentation only: the points come from `shufflenet.experiment` (measured here) and
`shufflenet.paper` (the paper's published ImageNet tables)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from shufflenet.config import ALLOWED_GROUPS

#: One colour per width (Okabe-Ito).
WIDTH_COLORS = {0.25: "#0072B2", 0.5: "#E69F00", 1.0: "#009E73", 1.5: "#CC79A7", 2.0: "#D55E00"}


#: The g values of the paper's tables, in the order the x axis shows them.
GROUPS = ALLOWED_GROUPS
#: How far the no-shuffle cells sit right of the shuffle cells of the same g (in category widths).
NO_SHUFFLE_OFFSET = 0.14


def _cell_style(sub: pd.DataFrame, color: str, shuffle: bool, error_std: str | None) -> dict:
    """What every cell's trace shares: the error bars (when there are spreads), the line and marker
    (a circle with the shuffle, a cross without), and `customdata` = (groups, scale, shuffle)."""
    errors = None
    if error_std and sub[error_std].notna().any():
        errors = dict(type="data", array=sub[error_std].fillna(0), color=color, thickness=1.2, width=4)
    return dict(error_y=errors, line=dict(color=color, width=2),
                marker=dict(color=color, size=11 if shuffle else 13, symbol="circle" if shuffle else "x",
                            line=dict(color="#333333", width=1)),
                customdata=sub[["groups", "scale", "shuffle"]].astype(object).to_numpy())


def _finish(fig: go.Figure, title: str) -> go.Figure:
    fig.update_yaxes(title="top-1 error (%)")
    fig.update_layout(title=title, height=440, margin=dict(l=10, r=10, t=60, b=10), clickmode="event+select",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))
    return fig


def error_vs_groups(df: pd.DataFrame, title: str, error_std: str | None = None) -> go.Figure:
    """Error (%) against g, as the paper's Tables 2 and 3 are laid out: one line per width, the
    no-shuffle cells as crosses just right of their g; MACs and params in the hover. `customdata`
    = (groups, scale, shuffle) so that a click can select a point."""
    fig = go.Figure()
    position = {g: i for i, g in enumerate(GROUPS)}
    for scale, part in df.groupby("scale", sort=True):
        color = WIDTH_COLORS.get(float(scale), "#555555")
        for shuffle, sub in part.groupby("shuffle", sort=False):
            sub = sub.sort_values(["groups"])
            name = f"{scale:g}x" + ("" if shuffle else ", no shuffle")
            fig.add_trace(go.Scatter(
                x=[position[g] + (0 if shuffle else NO_SHUFFLE_OFFSET) for g in sub["groups"]], y=sub["error"],
                mode="lines+markers" if shuffle else "markers", name=name,
                **_cell_style(sub, color, shuffle, error_std),
                text=[f"g = {g}, {name}: {m:,.0f} MACs" for g, m in zip(sub["groups"], sub["macs"])],
                hovertemplate="%{text}<br>error %{y:.2f} %<extra></extra>",
            ))
    fig.update_xaxes(title="groups g", tickvals=list(range(len(GROUPS))), ticktext=[str(g) for g in GROUPS],
                     range=[-0.4, len(GROUPS) - 0.6])
    return _finish(fig, title)


def error_vs_cost(df: pd.DataFrame, x: str, x_title: str, title: str, error_std: str | None = None) -> go.Figure:
    """Error (%) against cost, one line per width through g = 1..8 (labelled), the no-shuffle
    cells as crosses; `customdata` = (groups, scale, shuffle) so that a click can select a point."""
    fig = go.Figure()
    for scale, part in df.groupby("scale", sort=True):
        color = WIDTH_COLORS.get(float(scale), "#555555")
        for shuffle, sub in part.groupby("shuffle", sort=False):
            sub = sub.sort_values(["groups"])
            fig.add_trace(go.Scatter(
                x=sub[x], y=sub["error"], mode="lines+markers+text" if shuffle else "markers+text",
                name=f"{scale:g}x" + ("" if shuffle else ", no shuffle"), **_cell_style(sub, color, shuffle, error_std),
                text=[f"g={g}" for g in sub["groups"]], textposition="top center", showlegend=True,
                hovertemplate="%{text}, " + f"{scale:g}x" + ("" if shuffle else ", no shuffle")
                              + "<br>%{x:,} " + x_title.split(" (")[0] + "<br>error %{y:.2f} %<extra></extra>",
            ))
    fig.update_xaxes(title=x_title, tickformat="~s")
    return _finish(fig, title)
