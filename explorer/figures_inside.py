"""Plotly figures of the Inside view: a layer's channels as framed tiles, and the energy per group.

Presentation only: which channels, in which order, in which frame and colour, and every value
drawn come from `shufflenet.activations` (a `Panel`, an energy table). Here they are only placed
on a grid and painted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from shufflenet.activations import Panel

from .figures import GROUP_COLORS

NEUTRAL = "#8C8C8C"  # tiles and frames that belong to no single group
#: Tiles per row of a frame at most; a larger group wraps.
COLUMNS = 16
#: Target on-screen side of one tile, the widest a panel is drawn and the height of a frame's label
#: (pixels).
TILE_PX, PANEL_PX, LABEL_PX = 40, 380, 18


def color(index: int) -> str:
    return NEUTRAL if index < 0 else GROUP_COLORS[index % len(GROUP_COLORS)]


def _tint(index: int, alpha: float) -> str:
    """The colour of `index` as a translucent fill."""
    hex_ = color(index).lstrip("#")
    r, g, b = (int(hex_[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _swatch(index: int) -> str:
    return "" if index < 0 else f"<span style='color:{color(index)}'>■</span> "


def tiles(panel: Panel, title: str) -> go.Figure:
    """The panel's tiles, framed: frames side by side while they fit (their label above each),
    each tile outlined in its group's colour (grey where it mixes groups), grey levels from the
    panel's display values (black 0 to white; signed layers: black minus, mid-grey 0, white plus)."""
    t, h, w = panel.tiles.shape
    side = max(h, w)
    gap = max(1, round(side / 4))
    counts = np.bincount(panel.frame_of, minlength=len(panel.frames))
    fullest = int(max(1, counts.max()))
    columns = -(-fullest // -(-fullest // COLUMNS))  # tiles per row of a frame: rows of equal length
    per_row = int(max(1, min(len(panel.frames), COLUMNS // columns)))  # frames per row of frames
    frame_w = columns * (w + gap) + gap
    width = per_row * frame_w + (per_row - 1) * 2 * gap
    unit_px = min(TILE_PX / side, PANEL_PX / width)
    label = int(np.ceil(LABEL_PX / unit_px))  # room for a frame's label above it, in map pixels
    tile_rows = np.maximum(1, -(-counts // columns))
    frame_h = tile_rows * (h + gap) + gap
    band_h = [int(frame_h[i:i + per_row].max()) for i in range(0, len(panel.frames), per_row)]
    band_top = np.concatenate([[0], np.cumsum(np.add(band_h, label + 2 * gap))[:-1]]) + label
    left = [(f % per_row) * (frame_w + 2 * gap) for f in range(len(panel.frames))]
    top = [int(band_top[f // per_row]) for f in range(len(panel.frames))]
    height = int(band_top[-1] + band_h[-1])

    z = np.full((height, width), np.nan, dtype=np.float32)
    shapes, annotations, xs, ys = [], [], [], []
    outlines: dict[int, tuple[list, list]] = {}  # colour -> the outlines of its tiles, as one line trace
    slot = np.zeros(len(panel.frames), dtype=int)
    for i in range(t):
        f = int(panel.frame_of[i])
        r, c = divmod(int(slot[f]), columns)
        slot[f] += 1
        x0, y0 = left[f] + gap + c * (w + gap), top[f] + gap + r * (h + gap)
        z[y0:y0 + h, x0:x0 + w] = panel.tiles[i]
        xs.append(x0 + (w - 1) / 2)
        ys.append(y0 + (h - 1) / 2)
        a, b, top_, bottom = x0 - 0.5, x0 + w - 0.5, y0 - 0.5, y0 + h - 0.5
        outline = outlines.setdefault(int(panel.colors[i]), ([], []))
        outline[0].extend((a, b, b, a, a, np.nan))
        outline[1].extend((top_, top_, bottom, bottom, top_, np.nan))
    for f, frame in enumerate(panel.frames):
        shapes.append(dict(type="rect", name=f"frame {f}", x0=left[f] - 0.5, x1=left[f] + frame_w - 0.5,
                           y0=top[f] - 0.5, y1=top[f] + frame_h[f] - 0.5, layer="below",
                           line=dict(color=color(frame.color), width=2),
                           fillcolor=_tint(frame.color, 0.2 if frame.color >= 0 else 0.12)))
        annotations.append(dict(x=left[f] - 0.5, y=top[f] - 0.5, xref="x", yref="y", xanchor="left",
                                yanchor="bottom", showarrow=False, text=f"{_swatch(frame.color)}{frame.label}",
                                font=dict(size=12, color="#31333F")))

    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=z, colorscale="gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip"))
    # One line trace per colour, not one shape per tile: a shape is a dict Plotly copies and walks
    # on every rerun, and hundreds of them cost most of a warm rerun.
    for index, (ox, oy) in sorted(outlines.items()):
        fig.add_trace(go.Scatter(x=np.array(ox), y=np.array(oy), mode="lines", line=dict(color=color(index), width=3),
                                 hoverinfo="skip", showlegend=False, name=f"outlines {index}"))
    source = [f" ← channel {s} of the first 1×1 conv" if s >= 0 and s != ch else ""
              for s, ch in zip(panel.sources, panel.channels)]
    group = [f", group {c}" if c >= 0 else "" for c in panel.colors]
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", marker=dict(size=max(8, TILE_PX // 2), opacity=0), showlegend=False,
        customdata=np.column_stack([panel.channels, panel.sources, panel.colors, panel.energies]),
        text=[f"channel {ch}{s}{g}" for ch, s, g in zip(panel.channels, source, group)],
        hovertemplate="%{text}<br>mean squared activation %{customdata[3]:.4g}<extra></extra>",
    ))
    fig.update_xaxes(visible=False, range=[-0.5 - gap / 2, width - 0.5 + gap / 2], constrain="domain")
    fig.update_yaxes(visible=False, range=[height - 0.5 + gap / 2, -0.5 - gap / 2], scaleanchor="x", scaleratio=1,
                     constrain="domain")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), shapes=shapes, annotations=annotations,
                      plot_bgcolor="white", height=int((height + gap) * unit_px + 44),
                      margin=dict(l=4, r=4, t=36, b=4), meta={"layer": panel.layer}, hovermode="closest")
    return fig


def energy(table: pd.DataFrame, title: str) -> go.Figure:
    """Mean squared activation per group: solid bars after the first 1x1 conv, hatched after the
    depthwise conv, each in its group's colour."""
    x = [f"group {int(g)}" for g in table["group"]]
    colors = [color(int(g)) for g in table["group"]]
    first, second = table.columns[1], table.columns[2]
    fig = go.Figure([
        go.Bar(x=x, y=table[first], name=first, marker=dict(color=colors, line=dict(color="#333333", width=1)),
               hovertemplate="%{x}: %{y:.4g}<extra>" + first + "</extra>"),
        go.Bar(x=x, y=table[second], name=second,
               marker=dict(color="white", line=dict(color=colors, width=2),
                           pattern=dict(shape="/", fgcolor=colors, solidity=0.45)),
               hovertemplate="%{x}: %{y:.4g}<extra>" + second + "</extra>"),
    ])
    fig.update_layout(barmode="group", title=dict(text=title, font=dict(size=14)), height=360,
                      margin=dict(l=10, r=10, t=36, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0.0))
    fig.update_yaxes(title="mean squared activation", rangemode="tozero")
    return fig
