"""Plotly figures drawn from the library's tables. Presentation only: every number plotted
comes from a DataFrame or matrix computed in `shufflenet.analysis`."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: One colour per group (up to g = 8), colour-blind friendly (Okabe-Ito, reordered).
GROUP_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
A_COLOR, B_COLOR = "#0072B2", "#E69F00"


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    """Title at the top left, legend at the bottom of the figure, under the axis: a legend above
    the plot covered the title as soon as it was wider than the room beside it (a half-width
    column, 150 % zoom, eight groups), and Plotly does not keep the two apart. At the bottom
    (`yref="container"`) Plotly makes room for the legend however many rows it takes."""
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=1, yref="container", yanchor="top",
                                 pad=dict(t=8, l=10)),
                      height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0))
    return fig


def bar(df: pd.DataFrame, x: str, y: str, title: str) -> go.Figure:
    """One bar per row; the hover shows the value with thousands separators and the share."""
    share = df.get(f"{y} %")
    fig = go.Figure(go.Bar(
        x=df[x].astype(str), y=df[y], marker_color=A_COLOR,
        customdata=share, name=y,
        hovertemplate="%{x}: %{y:,}" + (" (%{customdata:.1f} %)" if share is not None else "") + "<extra></extra>",
    ))
    fig.update_yaxes(tickformat="~s", title=y)
    return _layout(fig, title)


def bytes_bar(df: pd.DataFrame, x: str, y: str, title: str, names: dict | None = None) -> go.Figure:
    """One bar per row of a byte count (memory traffic): the axis in kB / MB / GB, the hover with
    the exact bytes and the share. `names` gives a longer name per x value for the hover."""
    share = df[f"{y} %"] if f"{y} %" in df else pd.Series(0.0, index=df.index)
    labels = [names.get(v, v) if names else v for v in df[x].astype(str)]
    fig = go.Figure(go.Bar(
        x=df[x].astype(str), y=df[y], marker_color=B_COLOR, name=y,
        customdata=list(zip(labels, share)),
        hovertemplate="%{customdata[0]}: %{y:.3~s}B (%{y:,} bytes, %{customdata[1]:.1f} %)<extra></extra>",
    ))
    fig.update_yaxes(tickformat="~s", ticksuffix="B", title="bytes (float32, batch 1)")
    return _layout(fig, title)


def intensity_bar(df: pd.DataFrame, x: str, y: str, title: str, names: dict | None = None) -> go.Figure:
    """One bar per row of an arithmetic intensity (MACs per byte of memory traffic); a group
    without MACs shows as an empty bar marked 0."""
    labels = [names.get(v, v) if names else v for v in df[x].astype(str)]
    fig = go.Figure(go.Bar(
        x=df[x].astype(str), y=df[y], marker_color=A_COLOR, name=y, customdata=labels,
        text=[f"{v:.2f}" if v else "0" for v in df[y]], textposition="outside", cliponaxis=False,
        hovertemplate="%{customdata}: %{y:.3f} MACs per byte<extra></extra>",
    ))
    fig.update_yaxes(title="MACs per byte", rangemode="tozero")
    return _layout(fig, title)


def shuffle_wiring(edges: pd.DataFrame, groups: int) -> go.Figure:
    """The shuffle as wires: input channels on the left (coloured by the group of the conv that
    produced them), output channels on the right (labelled by the group of the next conv)."""
    fig = go.Figure()
    for group, part in edges.groupby("input_group", sort=True):
        xs, ys = [], []
        for src, dst in zip(part["input"], part["output"]):
            xs += [0, 1, None]
            ys += [src, dst, None]
        color = GROUP_COLORS[int(group) % len(GROUP_COLORS)]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=2),
                                 name=f"from group {group}", hoverinfo="skip", legendgroup=str(group)))
    by_input = edges.sort_values("input")
    fig.add_trace(go.Scatter(
        x=[0] * len(by_input), y=by_input["input"], mode="markers+text", showlegend=False,
        marker=dict(size=10, color=[GROUP_COLORS[int(g) % len(GROUP_COLORS)] for g in by_input["input_group"]]),
        text=by_input["input"].astype(str), textposition="middle left",
        customdata=by_input[["input_group", "output"]],
        hovertemplate="input channel %{y} (group %{customdata[0]}) → output %{customdata[1]}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=[1] * len(edges), y=edges["output"], mode="markers+text", showlegend=False,
        marker=dict(size=10, color=[GROUP_COLORS[int(g) % len(GROUP_COLORS)] for g in edges["input_group"]],
                    line=dict(color="#333333", width=1)),
        text=[f"{o}  (next group {g})" for o, g in zip(edges["output"], edges["output_group"])],
        textposition="middle right", customdata=edges[["input", "output_group"]],
        hovertemplate="output channel %{y} ← input %{customdata[0]}; read by group %{customdata[1]} "
                      "of the next conv<extra></extra>",
    ))
    channels = len(edges)
    fig.update_xaxes(range=[-0.35, 1.6], tickvals=[0, 1], ticktext=["before shuffle", "after shuffle"],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False)
    height = max(320, min(1400, 22 * channels + 120))
    return _layout(fig, f"Channel shuffle of {channels} channels in g = {groups} groups", height=height)


def _group_colorscale(groups: int) -> list:
    colors = ["#ffffff", *(GROUP_COLORS[i % len(GROUP_COLORS)] for i in range(groups))]
    steps = len(colors)
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / steps, c], [(i + 1) / steps, c]]
    return scale


def information_flow(without, with_shuffle, groups: int) -> go.Figure:
    """Paper Fig. 1 as two connectivity matrices of two stacked group convs: a cell is coloured
    by the input channel's group when that input reaches that output, white when it cannot."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("without shuffle (Fig. 1a)", "with shuffle (Fig. 1b, c)"))
    scale = _group_colorscale(groups)
    for col, matrix in ((1, without), (2, with_shuffle)):
        fig.add_trace(go.Heatmap(
            z=matrix, colorscale=scale, zmin=-0.5, zmax=groups + 0.5, showscale=False, xgap=1, ygap=1,
            hovertemplate="output %{y} ← input %{x}: %{z}<extra>0 = no path, k = from group k-1</extra>",
        ), row=1, col=col)
        fig.update_xaxes(title="input channel of the first group conv", row=1, col=col)
        fig.update_yaxes(title="output channel of the second group conv" if col == 1 else None,
                         autorange="reversed", scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    _layout(fig, "Which inputs can each output see? (two stacked 1×1 group convs)", height=480)
    return fig.update_layout(margin=dict(t=70))  # room for the title above the two subplot titles


def sweep(df: pd.DataFrame, current: int) -> dict[str, go.Figure]:
    """Figures of the sweep over g: MACs, params, memory and widths; the current g is solid."""
    x = [f"g = {g}" for g in df["groups"]]
    opacity = [1.0 if g == current else 0.45 for g in df["groups"]]

    def bars(columns: dict[str, str], title: str, barmode: str = "group") -> go.Figure:
        fig = go.Figure()
        for col, label in columns.items():
            fig.add_trace(go.Bar(x=x, y=df[col], name=label, marker_opacity=opacity,
                                 hovertemplate="%{x}: %{y:,}<extra>" + label + "</extra>"))
        fig.update_layout(barmode=barmode)
        fig.update_yaxes(tickformat="~s")
        return _layout(fig, title)

    widths = go.Figure()
    for col in ("stem", "stage2", "stage3", "stage4"):
        widths.add_trace(go.Scatter(x=x, y=df[col], mode="lines+markers", name=col,
                                    hovertemplate="%{x}: %{y} channels<extra>" + col + "</extra>"))
    widths.update_yaxes(title="output channels")
    return {
        "macs": bars({"conv_macs": "MACs without FC (Table 1)", "fc_macs": "FC MACs"}, "MACs per g", "stack"),
        "params": bars({"params": "parameters"}, "Parameters per g"),
        "memory": bars({"activation_bytes": "activations (float32, batch 1)", "model_bytes": "weights (float32)"},
                       "Memory per g (bytes)"),
        "widths": _layout(widths, "Channel widths per g"),
    }


def compare_stages(df: pd.DataFrame) -> go.Figure:
    """MACs per stage of A and B side by side (the total row left out)."""
    stages = df[df["stage"] != "total"]
    fig = go.Figure([
        go.Bar(x=stages["stage"], y=stages["MACs A"], name="A (current)", marker_color=A_COLOR,
               hovertemplate="%{x}: %{y:,}<extra>A</extra>"),
        go.Bar(x=stages["stage"], y=stages["MACs B"], name="B", marker_color=B_COLOR,
               hovertemplate="%{x}: %{y:,}<extra>B</extra>"),
    ])
    fig.update_layout(barmode="group")
    fig.update_yaxes(tickformat="~s", title="MACs")
    return _layout(fig, "MACs per stage, A vs B")


def top_k(df: pd.DataFrame, title: str) -> go.Figure:
    """Horizontal bars of the top-k probabilities, best on top."""
    fig = go.Figure(go.Bar(
        x=df["probability"], y=df["label"], orientation="h", marker_color=A_COLOR,
        text=[f"{p:.2%}" for p in df["probability"]], textposition="auto",
        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="probability", tickformat=".2%")
    return _layout(fig, title, height=320)


#: One colour per runtime setting of the latency lab.
SETTING_COLORS = {"TensorFlow": "#0072B2", "TFLite, 1 thread": "#E69F00", "TFLite, 2 threads": "#009E73",
                  "ONNX Runtime, 1 thread": "#CC79A7", "ONNX Runtime, 2 threads": "#D55E00"}


#: The x axes of the latency charts: column -> (axis title, chart title, hover unit).
LATENCY_AXES = {"macs": ("MACs (FC included)", "Measured latency vs MACs", "MACs"),
                "traffic_bytes": ("memory traffic (bytes, float32, batch 1)", "Measured latency vs memory traffic",
                                  "bytes")}


def latency_vs_macs(df: pd.DataFrame, current: int, reference: str, reference_note: str,
                    x: str = "macs") -> go.Figure:
    """Measured latency (median, whiskers p10-p90) against MACs (or `x` = "traffic_bytes", memory
    traffic), one colour per runtime setting; ShuffleNet's g as labelled circles (the current g
    larger), `reference` as a star."""
    from shufflenet.benchmark import setting_label

    fig = go.Figure()
    labels = [setting_label(r, t) for r, t in df[["runtime", "threads"]].itertuples(index=False)]
    df = df.assign(setting=labels)
    for setting, part in df.groupby("setting", sort=False):
        color = SETTING_COLORS.get(setting, "#555555")
        for is_ref, sub in part.groupby(part["model"] == reference, sort=True):
            text = [reference if is_ref else f"g={int(g)}" for g in sub["groups"].fillna(0)]
            size = [16 if is_ref else (15 if g == current else 10) for g in sub["groups"].fillna(0)]
            fig.add_trace(go.Scatter(
                x=sub[x], y=sub["median_ms"], mode="markers+text", text=text, textposition="top center",
                name=f"{setting}{' · ' + reference if is_ref else ''}", legendgroup=setting,
                marker=dict(color=color, size=size, symbol="star" if is_ref else "circle",
                            line=dict(color="#333333", width=1)),
                error_y=dict(type="data", symmetric=False, array=sub["p90_ms"] - sub["median_ms"],
                             arrayminus=sub["median_ms"] - sub["p10_ms"], color=color, thickness=1),
                customdata=sub[["model", "p10_ms", "p90_ms"]],
                hovertemplate="%{customdata[0]}<br>%{x:,} " + LATENCY_AXES[x][2] + "<br>median %{y:.2f} ms "
                              "(p10 %{customdata[1]:.2f}, p90 %{customdata[2]:.2f})"
                              + (f"<br>{reference_note}" if is_ref else "") + "<extra>" + setting + "</extra>",
            ))
    fig.update_xaxes(title=LATENCY_AXES[x][0], tickformat="~s")
    fig.update_yaxes(title="latency, batch 1 (ms, median)", rangemode="tozero")
    return _layout(fig, LATENCY_AXES[x][1], height=460)


def training_curves(progress) -> go.Figure:
    """Live loss and accuracy per training step (`shufflenet.training.BatchProgress` records)."""
    steps = [p.step for p in progress]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=steps, y=[p.loss for p in progress], name="loss", line_color=A_COLOR), secondary_y=False)
    fig.add_trace(go.Scatter(x=steps, y=[p.accuracy for p in progress], name="accuracy", line_color=B_COLOR),
                  secondary_y=True)
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="loss (running mean)", secondary_y=False)
    fig.update_yaxes(title="accuracy", range=[0, 1], secondary_y=True)
    return _layout(fig, "Training", height=300)


# --- sending a figure ---------------------------------------------------------------------------
# `st.plotly_chart` turns a figure into a dict (`Figure.to_dict()`, a deep copy of every trace and
# of the layout) on every rerun that shows it, then into JSON. For a cached figure, which never
# changes, that copy is the same each time: `frozen` makes it once (measured in the report of
# bench/classroom.py's CPU probe, a few ms per chart and rerun).

class FrozenFigure(go.Figure):
    """A figure that will not change any more: its `to_dict()` is computed once and then handed
    out as it is, read-only (change a copy, `go.Figure(fig)`, never this one)."""

    def to_dict(self) -> dict:
        cached = self.__dict__.get("_frozen_dict")
        if cached is None:
            cached = super().to_dict()
            self.__dict__["_frozen_dict"] = cached
        return cached


def frozen(fig: go.Figure) -> FrozenFigure:
    """`fig` itself, from now on a FrozenFigure (for figures kept in a cache and shown as they are)."""
    if not isinstance(fig, FrozenFigure):
        fig.__class__ = FrozenFigure
    return fig
