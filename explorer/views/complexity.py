"""Complexity: where the MACs, the parameters and the memory traffic go, per stage, per op type
and per layer, and how many MACs each byte moved pays for (arithmetic intensity)."""

from __future__ import annotations

import functools

import streamlit as st

from shufflenet import ShuffleNetConfig
from shufflenet.analysis import layer_ops
from shufflenet.complexity import op_family
from shufflenet.naming import PARTS

from .. import cache, charts, tables
from .. import format as fmt
from ..state import Selection, several, switch


@functools.cache
def _paper_ops() -> tuple[str, ...]:
    """The op-type filter's choices: those of the paper's network, which has every op type."""
    return tuple(layer_ops(ShuffleNetConfig()))


#: This view's choices in the URL (collected by `explorer.url`).
URL_KEYS = {
    "flops": switch("Complexity", "cx_flops", False, "FLOPs counting"),
    "fc": switch("Complexity", "cx_include_fc", True, "FC layer included"),
    "stages": several("Complexity", "cx_stages", lambda: PARTS, "layers of all stages"),
    "ops": several("Complexity", "cx_ops", _paper_ops, "layers of all op types"),
}


TRAFFIC_HELP = ("Bytes read and written at float32, batch 1: every input of the layer, its output and its "
                "weights (batch-norm statistics included), each moved once.")
INTENSITY_HELP = "MACs per byte of memory traffic (0 for layers without MACs); double it for FLOPs per byte."


#: Tooltips of the tables' memory columns (their labels and formats are `explorer.tables`').
HELP = {"traffic_bytes": TRAFFIC_HELP, "traffic_bytes %": "Share of the memory traffic shown.",
        "intensity": INTENSITY_HELP}


def render(selection: Selection) -> None:
    config = selection.config
    left, right = st.columns(2)
    flops = left.toggle("Count FLOPs (2 × MACs)", key="cx_flops",
                        help="The paper's FLOPs are multiply-adds (MACs); many tools count a multiply and "
                             "an add separately, which doubles the number.")
    include_fc = right.toggle("Include the FC layer", value=True, key="cx_include_fc",
                              help="Paper Table 1's complexity leaves the classifier's FC layer out.")
    measure = "FLOPs" if flops else "MACs"

    st.subheader("Per stage")
    fc = "" if include_fc else " no fc"
    stages = cache.stage_summary(config, measure, include_fc)
    tables.show(stages, "cx_stage_table", config, f"stage {measure}{fc}", help=HELP, pinned=("stage",))
    cols = st.columns(2)
    charts.plotly(cache.costs_figure(config, "stage", measure, measure, include_fc), "cx_stage_cost", config,
                  f"stage {measure}{fc}", where=cols[0])
    charts.plotly(cache.costs_figure(config, "stage", "params", measure, include_fc), "cx_stage_params", config,
                  f"stage params{fc}", where=cols[1])
    st.subheader("Per op type")
    cols = st.columns(2)
    charts.plotly(cache.costs_figure(config, "family", measure, measure, include_fc), "cx_family_cost", config,
                  f"op type {measure}{fc}", where=cols[0])
    charts.plotly(cache.costs_figure(config, "family", "params", measure, include_fc), "cx_family_params", config,
                  f"op type params{fc}", where=cols[1])

    st.subheader("Memory traffic and arithmetic intensity")
    figures = cache.key_figures(config)
    st.markdown(
        "MACs are not the whole cost: every layer also reads its inputs and weights from memory and writes its "
        "output. A layer that does few MACs per byte it moves waits for memory, which is why 1×1 group and "
        "depthwise convolutions often run slower than their MACs promise, and why batch norm, ReLU, the shuffle, "
        "padding and the additions, with no MACs at all, still take time. "
        "Counting each layer's inputs, weights and output once (float32, batch 1), this network moves "
        f"**{fmt.nbytes(figures['traffic_bytes'])}** per picture for "
        f"{fmt.millions(figures['macs'])} MACs (FC included): **{figures['intensity']:.2f} MACs per byte**.",
        help=TRAFFIC_HELP,
    )
    for by in ("stage", "op"):
        cols = st.columns(2)
        charts.plotly(cache.traffic_figure(config, by, include_fc), f"cx_{by}_traffic", config,
                      f"{by} traffic{fc}", where=cols[0])
        charts.plotly(cache.intensity_figure(config, by, include_fc), f"cx_{by}_intensity", config,
                      f"{by} intensity{fc}", where=cols[1])

    st.subheader("Per layer")
    cols = st.columns(2)
    stages = cols[0].multiselect("Stages", PARTS, key="cx_stages", placeholder="all stages")
    # The paper's network has every op type; fixed options keep the selection valid when g changes.
    ops = cols[1].multiselect("Op types", cache.layer_ops(ShuffleNetConfig()), key="cx_ops", placeholder="all op types",
                              format_func=lambda op: f"{op} ({op_family(op)})")
    layers = cache.layer_costs(config, measure, include_fc, tuple(stages), tuple(ops))
    tables.show(layers, "cx_layer_table", config, f"layers {measure}{fc}", help=HELP, pinned=("name",), height=420)
    st.caption(f"{len(layers)} layers shown.")
