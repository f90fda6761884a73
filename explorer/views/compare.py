"""Compare: the current network (A) against one chosen here (B), and a sweep over g."""

from __future__ import annotations

import streamlit as st

from shufflenet import ALLOWED_GROUPS
from shufflenet.config import FIELDS

from .. import cache
from .. import format as fmt
from ..sidebar import BLOCK_KEYS, Selection, config_from_state

PREFIX = "cmp_"
# B's limits are the sidebar's: both come from the library's declaration of the fields.
_BLOCKS, _REDUCTION, _SCALE = FIELDS["blocks"], FIELDS["reduction"], FIELDS["scale"]
BLOCKS_RANGE = (_BLOCKS.low, _BLOCKS.high)
REDUCTION_RANGE, REDUCTION_STEP = (_REDUCTION.low, _REDUCTION.high), _REDUCTION.step
SCALE_RANGE, SCALE_STEP = (_SCALE.low, _SCALE.high), _SCALE.step


def _seed_b(selection: Selection) -> None:
    """B starts as A without groups (g = 1), or at g = 3 when A already has g = 1."""
    a = selection.config
    start = {
        "groups": 1 if a.groups != 1 else 3,
        **dict(zip(BLOCK_KEYS, a.blocks)),
        "reduction": a.reduction,
        "scale": a.scale,
    }
    for key, value in start.items():
        st.session_state.setdefault(PREFIX + key, value)


def render(selection: Selection) -> None:
    a = selection.config
    _seed_b(selection)
    st.subheader("A (the sidebar's network) vs B")
    ss = st.session_state
    cols = st.columns(6)
    # Defaults are the current values (see explorer/sidebar.py: a re-created widget takes its default).
    cols[0].selectbox("B: groups g", ALLOWED_GROUPS, index=ALLOWED_GROUPS.index(ss[PREFIX + "groups"]),
                      key=PREFIX + "groups")
    for col, stage, key in zip(cols[1:4], (2, 3, 4), BLOCK_KEYS):
        col.slider(f"B: units in stage {stage}", *BLOCKS_RANGE, value=ss[PREFIX + key], step=1, key=PREFIX + key)
    cols[4].slider("B: reduction", *REDUCTION_RANGE, value=ss[PREFIX + "reduction"], step=REDUCTION_STEP,
                   key=PREFIX + "reduction")
    cols[5].slider("B: width scale", *SCALE_RANGE, value=ss[PREFIX + "scale"], step=SCALE_STEP, format="%.2fx",
                   key=PREFIX + "scale")
    b = config_from_state(st.session_state, prefix=PREFIX)
    st.caption(f"A = {a.label}, units {'/'.join(map(str, a.blocks))}, reduction {a.reduction:g}; "
               f"B = {b.label}, units {'/'.join(map(str, b.blocks))}, reduction {b.reduction:g}; "
               f"both {a.input_size}×{a.input_size}×{a.channels}, {a.num_classes} classes.")

    left, right = st.columns([1, 1])
    totals = cache.compare_totals(a, b)
    left.dataframe(totals, hide_index=True, width="stretch", column_config=fmt.number_columns(totals))
    right.plotly_chart(cache.compare_figure(a, b), key="cmp_stages_chart")
    st.markdown("**Per stage** (Δ = B - A)")
    stages = cache.compare_stages(a, b)
    st.dataframe(stages, hide_index=True, width="stretch", column_config=fmt.number_columns(stages))

    st.subheader(f"Sweep over g at {a.scale:g}x, units {'/'.join(map(str, a.blocks))}")
    st.markdown("The story of the paper's Tables 1 and 2: more groups allow wider layers (more channels "
                "carry information) at about the same MACs; parameters and activation memory grow.")
    figs = cache.sweep_figures(a)
    for row in (("macs", "params"), ("memory", "widths")):
        cols = st.columns(2)
        for col, name in zip(cols, row):
            col.plotly_chart(figs[name], key=f"sweep_{name}")
    sweep = cache.sweep_groups(a)
    st.dataframe(sweep, hide_index=True, width="stretch", column_config=fmt.number_columns(sweep, skip=("groups",)))
