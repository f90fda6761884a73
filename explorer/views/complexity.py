"""Complexity: where the MACs, the parameters and the memory traffic go, per stage, per op type
and per layer, and how many MACs each byte moved pays for (arithmetic intensity)."""

from __future__ import annotations

import streamlit as st

from shufflenet import ShuffleNetConfig
from shufflenet.complexity import op_family

from .. import cache
from .. import format as fmt
from ..sidebar import Selection

STAGE_NAMES = ("stem", "stage2", "stage3", "stage4", "classifier")

TRAFFIC_HELP = ("Bytes read and written at float32, batch 1: every input of the layer, its output and its "
                "weights (batch-norm statistics included), each moved once.")
INTENSITY_HELP = "MACs per byte of memory traffic (0 for layers without MACs); double it for FLOPs per byte."


def _columns(df, skip=()) -> dict:
    """Thousands separators for whole numbers, and readable names for the memory columns."""
    config = fmt.number_columns(df, skip=skip)
    if "name" in df:  # the memory columns come last: keep the layer's name in sight when scrolling to them
        config["name"] = st.column_config.TextColumn("name", pinned=True)
    if "traffic_bytes" in df:
        config["traffic_bytes"] = st.column_config.NumberColumn("memory traffic (bytes)", format="localized",
                                                                help=TRAFFIC_HELP)
    if "traffic_bytes %" in df:
        config["traffic_bytes %"] = st.column_config.NumberColumn("traffic %", format="%.2f",
                                                                  help="Share of the memory traffic shown.")
    if "intensity" in df:
        config["intensity"] = st.column_config.NumberColumn("MACs/byte", format="%.3f", help=INTENSITY_HELP)
    return config


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
    stages = cache.stage_summary(config, measure, include_fc)
    st.dataframe(stages, hide_index=True, width="stretch", column_config=_columns(stages))
    cols = st.columns(2)
    cols[0].plotly_chart(cache.costs_figure(config, "stage", measure, measure, include_fc), key="cx_stage_cost")
    cols[1].plotly_chart(cache.costs_figure(config, "stage", "params", measure, include_fc), key="cx_stage_params")
    st.subheader("Per op type")
    cols = st.columns(2)
    cols[0].plotly_chart(cache.costs_figure(config, "family", measure, measure, include_fc), key="cx_family_cost")
    cols[1].plotly_chart(cache.costs_figure(config, "family", "params", measure, include_fc),
                         key="cx_family_params")

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
    cols = st.columns(2)
    cols[0].plotly_chart(cache.traffic_figure(config, "stage", include_fc), key="cx_stage_traffic")
    cols[1].plotly_chart(cache.intensity_figure(config, "stage", include_fc), key="cx_stage_intensity")
    cols = st.columns(2)
    cols[0].plotly_chart(cache.traffic_figure(config, "op", include_fc), key="cx_op_traffic")
    cols[1].plotly_chart(cache.intensity_figure(config, "op", include_fc), key="cx_op_intensity")

    st.subheader("Per layer")
    cols = st.columns(2)
    stages = cols[0].multiselect("Stages", STAGE_NAMES, key="cx_stages", placeholder="all stages")
    # The paper's network has every op type; fixed options keep the selection valid when g changes.
    ops = cols[1].multiselect("Op types", cache.layer_ops(ShuffleNetConfig()), key="cx_ops", placeholder="all op types",
                              format_func=lambda op: f"{op} ({op_family(op)})")
    layers = cache.layer_costs(config, measure, include_fc, tuple(stages), tuple(ops))
    st.dataframe(layers, hide_index=True, width="stretch", height=420,
                 column_config=_columns(layers, skip=("groups",)))
    st.caption(f"{len(layers)} layers shown.")
    st.download_button("Download these layers as CSV", layers.to_csv(index=False), on_click="ignore",
                       file_name=f"shufflenet_{config.scale:g}x_g{config.groups}_layers.csv", mime="text/csv")
