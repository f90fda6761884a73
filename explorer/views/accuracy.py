"""Accuracy: what a configuration gains. The measured Fashion-MNIST error of every cell of our
small-scale Tables 2 and 3 against its MACs, beside the paper's ImageNet Tables 2 and 3; a
click on a point sets the sidebar to that network."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shufflenet import experiment, paper
from shufflenet.config import ShuffleNetConfig

from .. import figures_accuracy as figs
from ..state import TASK_BY_KEY, Selection, apply_configuration, choice

MEASURED_KEY, PAPER_KEY = "acc_measured_chart", "acc_paper_chart"
#: The charts' horizontal axis: key (also the URL's `axis=`) -> what the control shows.
AXES = {"groups": "Groups g", "macs": "MACs"}
AXIS_KEY = "acc_axis"
#: This view's choices in the URL (collected by `explorer.url`).
URL_KEYS = {"axis": choice("Accuracy", AXIS_KEY, tuple(AXES), "groups", "the accuracy charts' horizontal axis")}


def config_for_point(event, task_key: str) -> ShuffleNetConfig | None:
    """The network of the first selected point of a chart event (its customdata is groups, width,
    shuffle), on the task's preset input; None when nothing usable is selected."""
    points = (event or {}).get("selection", {}).get("points", [])
    data = points[0].get("customdata") if points else None
    if not data or len(data) < 3:
        return None
    preset = TASK_BY_KEY[task_key]
    try:
        return ShuffleNetConfig(groups=int(data[0]), scale=float(data[1]), shuffle=bool(data[2]),
                                input_size=preset.input_size, channels=preset.channels,
                                num_classes=preset.num_classes)
    except (TypeError, ValueError):
        return None


def _select(key: str, task_key: str) -> None:
    """A click on a point: that cell's network in the sidebar (on the task the point belongs to)."""
    config = config_for_point(st.session_state.get(key), task_key)
    if config is not None:
        apply_configuration(config, task_key=task_key)


def _cells_table(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "width": [f"{s:g}x" for s in df["scale"]], "g": df["groups"],
        "channel shuffle": ["on" if s else "off" for s in df["shuffle"]],
        "MACs": df["macs"], "params": df["params"], "mean error (%)": df["error"].round(2),
        "std (%)": df["error_std"].round(2), "seeds": df["seeds"],
    })


def render(selection: Selection) -> None:
    st.markdown("The paper's argument in two halves: the other views show what a network **costs**; this one "
                "shows what it **gains**. Left, measured here: every cell of our small-scale Tables 2 and 3 "
                "(Fashion-MNIST, one fixed recipe, several seeds each). Right, the paper's ImageNet Tables 2 and 3. "
                "Click a point to open that network in the sidebar.")
    try:
        summary = experiment.shipped_results()
    except experiment.ExperimentError as exc:
        st.error(f"The shipped results file cannot be read: {exc}")
        summary = None
    ss = st.session_state
    axis = st.segmented_control("Horizontal axis", list(AXES), format_func=AXES.get, required=True,
                                default=ss.get(AXIS_KEY, "groups"), key=AXIS_KEY,
                                help="Groups g lays the cells out as the paper's Tables 2 and 3 do; MACs places "
                                     "each network at its cost.")
    left, right = st.columns(2)
    with left:
        if summary is None:
            st.info("No measured results ship with this copy yet. Train them with `python -m shufflenet experiment "
                    "all --seeds 3 --out runs/grid`, then `python -m shufflenet publish runs/grid`.")
        else:
            df = experiment.accuracy_points(summary)
            title = "Measured: Fashion-MNIST, 32×32 (mean ± std over seeds)"
            fig = (figs.error_vs_groups(df, title, error_std="error_std") if axis == "groups" else
                   figs.error_vs_cost(df, "macs", "MACs (multiply-adds, FC included)", title, error_std="error_std"))
            st.plotly_chart(fig, key=MEASURED_KEY, on_select=lambda: _select(MEASURED_KEY, "fashion-mnist"),
                            selection_mode="points")
    with right:
        points = pd.DataFrame(paper.imagenet_points())
        points["macs"] = points["mflops"] * 1_000_000
        points["error_std"] = None
        title = "Paper: ImageNet, 224×224 (Tables 2 and 3)"
        fig = (figs.error_vs_groups(points, title) if axis == "groups" else
               figs.error_vs_cost(points, "macs", "MFLOPs as the paper counts them (multiply-adds)", title))
        st.plotly_chart(fig, key=PAPER_KEY, on_select=lambda: _select(PAPER_KEY, "imagenet"), selection_mode="points")
        st.caption(f"{paper.CITATION}. The paper gives one complexity budget per width (140, 38 and 13 MFLOPs), "
                   "so on the MACs axis its "
                   "points of one width share an x value; no seeds or spreads are published.")
    if summary is None:
        return
    st.subheader("What the measurements say")
    for line in experiment.trends(summary):
        st.markdown(f"- {line}")
    st.caption("A difference counts only when it exceeds two standard errors of the difference of the means "
               "(sample standard deviations over seeds). Recipe: " + ", ".join(
                   f"{k.replace('_', ' ')} {v}" for k, v in summary["recipe"].items()) + ". Compute: "
               f"{summary['compute_seconds'] / 3600:.1f} h of training on this machine's CPU.")
    table = _cells_table(experiment.accuracy_points(summary))
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"MACs": st.column_config.NumberColumn(format="localized"),
                                "params": st.column_config.NumberColumn(format="localized")})
    st.download_button("Download the cells as CSV", table.to_csv(index=False), file_name="shufflenet-fmnist-cells.csv",
                       mime="text/csv", on_click="ignore", key="acc_csv")
