"""Compare, "another family": the sidebar's network (A) against a network of any family (B) at
the same input and classes: MACs, parameters, memory traffic and arithmetic intensity side by side.

B's family and width are two controls of this section only (not in the URL); the library makes
the table (`shufflenet.families.side_by_side`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shufflenet.config import ShuffleNetConfig
from shufflenet.families import FAMILIES
from shufflenet.families.side_by_side import compare_networks, like, ratios

from .. import tables

PREFIX = "cmpfam_"
FAMILY_KEY = PREFIX + "family"
#: B at first: the network ShuffleNet's paper sets its 1x against (Table 5), MobileNet 0.5.
DEFAULT = ("mobilenet-v1", 0.5)


def scale_key(family: str) -> str:
    """Each family keeps its own width control, so a width one family lacks is never carried over."""
    return f"{PREFIX}scale_{family}"


@st.cache_data(hash_funcs={ShuffleNetConfig: repr}, max_entries=64)
def _tables(a: ShuffleNetConfig, family: str, scale: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    b = like(a, family, scale)
    return compare_networks(a, b), ratios(a, b)


def render(a: ShuffleNetConfig) -> None:
    st.subheader("A vs a network of another family")
    st.markdown("Papers compare networks by MACs; the bytes the layers move (memory traffic) set the speed as "
                "often, and MACs per byte (arithmetic intensity) say which of the two binds. B has A's input and "
                "classes.")
    names = list(FAMILIES)
    with st.container(horizontal=True, gap="small"):
        family = st.selectbox("B: family", names, index=names.index(DEFAULT[0]), key=FAMILY_KEY,
                              format_func=lambda n: f"{FAMILIES[n].title} ({FAMILIES[n].paper})", width=320,
                              help="The family of B. ShuffleNet v1 is the paper's network at g = 3.")
        scales = FAMILIES[family].scales
        start = scales.index(DEFAULT[1]) if family == DEFAULT[0] else scales.index(1.0)
        scale = st.selectbox("B: width", scales, index=start, key=scale_key(family), format_func="{:g}x".format,
                             width=140, help="The width multipliers the family's paper publishes.")
    networks, ratio = _tables(a, family, scale)
    b_label = networks.loc[1, "label"]
    st.caption(f"A = {a.label}, B = {b_label}; both {a.input_size}×{a.input_size}×{a.channels}, "
               f"{a.num_classes} classes.")
    what = f"vs {family} {scale:g}x"
    tables.show(networks, "cmpfam_totals", a, what, pinned=("network",),
                labels={"label": "network name", "family": "family", "scale": "width"})
    st.markdown("**B / A**")
    tables.show(ratio, "cmpfam_ratios", a, what + " ratios",
                formats={key: "%.3f" for key in ratio.columns})
