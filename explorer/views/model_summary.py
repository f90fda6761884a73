"""The built Keras model, as the page shows it: the state of its background build, the check of
the analysis against it, and a compact `model.summary()` table.

Pages never wait for a build: the background builder (`shufflenet.serving.BackgroundBuilder`)
builds after the page is sent; until then a small fragment says how far it is and polls, and
once the model is there it reruns the page, which then shows the result without polling.
`render(config)` draws the summary table (for the Architecture view); `check(config, figures)`
the Overview's line that compares the built model's counts with the analysis'.
"""

from __future__ import annotations

import streamlit as st

from shufflenet import serving
from shufflenet.config import ShuffleNetConfig

from .. import cache
from .. import format as fmt

#: Seconds between two looks at a build in progress (each a tiny fragment run).
POLL_SECONDS = 1.5
#: Marks what the Overview shows once the counts agree (bench/classroom.py reads it).
CHECKED = "Checked against the built Keras model"


def _pending_text(status: serving.BuildStatus) -> str:
    if status.state == "building":
        return "Building the Keras model of this network in the background..."
    if status.state == "queued":
        ahead = f", {status.ahead} build{'s' if status.ahead != 1 else ''} before it" if status.ahead else ""
        return f"The Keras model of this network is queued for a background build{ahead}..."
    return "The Keras model of this network will be built in the background..."


@st.fragment(run_every=POLL_SECONDS)
def _wait(config: ShuffleNetConfig, what: str) -> None:
    """While the build is pending: say so, look again every POLL_SECONDS; rerun the page once done."""
    status = cache.request_model(config)  # also renews a request that expired
    if status.state in serving.FINAL_STATES:
        st.rerun()
    st.caption(f":material/hourglass_top: {_pending_text(status)} {what}")


def _final(status: serving.BuildStatus) -> bool:
    return status.state in serving.FINAL_STATES


def check(config: ShuffleNetConfig, figures: dict) -> None:
    """The built model's own trainable-parameter and layer counts next to the analysis' (`figures`
    from `analysis.key_figures`), marked when they agree and an error when they do not."""
    status = cache.request_model(config)
    if not _final(status):
        _wait(config, "Its parameter and layer counts are then checked against the figures above.")
    elif status.state == "too large":
        st.caption("The server does not build a model this large, so these figures are not checked against "
                   "a Keras model (the analysis does not need one).")
    elif status.state == "on demand":
        st.caption(f"Not checked against a Keras model yet: {status.message} The check appears here once it is built.")
    elif status.state == "failed":
        st.error(f"Building the Keras model of this network failed ({status.message}), so these figures are not "
                 "checked against it.")
    else:
        facts = status.facts
        problems = serving.facts_problems(facts, figures)
        if problems:
            st.error("The built Keras model disagrees with the analysis: " + "; ".join(problems) + ". The figures "
                     "above are the analysis'; this is a bug, please report this configuration's link.")
        else:
            st.caption(f":material/check_circle: {CHECKED}: {fmt.count(facts.trainable)} trainable parameters and "
                       f"{fmt.count(facts.layers)} layers, as above ({fmt.count(facts.non_trainable)} batch-norm "
                       "statistics too).")


def render(config: ShuffleNetConfig) -> None:
    """A compact `model.summary()` of the built model: layer, type, output shape, parameters."""
    status = cache.request_model(config)
    if not _final(status):
        _wait(config, "Its layer table appears here when it is built.")
        return
    if status.state in ("too large", "on demand"):
        st.info(status.message)
        return
    if status.state == "failed":
        st.error(f"Building the Keras model failed ({status.message}).")
        return
    facts = status.facts
    st.dataframe(cache.model_summary(config), hide_index=True, width="stretch",
                 column_config={"params": st.column_config.NumberColumn(format="localized")})
    st.caption(f"The built Keras model: {fmt.count(facts.layers)} layers (the input left out), "
               f"{fmt.count(facts.trainable)} trainable parameters and {fmt.count(facts.non_trainable)} batch-norm "
               "statistics. Output shapes leave out the batch.")
