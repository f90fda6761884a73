"""'Train this configuration' (Fashion-MNIST): a background training job per session, with a
progress bar, live loss/accuracy charts and a stop button; the result becomes selectable
weights ("Trained in this session")."""

from __future__ import annotations

import streamlit as st

from shufflenet.config import ShuffleNetConfig
from shufflenet.inference import Predictor
from shufflenet.jobs import TrainingJob

from .. import figures

JOB_KEY, RESULTS_KEY, SELECT_SESSION_KEY = "train_job", "trained_results", "_select_session_weights"
SUBSET_RANGE, SUBSET_STEP, SUBSET_DEFAULT = (500, 60_000), 500, 3000
POLL_SECONDS = 1.0


def _results() -> dict:
    return st.session_state.setdefault(RESULTS_KEY, {})


def session_result(config: ShuffleNetConfig):
    """The TrainResult trained in this session for exactly `config`, or None."""
    entry = _results().get(config)
    return entry["result"] if entry else None


def take_selection_request() -> bool:
    """True once after a training run finished: the selector should switch to its weights."""
    return bool(st.session_state.pop(SELECT_SESSION_KEY, False))


def session_predictor(config: ShuffleNetConfig) -> Predictor:
    entry = _results()[config]
    if entry.get("predictor") is None:
        entry["predictor"] = Predictor(entry["result"].model)
    return entry["predictor"]


def _start(config: ShuffleNetConfig) -> None:
    ss = st.session_state
    job = ss.get(JOB_KEY)
    if job is not None and job.running:
        return
    ss[JOB_KEY] = TrainingJob(config, epochs=int(ss["train_epochs"]), limit=int(ss["train_subset"])).start()


def _stop() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is not None:
        job.stop()


def render(config: ShuffleNetConfig) -> None:
    job = st.session_state.get(JOB_KEY)
    busy = job is not None and job.running
    with st.expander("Train this configuration on Fashion-MNIST", expanded=busy):
        st.caption("Adam with a cosine schedule, on the first N training images, then scored on all 10,000 "
                   "test images. A few thousand images for one epoch take about a minute or two here; the "
                   "page stays usable while it trains.")
        left, right = st.columns(2)
        left.number_input("Epochs", 1, 20, 1, key="train_epochs")
        right.slider("Training images", *SUBSET_RANGE, SUBSET_DEFAULT, step=SUBSET_STEP, key="train_subset")
        st.button("Start training", on_click=_start, args=(config,), disabled=busy, key="train_start",
                  type="primary")
        if job is not None:
            _progress(config)


@st.fragment(run_every=POLL_SECONDS)
def _progress(config: ShuffleNetConfig) -> None:
    job: TrainingJob | None = st.session_state.get(JOB_KEY)
    if job is None:
        return
    state = job.snapshot()
    last = state.progress[-1] if state.progress else None
    fraction = last.step / last.steps if last else 0.0
    text = (f"{state.status}: epoch {last.epoch}/{last.epochs}, batch {last.batch}/{last.batches}, "
            f"loss {last.loss:.3f}, accuracy {last.accuracy:.3f}, {last.seconds:.0f} s" if last
            else f"{state.status}: preparing the data and the model...")
    st.progress(min(fraction, 1.0), text=f"{job.config.label}: {text}")
    if state.progress:
        st.plotly_chart(figures.training_curves(state.progress), key="train_curves")
    if state.status in ("running", "stopping"):
        st.button("Stop training", on_click=_stop, key="train_stop", disabled=state.status == "stopping",
                  help="Ends after the current batch; the model trained so far is scored and kept.")
    elif state.status == "failed":
        st.error(f"Training failed: {state.error}")
    elif state.status == "done":
        m = state.result.manifest
        entry = _results().get(job.config)
        if entry is None or entry["result"] is not state.result:
            _results()[job.config] = {"result": state.result, "predictor": None}
            st.session_state[SELECT_SESSION_KEY] = True
            st.rerun()  # the weights selector now offers "Trained in this session"
        stopped = " (stopped early)" if state.result.stopped else ""
        st.success(f"Trained{stopped} in {m['training_seconds']:.0f} s on {m['dataset']['train_images']:,} images: "
                   f"test accuracy {100 * m['test_accuracy']:.2f} % on {m['test_images']:,} images. "
                   "Pick \"Trained in this session\" as weights above" +
                   ("." if job.config == config else f" with the configuration {job.config.label} it was trained for."))
