"""The Architecture view's receptive-field chart: how many input pixels one position sees, unit
after unit, against the input's side.

Presentation only: every size, jump and "sees the whole input" flag comes from
`shufflenet.analysis.receptive_field_table`; here they are only placed and labelled.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .figures import _layout

#: The name of the trace that marks the first unit whose every position sees the whole input.
WHOLE_INPUT_NAME = "first sees the whole input"
#: Names of the network's parts in the legend.
PART_NAMES = {"stem": "stem", "stage2": "stage 2", "stage3": "stage 3", "stage4": "stage 4",
              "classifier": "global pool + FC"}
#: One strong colour per part (Okabe-Ito): the diagrams' pale stage fills were hard to tell apart as dots.
PART_COLORS = {"stem": "#999999", "stage2": "#0072B2", "stage3": "#E69F00", "stage4": "#CC79A7",
               "classifier": "#000000"}
EDGE = "#333333"


def unit_label(stage: str, unit) -> str:
    """A tick of the x axis: "stem", "2.1" (stage 2, unit 1), ..., "pool"."""
    if stage == "stem":
        return "stem"
    if stage == "classifier":
        return "pool"
    return f"{stage.removeprefix('stage')}.{int(unit)}"


def receptive_growth(units: pd.DataFrame, input_size: int, title: str) -> go.Figure:
    """The receptive field (side in input pixels) at the output of every unit of `units` (the
    table by unit), a dashed line at the input's side, and the first unit whose every position
    sees the whole input marked with a star and a dotted vertical line."""
    x = list(range(len(units)))
    ticks = [unit_label(s, u) for s, u in zip(units["stage"], units["unit"])]
    custom = list(zip(units["layer"], units["jump"], units["output_side"],
                      ["yes" if v else "no" for v in units["sees_whole_input"]]))
    hover = ("%{customdata[0]}<br>receptive field %{y:,} px<br>%{customdata[1]} px between neighbouring "
             "positions, %{customdata[2]}×%{customdata[2]} positions<br>every position sees the whole input: "
             "%{customdata[3]}<extra></extra>")
    fig = go.Figure(go.Scatter(x=x, y=units["receptive_field"], mode="lines", line=dict(color="#888888", width=2),
                               hoverinfo="skip", showlegend=False))
    for stage, rows in units.groupby("stage", sort=False):
        where = [i for i, s in enumerate(units["stage"]) if s == stage]
        fig.add_trace(go.Scatter(
            x=where, y=rows["receptive_field"], mode="markers", name=PART_NAMES.get(stage, stage),
            marker=dict(size=11, color=PART_COLORS.get(stage, "#cccccc"), line=dict(color=EDGE, width=1.5)),
            customdata=[custom[i] for i in where], hovertemplate=hover,
        ))
    fig.add_hline(y=input_size, line=dict(color="#D55E00", dash="dash", width=2),
                  annotation=dict(text=f"input: {input_size:,} px", font=dict(color="#D55E00", size=14)),
                  annotation_position="top left")
    first = [i for i, v in enumerate(units["first_whole_input"]) if v]
    if first:
        i = first[0]
        fig.add_vline(x=i, line=dict(color="#009E73", dash="dot", width=2))
        fig.add_trace(go.Scatter(
            x=[i], y=[units["receptive_field"].iloc[i]], mode="markers", name=WHOLE_INPUT_NAME,
            marker=dict(symbol="star", size=20, color="#009E73", line=dict(color=EDGE, width=1)),
            customdata=[custom[i]], hovertemplate=hover,
        ))
    fig.update_xaxes(title="unit (stage.unit), in the order the picture flows through them", tickmode="array",
                     tickvals=x, ticktext=ticks, tickfont=dict(size=13), showgrid=False)
    fig.update_yaxes(title="receptive field (input pixels, one side)", rangemode="tozero", tickformat=",",
                     tickfont=dict(size=13))
    fig.update_layout(font=dict(size=14))
    return _layout(fig, title, height=420)
