"""Cached wrappers around the library, so a rerun recomputes only what its inputs changed.

- Models and their predictors: one cache shared by all sessions, keyed by the frozen
  configuration, bounded in entries and in estimated memory (`MODEL_CACHE_ENTRIES`,
  `MODEL_CACHE_BYTES`); a network above `MODEL_MAX_BYTES` is refused with `ModelTooLargeError`.
  Models are never changed after they are returned.
- Tables, DOT sources and SVGs: `st.cache_data` (each caller gets a copy).
- Plotly figures: `st.cache_resource` (shared, read-only; see the figures section).

`BUILDS` counts real model builds and predictor compilations (what the tests check).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict

import numpy as np
import pandas as pd
import streamlit as st

from shufflenet import analysis, diagrams, inference
from shufflenet.config import ShuffleNetConfig

from . import figures

BUILDS: Counter = Counter()

_SWEEP_KEY_GROUPS = 3


# --- models ---------------------------------------------------------------------------------

#: The model cache keeps at most this many configurations (a model and its compiled predictor each)...
MODEL_CACHE_ENTRIES = 4
#: ...and at most this much estimated memory between them (see `model_memory`); the least
#: recently used are dropped first. A classroom of sessions cannot grow it past this.
MODEL_CACHE_BYTES = 1_000_000_000
#: The largest network the app builds; every other view works for any configuration.
MODEL_MAX_BYTES = 500_000_000


class ModelTooLargeError(ValueError):
    """The configuration's model is larger than the app builds; the message says what to change."""


def model_memory(config: ShuffleNetConfig) -> int:
    """Estimated bytes of a built model: its float32 weights plus one picture's activations."""
    figures_ = analysis.key_figures(config)
    return int(figures_["model_bytes"] + figures_["activation_bytes"])


def check_model_size(config: ShuffleNetConfig) -> None:
    """Raise ModelTooLargeError before building a model the server should not hold."""
    from . import format as fmt

    need = model_memory(config)
    if need > MODEL_MAX_BYTES:
        figures_ = analysis.key_figures(config)
        raise ModelTooLargeError(
            f"This network needs about {fmt.nbytes(need)} to run ({fmt.nbytes(figures_['model_bytes'])} of weights "
            f"and {fmt.nbytes(figures_['activation_bytes'])} of activations per picture), more than the "
            f"{fmt.nbytes(MODEL_MAX_BYTES)} this server builds a model for. Lower the width scale, the units per "
            "stage, the input size or the number of classes. The other views work at any size."
        )


class _Entry:
    __slots__ = ("model", "predictor", "nbytes", "lock")

    def __init__(self, model, nbytes: int):
        self.model, self.predictor, self.nbytes = model, None, nbytes
        self.lock = threading.Lock()  # held while the predictor is compiled


class ModelCache:
    """Least-recently-used models (and predictors) shared by every session's thread, bounded in
    entries and bytes. Each configuration is built once even when sessions ask at the same time."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict = {}  # config -> the lock held while it is built

    def _get(self, config):
        with self._lock:
            entry = self._entries.get(config)
            if entry is not None:
                self._entries.move_to_end(config)
            return entry

    def entry(self, config: ShuffleNetConfig) -> _Entry:
        entry = self._get(config)
        if entry is not None:
            return entry
        check_model_size(config)
        with self._lock:
            building = self._building.setdefault(config, threading.Lock())
        with building:  # sessions asking for the same configuration wait for one build
            entry = self._get(config)
            if entry is None:
                try:
                    from shufflenet import build_model

                    with _spinner("Building the Keras model..."):
                        BUILDS["model"] += 1
                        entry = _Entry(build_model(config), model_memory(config))
                    with self._lock:
                        self._entries[config] = entry
                        self._evict()
                finally:
                    with self._lock:
                        if self._building.get(config) is building:
                            del self._building[config]
        return entry

    def predictor(self, config: ShuffleNetConfig) -> inference.Predictor:
        entry = self.entry(config)
        if entry.predictor is None:
            with entry.lock:
                if entry.predictor is None:
                    with _spinner("Compiling the model for inference..."):
                        BUILDS["predictor"] += 1
                        entry.predictor = inference.Predictor(entry.model)
        return entry.predictor

    def _evict(self) -> None:
        """Drop the least recently used until within both bounds (the newest entry always stays)."""
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self.nbytes > self.max_bytes):
            self._entries.popitem(last=False)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _spinner(text: str):
    """st.spinner inside a script run; nothing outside one (e.g. a deferred download)."""
    import contextlib

    from streamlit.runtime.scriptrunner import get_script_run_ctx

    return st.spinner(text) if get_script_run_ctx() is not None else contextlib.nullcontext()


MODELS = ModelCache(MODEL_CACHE_ENTRIES, MODEL_CACHE_BYTES)


def model(config: ShuffleNetConfig):
    """The real Keras model of `config` (read-only: never train or change it).
    ModelTooLargeError above MODEL_MAX_BYTES."""
    return MODELS.entry(config).model


def predictor(config: ShuffleNetConfig) -> inference.Predictor:
    """The compiled predictor of `config`'s model (shared, read-only)."""
    return MODELS.predictor(config)


# --- tables ---------------------------------------------------------------------------------

@st.cache_data(max_entries=64)
def key_figures(config: ShuffleNetConfig) -> dict:
    return analysis.key_figures(config)


@st.cache_data(max_entries=64)
def table1_layout(config: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.table1_layout(config)


def table1_by_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    return _table1_by_groups(config)


@st.cache_data(max_entries=64)
def _table1_by_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.table1_by_groups(config)


def sweep_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    """The sweep over g does not depend on the current g: changing g reuses it."""
    return _sweep_groups(analysis.with_groups(config, _SWEEP_KEY_GROUPS))


@st.cache_data(max_entries=64)
def _sweep_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.sweep_groups(config)


@st.cache_data(max_entries=64)
def stage_summary(config: ShuffleNetConfig, measure: str, include_fc: bool) -> pd.DataFrame:
    return analysis.stage_summary(config, measure=measure, include_fc=include_fc)


@st.cache_data(max_entries=64)
def costs_by(config: ShuffleNetConfig, by: str, measure: str, include_fc: bool) -> pd.DataFrame:
    return analysis.costs_by(config, by=by, measure=measure, include_fc=include_fc)


@st.cache_data(max_entries=64)
def layer_costs(config: ShuffleNetConfig, measure: str, include_fc: bool,
                stages: tuple[str, ...], ops: tuple[str, ...]) -> pd.DataFrame:
    return analysis.layer_costs(config, measure=measure, include_fc=include_fc, stages=stages, ops=ops)


@st.cache_data(max_entries=64)
def layer_ops(config: ShuffleNetConfig) -> list[str]:
    return analysis.layer_ops(config)


@st.cache_data(max_entries=64)
def compare_stages(a: ShuffleNetConfig, b: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.compare_stages(a, b)


@st.cache_data(max_entries=64)
def compare_totals(a: ShuffleNetConfig, b: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.compare_totals(a, b)


@st.cache_data(max_entries=64)
def shuffle_edges(channels: int, groups: int) -> pd.DataFrame:
    return analysis.shuffle_edges(channels, groups)


@st.cache_data(max_entries=64)
def flow_table(channels: int, groups: int) -> pd.DataFrame:
    return analysis.flow_table(channels, groups)


@st.cache_data(max_entries=64)
def mixing_matrices(channels: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(without shuffle, with shuffle) group-to-group channel counts."""
    return (analysis.information_flow(channels, groups, shuffle=False).groups,
            analysis.information_flow(channels, groups, shuffle=True).groups)


# --- diagrams -------------------------------------------------------------------------------

def _diagram(config: ShuffleNetConfig, kind: str, stage, stride: int):
    if kind == "macro":
        return diagrams.macro_diagram(config)
    if kind == "micro":
        return diagrams.micro_diagram(config, stage=stage, stride=stride)
    if kind == "full":
        return diagrams.full_diagram(config, stage=stage)
    raise ValueError(f"Unknown diagram kind {kind!r}: use 'macro', 'micro' or 'full'.")


@st.cache_data(max_entries=128)
def diagram_dot(config: ShuffleNetConfig, kind: str, stage=None, stride: int = 1) -> str:
    """DOT source of a diagram (see shufflenet.diagrams)."""
    return _diagram(config, kind, stage, stride).source


def diagram_svg(config: ShuffleNetConfig, kind: str, stage=None, stride: int = 1) -> str:
    """The same diagram rendered by Graphviz's `dot` (DiagramRenderError without it).

    Not cached: it runs only when someone clicks a deferred download, outside a script run."""
    return diagrams.to_svg(_diagram(config, kind, stage, stride))


def dot_available() -> bool:
    return diagrams.dot_available()


# --- figures --------------------------------------------------------------------------------
# Shared, not copied: st.cache_data would unpickle a Plotly figure on every rerun, which
# re-validates its whole template (about 40 ms a figure, most of a warm rerun of the
# Complexity view). st.plotly_chart only reads a figure; never change one after it is returned.

@st.cache_resource(max_entries=64, show_spinner=False)
def costs_figure(config: ShuffleNetConfig, by: str, value: str, measure: str, include_fc: bool):
    # The cached table: the cost and the params chart of one grouping share it.
    return figures.bar(costs_by(config, by, measure, include_fc),
                       x=by, y=value, title=f"{value} by {'op type' if by == 'family' else by}")


@st.cache_resource(max_entries=64, show_spinner=False)
def shuffle_figure(channels: int, groups: int):
    return figures.shuffle_wiring(analysis.shuffle_edges(channels, groups), groups)


@st.cache_resource(max_entries=64, show_spinner=False)
def flow_figure(channels: int, groups: int):
    return figures.information_flow(
        analysis.information_flow(channels, groups, shuffle=False).by_input_group(),
        analysis.information_flow(channels, groups, shuffle=True).by_input_group(),
        groups,
    )


def sweep_figures(config: ShuffleNetConfig) -> dict:
    return _sweep_figures(analysis.with_groups(config, _SWEEP_KEY_GROUPS), config.groups)


@st.cache_resource(max_entries=64, show_spinner=False)
def _sweep_figures(config: ShuffleNetConfig, current: int) -> dict:
    return figures.sweep(analysis.sweep_groups(config), current)


@st.cache_resource(max_entries=64, show_spinner=False)
def compare_figure(a: ShuffleNetConfig, b: ShuffleNetConfig):
    return figures.compare_stages(analysis.compare_stages(a, b))


# --- pictures -------------------------------------------------------------------------------

@st.cache_data(max_entries=16)
def sample_image(name: str):
    return inference.sample_image(name)


@st.cache_data(max_entries=16)
def thumbnail(name: str, size: int = 160) -> np.ndarray:
    image = inference.sample_image(name)
    image.thumbnail((size, size))
    return np.asarray(image)


#: Decoded uploads are kept at most this many pixels on their longer side (ImageNet preprocessing
#: needs at most 586 for a 512 input): a 50-megapixel upload would otherwise keep 150 MB per entry.
UPLOAD_MAX_SIDE = 2048


@st.cache_data(max_entries=16)
def decode_upload(data: bytes, name: str):
    """The uploaded picture, at most UPLOAD_MAX_SIDE pixels a side (ImageDecodeError for a bad
    file; errors are not cached). `name` is only shown, never used as a path."""
    return inference.decode_image(data, name=name, max_side=UPLOAD_MAX_SIDE)


@st.cache_data(max_entries=32)
def sample_batch(name: str, config: ShuffleNetConfig) -> np.ndarray:
    return inference.preprocess(inference.sample_image(name), config)


@st.cache_data(max_entries=32)
def upload_batch(data: bytes, name: str, config: ShuffleNetConfig) -> np.ndarray:
    return inference.preprocess(inference.decode_image(data, name=name), config)


# --- latency lab and downloads ----------------------------------------------------------------

_LATENCY: OrderedDict = OrderedDict()  # key -> DataFrame; shared by sessions, the oldest dropped
LATENCY_MAX_ENTRIES = 16
_LATENCY_STORE = threading.Lock()
_MEASURING = threading.Lock()  # one measurement at a time: two at once would time each other


def latency_key(config: ShuffleNetConfig, groups, runtimes, threads, repeats: int, include_mobilenet: bool) -> tuple:
    """What a measured sweep depends on; not the current g (the sweep covers every g)."""
    return (analysis.with_groups(config, _SWEEP_KEY_GROUPS), tuple(groups), tuple(runtimes), tuple(threads),
            int(repeats), bool(include_mobilenet))


def measured_latency(key: tuple) -> pd.DataFrame | None:
    """The sweep measured earlier for `key` (a copy), or None."""
    with _LATENCY_STORE:
        df = _LATENCY.get(key)
        if df is not None:
            _LATENCY.move_to_end(key)
    return None if df is None else df.copy()


def measure_latency(key: tuple, progress) -> pd.DataFrame | None:
    """Run the sweep of `key` now (long: builds, converts, times) and keep it; None when another
    session is measuring (the caller says so and offers to try again)."""
    from shufflenet import benchmark

    if not _MEASURING.acquire(blocking=False):
        return None
    try:
        config, groups, runtimes, threads, repeats, include_mobilenet = key
        BUILDS["latency_sweep"] += 1
        df = benchmark.latency_sweep(config, groups=groups, runtimes=runtimes, threads=threads, repeats=repeats,
                                     include_mobilenet=include_mobilenet, progress=progress)
    finally:
        _MEASURING.release()
    with _LATENCY_STORE:
        _LATENCY[key] = df
        while len(_LATENCY) > LATENCY_MAX_ENTRIES:
            _LATENCY.popitem(last=False)
    return df.copy()


def model_file(config: ShuffleNetConfig, kind: str) -> bytes:
    """The app's Keras model of `config` as a `.keras` or `.tflite` file.

    Not cached: it runs only when someone clicks a deferred download, outside a script run."""
    from shufflenet import export

    if kind == "keras":
        return export.keras_bytes(model(config))
    if kind == "tflite":
        return export.tflite_bytes(model(config), config)
    raise ValueError(f"Unknown model file kind {kind!r}: use 'keras' or 'tflite'.")


# --- trained weights (Predictions) ----------------------------------------------------------

@st.cache_resource(max_entries=6, show_spinner="Loading the checkpoint...")
def checkpoint_predictor(path: str) -> inference.Predictor:
    """A shipped or imported checkpoint, loaded once per server and shared (read-only)."""
    from shufflenet.checkpoints import load_checkpoint_model

    BUILDS["checkpoint"] += 1
    return inference.Predictor(load_checkpoint_model(path))


@st.cache_resource(max_entries=2, show_spinner="Loading the uploaded weights...")
def uploaded_predictor(weights_data: bytes, manifest_data: bytes, config: ShuffleNetConfig, weights_name: str,
                       manifest_name: str) -> tuple[inference.Predictor, dict]:
    """Uploaded weights (CheckpointError for a bad pair; errors are not cached)."""
    from shufflenet.weights import load_uploaded

    check_model_size(config)

    model, manifest = load_uploaded(weights_data, manifest_data, config, weights_name, manifest_name)
    return inference.Predictor(model), manifest


@st.cache_data(max_entries=1)
def fashion_gallery():
    from shufflenet.weights import fashion_gallery

    return fashion_gallery()


@st.cache_data(max_entries=16, show_spinner="Scoring a test batch...")
def test_accuracy(_predictor: inference.Predictor, key: str, config: ShuffleNetConfig, n: int) -> float:
    """Top-1 accuracy on the first `n` Fashion-MNIST test images (`key` names the weights)."""
    from shufflenet import data
    from shufflenet.weights import fashion_test_batch

    images, labels = fashion_test_batch(n)
    probs = _predictor(data.preprocess(images, config))
    return float((probs.argmax(-1) == labels).mean())
