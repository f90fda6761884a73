"""Channel shuffle: the permutation for the current g, and paper Fig. 1's argument computed."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from shufflenet.analysis import default_shuffle_width, shuffle_width_choices

from .. import cache, charts, tables
from ..state import Selection, ViewKey

#: The width widget: one key per g, so a width never has to fit another g's choices.
SHUFFLE_WIDTH_KEY = "shuffle_width_g{}"


def _parse_width(text: str, config, _state):
    choices = shuffle_width_choices(config.groups)
    return int(text) if re.fullmatch(r"[0-9]{1,4}", text) and int(text) in choices else None


#: This view's choices in the URL (collected by `explorer.url`).
URL_KEYS = {
    "width": ViewKey(
        "Channel shuffle", lambda config, _: SHUFFLE_WIDTH_KEY.format(config.groups), _parse_width,
        lambda config, _: (f"it must be a multiple of g = {config.groups} from {config.groups} to "
                           f"{shuffle_width_choices(config.groups)[-1]}"),
        lambda config, _: default_shuffle_width(config.groups),
        lambda config, _: f"layer width for g = {config.groups}, {default_shuffle_width(config.groups)}"),
}


def _mixing_table(matrix, groups: int) -> pd.DataFrame:
    """Rows: the groups of the next group conv; columns: the groups of the previous one. Shown
    with short labels (a crosstab's "next \\ from" corner), so two g = 8 tables fit side by side."""
    return pd.DataFrame(matrix, index=pd.Index([str(j) for j in range(groups)], name="next"),
                        columns=[f"from {i}" for i in range(groups)])


def render(selection: Selection) -> None:
    config = selection.config
    g = config.groups
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
    # The key holds g, so a width chosen for another g never has to fit these choices; the default
    # is the current value (see explorer/url.py), which a link may have set.
    key = SHUFFLE_WIDTH_KEY.format(g)
    if st.session_state.get(key) not in choices:
        st.session_state[key] = default_shuffle_width(g)
    width = st.select_slider("Layer width (channels)", choices, value=st.session_state[key], key=key,
                             help="Any multiple of g; the model's own layers have hundreds of channels.")
    charts.plotly(cache.shuffle_figure(width, g), "shuffle_wiring", config, f"shuffle {width} channels")

    st.subheader("Why shuffle? Paper Fig. 1, computed")
    st.markdown(
        "Two 1×1 group convolutions stacked, each with g groups. A cell is coloured when that input "
        "channel of the first convolution can influence that output channel of the second "
        "(the colour is the input's group); white means no path. These matrices are the boolean "
        "product of the two convolutions' block-diagonal connectivity, with the permutation in between."
    )
    charts.plotly(cache.flow_figure(width, g), "shuffle_flow", config, f"fig1 {width} channels")
    tables.show(cache.flow_table(width, g), "shuffle_flow_table", config, f"fig1 {width} channels")
    without, with_shuffle = cache.mixing_matrices(width, g)
    st.markdown("**Channels each group of the next conv (row) reads from each group of the previous one "
                "(column)**")
    # Side by side where they fit, one under the other where they do not: never cut.
    with st.container(horizontal=True, gap="large"):
        for name, matrix in (("without shuffle", without), ("with shuffle", with_shuffle)):
            with st.container(width="content", gap="small"):
                st.markdown(f"*{name}*")
                tables.show(_mixing_table(matrix, g), f"shuffle_mixing_{name.split()[0]}", config,
                            f"mixing {name} {width} channels", index=True, index_label="next \\ from",
                            labels={f"from {i}": str(i) for i in range(g)}, width="content")
    st.caption(
        "Full mixing needs at least g channels per group (width ≥ g²): with fewer, a group of the next "
        "convolution cannot take a channel from every group. Paper Table 3: removing the shuffle costs "
        "1.3 to 5.8 points of top-1 error."
    )
