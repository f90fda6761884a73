"""Architecture: the macro diagram, one unit of a chosen stage at stride 2 and stride 1, and
every layer of a chosen stage; each downloadable as DOT, and as SVG where `dot` exists."""

from __future__ import annotations

import streamlit as st

from .. import cache
from ..sidebar import Selection

FULL_STAGES = {"stem": "Stem", "stage2": "Stage 2", "stage3": "Stage 3", "stage4": "Stage 4",
               "classifier": "Classifier"}


def _downloads(config, kind: str, file_stem: str, stage=None, stride: int = 1) -> None:
    dot = cache.diagram_dot(config, kind, stage, stride)
    cols = st.columns(2)
    cols[0].download_button("Download DOT", dot, file_name=f"{file_stem}.dot", mime="text/vnd.graphviz",
                            on_click="ignore", key=f"dot_{file_stem}")
    if cache.dot_available():
        cols[1].download_button(
            "Download SVG", lambda: cache.diagram_svg(config, kind, stage, stride), file_name=f"{file_stem}.svg",
            mime="image/svg+xml", on_click="ignore", key=f"svg_{file_stem}",
        )
    else:
        cols[1].caption("SVG export needs Graphviz's `dot` (`apt-get install graphviz`).")


def render(selection: Selection) -> None:
    config = selection.config
    slug = f"shufflenet_{config.scale:g}x_g{config.groups}"

    st.subheader("The whole network (paper Table 1)")
    st.graphviz_chart(cache.diagram_dot(config, "macro"))
    _downloads(config, "macro", f"{slug}_macro")

    st.subheader("One unit (paper Fig. 2)")
    stage = st.selectbox("Stage", (2, 3, 4), index=1, key="arch_stage", format_func=lambda s: f"Stage {s}")
    left, right = st.columns(2)
    with left:
        st.markdown("**Stride 2** (the stage's first unit, Fig. 2c)")
        st.graphviz_chart(cache.diagram_dot(config, "micro", stage, 2))
        _downloads(config, "micro", f"{slug}_stage{stage}_stride2", stage, 2)
    with right:
        st.markdown("**Stride 1** (every other unit, Fig. 2b)")
        if config.blocks[stage - 2] > 1:
            st.graphviz_chart(cache.diagram_dot(config, "micro", stage, 1))
            _downloads(config, "micro", f"{slug}_stage{stage}_stride1", stage, 1)
        else:
            st.info(f"Stage {stage} has a single unit, so it has no stride-1 unit. "
                    "Raise its number of units in the sidebar to see one.")

    st.subheader("Every layer of a stage")
    part = st.selectbox("Part of the network", list(FULL_STAGES), index=1, key="arch_full_stage",
                        format_func=FULL_STAGES.get)
    stage_arg = int(part.removeprefix("stage")) if part.startswith("stage") else part
    st.graphviz_chart(cache.diagram_dot(config, "full", stage_arg))
    _downloads(config, "full", f"{slug}_{part}_layers", stage_arg)
