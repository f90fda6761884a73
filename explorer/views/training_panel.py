"""'Train this configuration' (Fashion-MNIST): a training process per session, with a progress
bar, live loss/accuracy charts and a stop button; the result becomes selectable weights
("Trained in this session")."""

from __future__ import annotations

import streamlit as st

from shufflenet.config import ShuffleNetConfig
from shufflenet.inference import Predictor
from shufflenet.jobs import BusyError, TrainingJob

from .. import figures

JOB_KEY, RESULTS_KEY, SELECT_SESSION_KEY = "train_job", "trained_results", "_select_session_weights"
#: The page's choices. The defaults are the lecture demo: the whole training set twice, scored on
#: the first 1,000 test images, sized to finish within a minute of the click on two cores
#: (bench/train_speed.py --demo measures it through a real server). The recipe was picked from
#: epochs, batch size, learning rate, warm-up and label smoothing measured on the preset: label
#: smoothing gained more than a larger batch's speed did.
SUBSET_RANGE, SUBSET_STEP, SUBSET_DEFAULT = (2_000, 60_000), 2_000, 60_000
EPOCHS_RANGE, EPOCHS_DEFAULT = (1, 20), 2
RECIPE = {"learning_rate": 1e-2, "batch_size": 256, "label_smoothing": 0.1}
LEARNING_RATE = RECIPE["learning_rate"]
EVAL_IMAGES = 1000
POLL_SECONDS = 1.0
ERROR_KEY = "_train_error"


def _results() -> dict:
    return st.session_state.setdefault(RESULTS_KEY, {})


def session_result(config: ShuffleNetConfig):
    """The JobResult trained in this session for exactly `config`, or None."""
    entry = _results().get(config)
    return entry["result"] if entry else None


def take_selection_request() -> bool:
    """True once after a training run finished: the selector should switch to its weights."""
    return bool(st.session_state.pop(SELECT_SESSION_KEY, False))


def session_predictor(config: ShuffleNetConfig) -> Predictor:
    entry = _results()[config]
    if entry.get("predictor") is None:
        entry["predictor"] = Predictor(entry["result"].load_model())
    return entry["predictor"]


def _start(config: ShuffleNetConfig) -> None:
    ss = st.session_state
    ss.pop(ERROR_KEY, None)
    job = ss.get(JOB_KEY)
    if job is not None and job.running:
        return
    try:
        ss[JOB_KEY] = TrainingJob(config, epochs=int(ss["train_epochs"]), limit=int(ss["train_subset"]),
                                  eval_limit=EVAL_IMAGES, record_subset=False, **RECIPE).start()
    except (BusyError, ValueError) as exc:
        ss[ERROR_KEY] = str(exc)


def _stop() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is not None:
        job.stop()


def render(config: ShuffleNetConfig) -> None:
    job = st.session_state.get(JOB_KEY)
    busy = job is not None and job.running
    with st.expander("Train this configuration on Fashion-MNIST", expanded=busy):
        st.caption(f"Adam (rate {RECIPE['learning_rate']:g}, cosine decay, batches of {RECIPE['batch_size']}, "
                   f"label smoothing {RECIPE['label_smoothing']:g}) on the first N training images, in its own "
                   f"process on this server, then scored on the first {EVAL_IMAGES:,} test images. The default, "
                   f"the whole training set {EPOCHS_DEFAULT} times, is sized for about a minute on a quiet "
                   "two-core server; the page stays usable meanwhile.")
        left, right = st.columns(2)
        left.number_input("Epochs", *EPOCHS_RANGE, st.session_state.get("train_epochs", EPOCHS_DEFAULT),
                          key="train_epochs")
        right.slider("Training images", *SUBSET_RANGE, st.session_state.get("train_subset", SUBSET_DEFAULT),
                     step=SUBSET_STEP, key="train_subset")
        st.button("Start training", on_click=_start, args=(config,), disabled=busy, key="train_start",
                  type="primary")
        if ERROR_KEY in st.session_state:
            st.warning(st.session_state[ERROR_KEY])
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
            else f"{state.status}: starting the training process, preparing the data and the model...")
    st.progress(min(fraction, 1.0), text=f"{job.config.label}: {text}")
    if state.progress:
        st.plotly_chart(figures.training_curves(state.progress), key="train_curves")
        st.caption(f"The same curves in TensorBoard, while this page keeps the run: "
                   f"`tensorboard --logdir {job.tensorboard_dir}`")
    if state.status in ("starting", "running", "stopping"):
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
        st.success(result_text(m, state.result.stopped, None if job.config == config else job.config.label))


def result_text(manifest: dict, stopped: bool, other_label: str | None = None) -> str:
    """The line shown when a run is done (bench/train_demo.py reads its figures back);
    `other_label`: the configuration it was trained for, when the page now shows another."""
    m = manifest
    return (f"Trained{' (stopped early)' if stopped else ''} in {m['training_seconds']:.0f} s on "
            f"{m['dataset']['train_images']:,} images: test accuracy {100 * m['test_accuracy']:.2f} % on the first "
            f"{m['test_images']:,} test images. Pick \"Trained in this session\" as weights above" +
            ("." if other_label is None else f" with the configuration {other_label} it was trained for."))
