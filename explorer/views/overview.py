"""Overview: the key figures (checked against the built Keras model once the background builder has
built it), the paper's Table 1 for this network, and the idea in plain words."""

from __future__ import annotations

import streamlit as st

from shufflenet.analysis import PAPER_COMPLEXITY_MFLOPS

from .. import cache
from .. import format as fmt
from ..state import Selection
from . import model_summary

EXPLANATION = """
**Why groups?** In a ResNeXt-style bottleneck most of the cost sits in the 1×1 (pointwise)
convolutions. ShuffleNet splits their channels into *g* groups, and each group's outputs are
computed only from the same group's inputs, which divides their cost by *g*
(**Sec. 3.1**). At the same budget, more groups allow more channels (Table 1).

**Why shuffle?** Stack two group convolutions and each output group only ever sees one input
group: information never crosses between groups, which weakens the representation
(**Fig. 1a**). The *channel shuffle* fixes this for free: reshape the channels to
(g, n), transpose to (n, g), flatten. Each group of the next convolution then receives channels
from every group of the previous one (**Fig. 1b, c**, Sec. 3.1); see the *Channel shuffle*
view, where this is computed.

**The unit.** 1×1 group conv → channel shuffle → 3×3 depthwise conv → 1×1 group conv, with an
identity shortcut (stride 1), or a 3×3 average-pooled shortcut concatenated to the branch
(stride 2) (**Sec. 3.2, Fig. 2**). Stage 2's first 1×1 conv is not grouped: it has only 24 input
channels (**Sec. 3.3**).

**Counting.** The paper's "FLOPs" are multiply-adds (MACs). Table 1's complexity counts every
convolution and leaves out the fully connected layer; both figures are shown above.
"""


def render(selection: Selection) -> None:
    config = selection.config
    figures = cache.key_figures(config)
    st.subheader(f"{config.label}: {config.input_size}×{config.input_size}×{config.channels} input, "
                 f"{config.num_classes} classes")
    top = st.columns(3)
    top[0].metric(
        "MACs without FC (Table 1)", fmt.count(figures["conv_macs"]),
        help=f"{fmt.millions(figures['conv_macs'])} multiply-adds in the convolutions, counted as the "
             f"paper's Table 1 does (it prints {PAPER_COMPLEXITY_MFLOPS[config.groups]} MFLOPs for 1x, "
             f"g = {config.groups}, 224×224; its FLOPs are multiply-adds).",
    )
    top[1].metric("MACs with FC", fmt.count(figures["macs"]),
                  help=f"Adds the classifier's {fmt.count(figures['fc_macs'])} MACs.")
    top[2].metric("Parameters", fmt.count(figures["params"]),
                  help=f"Trainable; plus {fmt.count(figures['non_trainable'])} batch-norm statistics.")
    bottom = st.columns(3)
    bottom[0].metric("Model size", fmt.nbytes(figures["model_bytes"]),
                     help="All weights, batch-norm statistics included, at float32.")
    bottom[1].metric("Layers", fmt.count(figures["layers"]), help="Keras layers, the input left out.")
    bottom[2].metric("Activation memory", fmt.nbytes(figures["activation_bytes"]),
                     help="All layer outputs of one picture at float32 (an upper bound on what inference keeps).")
    model_summary.check(config, figures)  # the built Keras model's own counts, once built in the background

    st.markdown(f"#### Paper Table 1 across g (same scale, units and input; g = {config.groups} ticked)")
    table = cache.table1_by_groups(config)
    # A checkbox column marks the current g: a pandas Styler highlight cost ~40 ms on every rerun.
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_order=["current", *(c for c in table.columns if c != "current")],
        column_config={
            "current": st.column_config.CheckboxColumn("this g", help="The sidebar's network", width="small"),
            "groups": st.column_config.NumberColumn("g"),
            "stem": st.column_config.NumberColumn("Conv1"),
            "conv_macs": st.column_config.NumberColumn("MACs without FC", format="localized"),
            "fc_macs": st.column_config.NumberColumn("FC MACs", format="localized"),
            "params": st.column_config.NumberColumn(format="localized"),
        },
    )
    st.caption("The paper's column is for 1x, 224×224 and 4/8/4 units; at those settings the MACs column "
               "rounds to it exactly. Channels are the output channels of each stage.")
    st.markdown("#### Paper Table 1 layout for this network")
    st.dataframe(cache.table1_layout(config), hide_index=True, width="stretch")
    st.markdown("#### Group convolution and channel shuffle in plain words")
    st.markdown(EXPLANATION)
