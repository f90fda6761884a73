"""Cached wrappers around the library, so a rerun recomputes only what its inputs changed.

- Models and their predictors: `shufflenet.serving.ModelCache`, one for all sessions, keyed by
  the frozen configuration, bounded in entries and in estimated memory (`MODEL_CACHE_ENTRIES`,
  `MODEL_CACHE_BYTES`); a network above `MODEL_MAX_BYTES` is refused with `ModelTooLargeError`.
  Models are never changed after they are returned. `request_model` has the background builder
  (`shufflenet.serving.BackgroundBuilder`) build a page's model after the page is sent.
- Latency sweeps: a background job, one at a time, stored by key (`shufflenet.serving.SerialJobs`).
- Tables, DOT sources and SVGs: `st.cache_data` (each caller gets a copy).
- Plotly figures: `st.cache_resource` (shared, read-only; see the figures section).

`WORK_DONE` (`shufflenet.serving.WORK_DONE`) counts the expensive work by kind: model builds,
predictor compilations, measurements, checkpoint loads, activation taps (what the tests check).
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import pandas as pd
import streamlit as st

from shufflenet import analysis, diagrams, inference, serving
from shufflenet.config import ShuffleNetConfig
from shufflenet.settings import SETTINGS

from . import figures
from ._streamlit_compat import script_run_context, session_id

WORK_DONE = serving.WORK_DONE
BUILDS = WORK_DONE  # its former name, which bench/soak.py reads

#: Entries of each page cache are the server's tunables (`SETTINGS.*_entries`, environment overrides).
GALLERY_ENTRIES = 1  # one gallery ships

#: How the caches hash a configuration: by its repr, which writes out every field's value.
#: Streamlit's generic hashing of the dataclass took about 4 ms a call, 12 calls a rerun.
_HASH_FUNCS = {ShuffleNetConfig: lambda config: repr(config)}


# --- models ---------------------------------------------------------------------------------
# The cache, its size policy and the background builder are `shufflenet.serving`'s; here they get
# the page's spinner and the session's id.

MODEL_CACHE_ENTRIES = serving.MODEL_CACHE_ENTRIES
MODEL_CACHE_BYTES = serving.MODEL_CACHE_BYTES
MODEL_MAX_BYTES = serving.MODEL_MAX_BYTES
ModelTooLargeError = serving.ModelTooLargeError
ModelCache = serving.ModelCache
model_memory = serving.model_memory
check_model_size = serving.check_model_size


def _spinner(text: str):
    """st.spinner inside a script run; nothing outside one (the builder thread, a deferred download)."""
    import contextlib

    return st.spinner(text) if script_run_context() is not None else contextlib.nullcontext()


MODELS = serving.ModelCache(MODEL_CACHE_ENTRIES, MODEL_CACHE_BYTES, spinner=_spinner)
BUILDER = serving.BackgroundBuilder(MODELS)


def model(config: ShuffleNetConfig):
    """The real Keras model of `config` (read-only: never train or change it).
    ModelTooLargeError above MODEL_MAX_BYTES."""
    return MODELS.entry(config).model


def predictor(config: ShuffleNetConfig) -> inference.Predictor:
    """The compiled predictor of `config`'s model (shared, read-only)."""
    return MODELS.predictor(config)


def request_model(config: ShuffleNetConfig) -> serving.BuildStatus:
    """Have the background builder build `config`'s model for this session (never waits; the
    session's earlier request, if another configuration, is dropped); the build's status."""
    return BUILDER.request(config, session_id())


def model_summary(config: ShuffleNetConfig) -> pd.DataFrame | None:
    """The built model's layer table (layer, type, output shape, params), or None before it is built."""
    facts = MODELS.facts(config)
    return None if facts is None else serving.summary_table(facts)


# --- tables ---------------------------------------------------------------------------------

@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def key_figures(config: ShuffleNetConfig) -> dict:
    return analysis.key_figures(config)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def table1_layout(config: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.table1_layout(config)


def table1_by_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    return _table1_by_groups(config)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def _table1_by_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.table1_by_groups(config)


def sweep_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    """The sweep over g does not depend on the current g: changing g reuses it."""
    return _sweep_groups(analysis.with_groups(config, serving.SWEEP_KEY_GROUPS))


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def _sweep_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.sweep_groups(config)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def stage_summary(config: ShuffleNetConfig, measure: str, include_fc: bool) -> pd.DataFrame:
    return analysis.stage_summary(config, measure=measure, include_fc=include_fc)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def costs_by(config: ShuffleNetConfig, by: str, measure: str, include_fc: bool) -> pd.DataFrame:
    return analysis.costs_by(config, by=by, measure=measure, include_fc=include_fc)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def layer_costs(config: ShuffleNetConfig, measure: str, include_fc: bool,
                stages: tuple[str, ...], ops: tuple[str, ...]) -> pd.DataFrame:
    return analysis.layer_costs(config, measure=measure, include_fc=include_fc, stages=stages, ops=ops)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def receptive_field_table(config: ShuffleNetConfig, by: str = "stage") -> pd.DataFrame:
    """Receptive fields per "stage", "unit" or "layer" (see `analysis.receptive_field_table`)."""
    return analysis.receptive_field_table(config, by=by)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def layer_ops(config: ShuffleNetConfig) -> list[str]:
    return analysis.layer_ops(config)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def compare_stages(a: ShuffleNetConfig, b: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.compare_stages(a, b)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def compare_totals(a: ShuffleNetConfig, b: ShuffleNetConfig) -> pd.DataFrame:
    return analysis.compare_totals(a, b)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def flow_table(channels: int, groups: int) -> pd.DataFrame:
    return analysis.flow_table(channels, groups)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries)
def mixing_matrices(channels: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(without shuffle, with shuffle) group-to-group channel counts."""
    return (analysis.information_flow(channels, groups, shuffle=False).groups,
            analysis.information_flow(channels, groups, shuffle=True).groups)


# --- diagrams -------------------------------------------------------------------------------
# Options of every diagram: `metric` ("default" or a key of `diagrams.METRICS`), `latency` (the
# per-layer times as a tuple of (layer, ms) pairs, hashable for the caches), `rankdir` ("TB" or
# "LR") and `units` (a range of the stage's units, for the full layer graph).

def _diagram(config: ShuffleNetConfig, kind: str, stage=None, stride: int = 1, metric: str = "default",
             latency=None, rankdir: str = "TB", units=None):
    if kind == "macro":
        return diagrams.macro_diagram(config, metric=metric, latency=latency, rankdir=rankdir)
    if kind == "micro":
        return diagrams.micro_diagram(config, stage=stage, stride=stride, rankdir=rankdir)
    if kind == "full":
        return diagrams.full_diagram(config, stage=stage, units=units, metric=metric, latency=latency,
                                     rankdir=rankdir)
    raise ValueError(f"Unknown diagram kind {kind!r}: use 'macro', 'micro' or 'full'.")


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.diagram_entries, show_spinner=False)
def diagram_dot(config: ShuffleNetConfig, kind: str, stage=None, stride: int = 1, metric: str = "default",
                latency=None, rankdir: str = "TB", units=None) -> str:
    """DOT source of a diagram (see shufflenet.diagrams)."""
    return _diagram(config, kind, stage, stride, metric, latency, rankdir, units).source


#: Pictures laid out by `dot`, by DOT source (shared by every session, the oldest dropped first;
#: the largest, a whole network's layer graph, is about 200 kB of SVG).
PICTURE_ENTRIES = SETTINGS.picture_entries
_PICTURES = serving.LRU(PICTURE_ENTRIES)


def diagram_pictures(config: ShuffleNetConfig, requests: list[dict]) -> list[str]:
    """The diagrams `requests` names (each a dict of `diagram_dot`'s arguments after `config`),
    laid out once on the server by Graphviz's `dot`, as SVG text for the page to show as
    pictures: the browser then only paints them, instead of laying out every diagram again in
    JavaScript on each rerun (seconds for the layer graph). Diagrams not laid out before are
    laid out at the same time (one `dot` process each). DiagramRenderError without `dot`."""
    from concurrent.futures import ThreadPoolExecutor

    sources = [diagram_dot(config, **request) for request in requests]
    pictures = {src: _PICTURES.get(src) for src in dict.fromkeys(sources)}  # a look counts as a use
    missing = [src for src, svg in pictures.items() if svg is None]
    if len(missing) == 1:
        pictures[missing[0]] = diagrams.to_svg(missing[0])
    elif missing:
        with ThreadPoolExecutor(len(missing)) as pool:
            pictures.update(zip(missing, pool.map(diagrams.to_svg, missing)))
    for src in missing:
        _PICTURES.put(src, pictures[src])
    return [pictures[src] for src in sources]


def diagram_svg(config: ShuffleNetConfig, kind: str, stage=None, stride: int = 1, **options) -> str:
    """The same diagram rendered by Graphviz's `dot` (DiagramRenderError without it).

    Not cached: it runs only when someone clicks a deferred download, outside a script run."""
    return diagrams.to_svg(_diagram(config, kind, stage, stride, **options))


def diagram_file(config: ShuffleNetConfig, kind: str, fmt: str, stage=None, stride: int = 1, **options) -> bytes | str:
    """A diagram as a download: DOT source (text) or an SVG, PNG or PDF file made by `dot`
    (DiagramRenderError without it). Not cached: a deferred download calls it on click."""
    graph = _diagram(config, kind, stage, stride, **options)
    if fmt == "dot":
        return graph.source
    return diagrams.render(graph, fmt)


def dot_available() -> bool:
    return diagrams.dot_available()


def heat_metric_problem(config: ShuffleNetConfig, metric: str, latency=None) -> str | None:
    """Why the diagrams cannot be coloured by `metric` (e.g. no memory-traffic column in the cost
    table), or None when they can."""
    if metric == "default":
        return None
    try:
        diagrams.layer_values(config, metric, latency)
    except ValueError as exc:
        return str(exc)
    return None


#: Per-layer latencies measured on this server, by configuration (shared by every session,
#: the oldest dropped first).
LAYER_LATENCY_ENTRIES = SETTINGS.layer_latency_entries
LAYER_LATENCY_REPEATS = 7
_LAYER_LATENCY = serving.LRU(LAYER_LATENCY_ENTRIES)
_LAYER_MEASURING = threading.Lock()  # one measurement at a time: two would slow each other down


def layer_latency(config: ShuffleNetConfig) -> tuple[tuple[str, float], ...] | None:
    """The per-layer times (layer, ms) measured for `config` on this server, or None."""
    return _LAYER_LATENCY.get(config)


def measure_layer_latency(config: ShuffleNetConfig, progress=None) -> tuple[tuple[str, float], ...] | None:
    """Time every layer of `config`'s Keras model alone, batch 1, on its real input (computed
    once), and keep the medians; None when another session is measuring. Builds the model
    (ModelTooLargeError above MODEL_MAX_BYTES)."""
    import statistics
    import time

    import keras

    if not _LAYER_MEASURING.acquire(blocking=False):
        return None
    try:
        net = model(config)
        layers = [layer for layer in net.layers if type(layer).__name__ != "InputLayer"]
        x = np.random.default_rng(0).random((1, *net.input_shape[1:]), dtype=np.float32)
        outputs = keras.Model(net.input, [layer.output for layer in layers])(x, training=False)
        values = {"image": keras.ops.convert_to_tensor(x), **dict(zip((layer.name for layer in layers), outputs))}
        times = []
        for i, layer in enumerate(layers):
            sources = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
            args = [values[t._keras_history.operation.name] for t in sources]
            arg = args if len(args) > 1 else args[0]
            for _ in range(2):  # warm-up
                layer(arg, training=False)
            samples = []
            for _ in range(LAYER_LATENCY_REPEATS):
                t = time.perf_counter()
                layer(arg, training=False)
                samples.append((time.perf_counter() - t) * 1000)
            times.append((layer.name, round(statistics.median(samples), 4)))
            if progress is not None:
                progress((i + 1) / len(layers), f"Timing {layer.name} ({i + 1} of {len(layers)})...")
        WORK_DONE["layer_latency"] += 1
    finally:
        _LAYER_MEASURING.release()
    result = tuple(times)
    _LAYER_LATENCY.put(config, result)
    return result


# --- figures --------------------------------------------------------------------------------
# Shared, not copied: st.cache_data would unpickle a Plotly figure on every rerun, which
# re-validates its whole template (about 40 ms a figure, most of a warm rerun of the
# Complexity view). st.plotly_chart only reads a figure; never change one after it is returned.
# They are also frozen (`figures.frozen`): st.plotly_chart turns a figure into a dict on every
# rerun (about 14 ms each, a third of a warm Complexity rerun's CPU); a frozen one does it once.


def _frozen(func):
    """Freeze the figure, or the dict of figures, that `func` returns (under its cache)."""
    @functools.wraps(func)
    def make(*args, **kwargs):
        made = func(*args, **kwargs)
        if isinstance(made, dict):
            return {name: figures.frozen(fig) for name, fig in made.items()}
        return figures.frozen(made)

    return make


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def costs_figure(config: ShuffleNetConfig, by: str, value: str, measure: str, include_fc: bool):
    # The cached table: the cost and the params chart of one grouping share it.
    return figures.bar(costs_by(config, by, measure, include_fc),
                       x=by, y=value, title=f"{value} by {'op type' if by == 'family' else by}")


def _by_title(by: str) -> str:
    return {"family": "op type", "op": "layer op"}.get(by, by)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def traffic_figure(config: ShuffleNetConfig, by: str, include_fc: bool):
    """Memory traffic by stage, op family or op (it does not depend on MACs vs FLOPs)."""
    from shufflenet.plan import OPS

    return figures.bytes_bar(costs_by(config, by, "MACs", include_fc), x=by, y="traffic_bytes",
                             title=f"Memory traffic by {_by_title(by)}", names=OPS if by == "op" else None)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def intensity_figure(config: ShuffleNetConfig, by: str, include_fc: bool):
    """MACs per byte of memory traffic by stage, op family or op."""
    from shufflenet.plan import OPS

    return figures.intensity_bar(costs_by(config, by, "MACs", include_fc), x=by, y="intensity",
                                 title=f"Arithmetic intensity by {_by_title(by)} (MACs per byte)",
                                 names=OPS if by == "op" else None)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def shuffle_figure(channels: int, groups: int):
    return figures.shuffle_wiring(analysis.shuffle_edges(channels, groups), groups)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def flow_figure(channels: int, groups: int):
    return figures.information_flow(
        analysis.information_flow(channels, groups, shuffle=False).by_input_group(),
        analysis.information_flow(channels, groups, shuffle=True).by_input_group(),
        groups,
    )


def sweep_figures(config: ShuffleNetConfig) -> dict:
    return _sweep_figures(analysis.with_groups(config, serving.SWEEP_KEY_GROUPS), config.groups)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def _sweep_figures(config: ShuffleNetConfig, current: int) -> dict:
    return figures.sweep(analysis.sweep_groups(config), current)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.table_entries, show_spinner=False)
@_frozen
def compare_figure(a: ShuffleNetConfig, b: ShuffleNetConfig):
    return figures.compare_stages(analysis.compare_stages(a, b))


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=64, show_spinner=False)
@_frozen
def receptive_field_figure(config: ShuffleNetConfig):
    """The receptive field unit by unit against the input's side (Architecture)."""
    from . import figures_receptive

    return figures_receptive.receptive_growth(receptive_field_table(config, "unit"), config.input_size,
                                              f"Receptive field unit by unit, {config.input_size}×"
                                              f"{config.input_size} input")


# --- pictures -------------------------------------------------------------------------------

@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.image_entries)
def sample_image(name: str):
    return inference.sample_image(name)


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.image_entries)
def thumbnail(name: str, size: int = 160) -> np.ndarray:
    image = inference.sample_image(name)
    image.thumbnail((size, size))
    return np.asarray(image)


#: Decoded uploads are kept at most this many pixels on their longer side (ImageNet preprocessing
#: needs at most 586 for a 512 input): a 50-megapixel upload would otherwise keep 150 MB per entry.
UPLOAD_MAX_SIDE = 2048


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.image_entries)
def decode_upload(data: bytes, name: str):
    """The uploaded picture, at most UPLOAD_MAX_SIDE pixels a side (ImageDecodeError for a bad
    file; errors are not cached). `name` is only shown, never used as a path."""
    return inference.decode_image(data, name=name, max_side=UPLOAD_MAX_SIDE)


# --- latency lab and downloads ----------------------------------------------------------------

LATENCY_MAX_ENTRIES = serving.LATENCY_MAX_ENTRIES
#: Sweeps run as background jobs, one at a time (two at once would time each other), kept by key:
#: a measurement finishes and is stored even when the page that started it is closed.
LATENCY = serving.SerialJobs(serving.LRU(LATENCY_MAX_ENTRIES), name="latency")
JobBusyError = serving.JobBusyError


def latency_key(config: ShuffleNetConfig, groups, runtimes, threads, repeats: int, include_mobilenet: bool) -> tuple:
    """What a measured sweep depends on; not the current g (the sweep covers every g)."""
    return serving.latency_key(config, groups, runtimes, threads, repeats, include_mobilenet)


def measured_latency(key: tuple) -> pd.DataFrame | None:
    """The sweep measured earlier for `key` (a copy), or None."""
    df = LATENCY.result(key)
    return None if df is None else df.copy()


def start_latency(key: tuple) -> serving.Job:
    """Start measuring `key` in the background (or return its job if it runs); JobBusyError
    when another measurement runs."""
    return LATENCY.start(key, serving.latency_label(key), serving.latency_work(key))


def latency_job(key: tuple) -> serving.Job | None:
    """The measurement of `key` running now (or the last one that failed), or None."""
    return LATENCY.job(key)


def running_latency() -> serving.Job | None:
    """Whatever measurement runs now, or None."""
    return LATENCY.running()


_LATENCY_FIGURES = serving.LRU(SETTINGS.latency_figure_entries)


def latency_figure(key: tuple, current: int, reference: str, note: str, x: str = "macs"):
    """The chart of the sweep measured for `key` against `x` ("macs" or "traffic_bytes") with
    g = `current` marked (frozen, shared), or None before it is measured. Made once per
    measurement, g and axis: the Latency view's reruns reuse it."""
    df = LATENCY.result(key)
    if df is None:
        return None
    cached = _LATENCY_FIGURES.get((key, current, reference, note, x))
    if cached is None or cached[0] is not df:  # none yet, or "Measure again" replaced the sweep
        cached = (df, figures.frozen(figures.latency_vs_macs(df, current, reference, note, x=x)))
        _LATENCY_FIGURES.put((key, current, reference, note, x), cached)
    return cached[1]


def model_file(config: ShuffleNetConfig, kind: str) -> bytes:
    """The app's Keras model of `config` as a `.keras`, `.tflite` or `.onnx` file.

    Not cached: it runs only when someone clicks a deferred download, outside a script run."""
    from shufflenet import export

    if kind == "keras":
        return export.keras_bytes(model(config))
    if kind == "tflite":
        return export.tflite_bytes(model(config), config)
    if kind == "onnx":
        return export.onnx_bytes(model(config), config)
    raise ValueError(f"Unknown model file kind {kind!r}: use 'keras', 'tflite' or 'onnx'.")


# --- trained weights (Predictions) ----------------------------------------------------------

@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.checkpoint_entries,
                   show_spinner="Loading the checkpoint...")
def checkpoint_predictor(path: str) -> inference.Predictor:
    """A shipped or imported checkpoint, loaded once per server and shared (read-only)."""
    from shufflenet.checkpoints import load_checkpoint_model

    WORK_DONE["checkpoint"] += 1
    return inference.Predictor(load_checkpoint_model(path))


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.upload_entries,
                   show_spinner="Loading the uploaded weights...")
def uploaded_predictor(weights_data: bytes, manifest_data: bytes, config: ShuffleNetConfig, weights_name: str,
                       manifest_name: str) -> tuple[inference.Predictor, dict]:
    """Uploaded weights (CheckpointError for a bad pair; errors are not cached)."""
    from shufflenet.weights import load_uploaded

    check_model_size(config)

    model, manifest = load_uploaded(weights_data, manifest_data, config, weights_name, manifest_name)
    return inference.Predictor(model), manifest


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=GALLERY_ENTRIES)
def fashion_gallery():
    from shufflenet.weights import fashion_gallery

    return fashion_gallery()


@st.cache_data(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.score_entries, show_spinner="Scoring a test batch...")
def test_accuracy(_predictor: inference.Predictor, key: str, config: ShuffleNetConfig, n: int) -> float:
    """Top-1 accuracy on the first `n` Fashion-MNIST test images (`key` names the weights), as
    training scores a checkpoint (`shufflenet.training.accuracy_on`)."""
    from shufflenet.training import accuracy_on
    from shufflenet.weights import fashion_test_batch

    images, labels = fashion_test_batch(n)
    return float(accuracy_on(_predictor.model, config, images, labels))


# --- activations (Inside) -------------------------------------------------------------------
# One tap model per network and weights (`shufflenet.activations.ActivationTaps`, the model's own
# layers read at every unit), the maps of each picture, and the figures drawn from them: all
# shared and read-only, so a warm rerun of the Inside view only looks them up.

@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.checkpoint_entries,
                   show_spinner="Preparing the activation taps...")
def checkpoint_taps(path: str) -> tuple:
    """(tap model, key) over the shipped or imported checkpoint at `path`: the very model that
    `checkpoint_predictor` loaded, read at its units. `key` names these weights in the caches below."""
    from shufflenet.activations import ActivationTaps
    from shufflenet.checkpoints import read_checkpoint

    WORK_DONE["taps"] += 1
    return ActivationTaps(checkpoint_predictor(path).model, read_checkpoint(path).config), f"checkpoint:{path}"


def random_taps(config: ShuffleNetConfig) -> tuple:
    """(tap model, key) over the app's random-weights model of `config` (the one `predictor(config)`
    runs). A model rebuilt after leaving the model cache has other random weights, so it gets a new
    tap model and key. ModelTooLargeError above MODEL_MAX_BYTES."""
    keras_model = model(config)
    return _random_taps(config, id(keras_model), keras_model)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.random_taps_entries,
                   show_spinner="Preparing the activation taps...")
def _random_taps(config: ShuffleNetConfig, model_id: int, _model) -> tuple:
    import uuid

    from shufflenet.activations import ActivationTaps

    WORK_DONE["taps"] += 1
    # The tap model holds the model, so `model_id` is not reused while this entry lives; the
    # random part keeps keys unique after the entry is dropped.
    return ActivationTaps(_model, config), f"random:{model_id}:{uuid.uuid4().hex}"


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.activation_entries,
                   show_spinner="Computing the activations...")
def activation_maps(_taps, key: str, batch: np.ndarray) -> dict:
    """Every tapped map of the picture `batch` (one call of the tap model; `key` names the weights).
    All units at once, so choosing another unit costs no forward pass; at most the activations of
    one picture per entry (about 13 MB for the paper's 1x network at 224x224)."""
    WORK_DONE["activations"] += 1
    return _taps(batch)


@st.cache_resource(hash_funcs=_HASH_FUNCS, max_entries=SETTINGS.inside_entries, show_spinner=False)
def inside_view(_taps, key: str, batch: np.ndarray, stage: int, unit: int, per_group: int, contrast: str,
                titles: tuple[str, ...]) -> dict:
    """The Inside view's panels and figures of one unit for one picture. `titles`: of the first
    1x1 conv, the shuffle, the depthwise conv, the energy chart, the output and the shortcut."""
    from shufflenet import activations as act

    from . import figures_inside

    maps = activation_maps(_taps, key, batch)
    taps = act.unit_taps(_taps.config, stage, unit)
    panels = {"gconv1": act.before_shuffle(maps, taps, per_group, contrast),
              "depthwise": act.after_depthwise(maps, taps, per_group, contrast),
              "output": act.unit_output(maps, taps, per_group, contrast),
              "shortcut": act.shortcut(maps, taps, per_group, contrast)}
    if taps.shuffle is not None:
        panels["shuffle"] = act.after_shuffle(maps, taps, per_group, contrast)
    t_gconv1, t_shuffle, t_depthwise, t_energy, t_output, t_shortcut = titles
    named = {"gconv1": t_gconv1, "shuffle": t_shuffle, "depthwise": t_depthwise, "output": t_output,
             "shortcut": t_shortcut}
    energy = act.energy_table(maps, taps)
    return {
        "taps": taps, "panels": panels, "energy": energy, "top": act.top_class(maps),
        "figures": {**{k: figures.frozen(figures_inside.tiles(p, named[k])) for k, p in panels.items()},
                    "energy": figures.frozen(figures_inside.energy(energy, t_energy))},
    }
