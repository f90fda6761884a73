"""Complexity: where the MACs and the parameters go, per stage, per op type and per layer."""

from __future__ import annotations

import streamlit as st

from shufflenet import ShuffleNetConfig
from shufflenet.complexity import op_family

from .. import cache
from .. import format as fmt
from ..sidebar import Selection

STAGE_NAMES = ("stem", "stage2", "stage3", "stage4", "classifier")


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
    st.dataframe(stages, hide_index=True, width="stretch", column_config=fmt.number_columns(stages))
    cols = st.columns(2)
    cols[0].plotly_chart(cache.costs_figure(config, "stage", measure, measure, include_fc), key="cx_stage_cost")
    cols[1].plotly_chart(cache.costs_figure(config, "stage", "params", measure, include_fc), key="cx_stage_params")
    st.subheader("Per op type")
    cols = st.columns(2)
    cols[0].plotly_chart(cache.costs_figure(config, "family", measure, measure, include_fc), key="cx_family_cost")
    cols[1].plotly_chart(cache.costs_figure(config, "family", "params", measure, include_fc),
                         key="cx_family_params")

    st.subheader("Per layer")
    cols = st.columns(2)
    stages = cols[0].multiselect("Stages", STAGE_NAMES, key="cx_stages", placeholder="all stages")
    # The paper's network has every op type; fixed options keep the selection valid when g changes.
    ops = cols[1].multiselect("Op types", cache.layer_ops(ShuffleNetConfig()), key="cx_ops", placeholder="all op types",
                              format_func=lambda op: f"{op} ({op_family(op)})")
    layers = cache.layer_costs(config, measure, include_fc, tuple(stages), tuple(ops))
    st.dataframe(layers, hide_index=True, width="stretch", height=420,
                 column_config=fmt.number_columns(layers, skip=("groups",)))
    st.caption(f"{len(layers)} layers shown.")
    st.download_button("Download these layers as CSV", layers.to_csv(index=False), on_click="ignore",
                       file_name=f"shufflenet_{config.scale:g}x_g{config.groups}_layers.csv", mime="text/csv")
