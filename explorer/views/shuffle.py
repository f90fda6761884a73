"""Channel shuffle: the permutation for the current g, and paper Fig. 1's argument computed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shufflenet.analysis import default_shuffle_width, shuffle_width_choices

from .. import cache
from ..sidebar import Selection


def _mixing_table(matrix, groups: int) -> pd.DataFrame:
    return pd.DataFrame(matrix, index=[f"next group {j}" for j in range(groups)],
                        columns=[f"from group {i}" for i in range(groups)])


def render(selection: Selection) -> None:
    g = selection.config.groups
    st.subheader(f"The channel shuffle for g = {g} (paper Sec. 3.1)")
    st.markdown(
        "Reshape the channel axis to (g, n), transpose it to (n, g), flatten: output channel "
        "*k·g + j* takes input channel *j·n + k*. Each group of the previous group convolution "
        "(colour) is dealt out over all groups of the next one."
    )
    if g == 1:
        st.info("With g = 1 there is a single group: the shuffle is the identity, and the model leaves it "
                "out. Choose g > 1 in the sidebar to see it work.")
    choices = shuffle_width_choices(g)
    # The key holds g, so a width chosen for another g never has to fit these choices.
    width = st.select_slider("Layer width (channels)", choices, value=default_shuffle_width(g),
                             key=f"shuffle_width_g{g}",
                             help="Any multiple of g; the model's own layers have hundreds of channels.")
    st.plotly_chart(cache.shuffle_figure(width, g), key="shuffle_wiring")

    st.subheader("Why shuffle? Paper Fig. 1, computed")
    st.markdown(
        "Two 1×1 group convolutions stacked, each with g groups. A cell is coloured when that input "
        "channel of the first convolution can influence that output channel of the second "
        "(the colour is the input's group); white means no path. These matrices are the boolean "
        "product of the two convolutions' block-diagonal connectivity, with the permutation in between."
    )
    st.plotly_chart(cache.flow_figure(width, g), key="shuffle_flow")
    st.dataframe(cache.flow_table(width, g), hide_index=True, width="stretch")
    without, with_shuffle = cache.mixing_matrices(width, g)
    left, right = st.columns(2)
    left.markdown("**Channels each next group reads from each previous group, without shuffle**")
    left.dataframe(_mixing_table(without, g), width="stretch")
    right.markdown("**... and with shuffle**")
    right.dataframe(_mixing_table(with_shuffle, g), width="stretch")
    st.caption(
        "Full mixing needs at least g channels per group (width ≥ g²): with fewer, a group of the next "
        "convolution cannot take a channel from every group. Paper Table 3: removing the shuffle costs "
        "1.3 to 5.8 points of top-1 error."
    )
