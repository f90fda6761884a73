"""Downloads: a model as `.keras`, `.tflite` and `.onnx` bytes, tables as LaTeX, and their file names.

The `.keras` file holds our registered layers (no `Lambda`), so it reloads with
`keras.saving.load_model(path, safe_mode=True)`. The `.tflite` file is made from the BN-folded
inference graph with native grouped convolutions (`optimize.inference_model(pointwise="native")`):
the converter turns those into grouped CONV_2D ops that XNNPACK runs, with no dynamic-shape ops.

The `.onnx` file is converted from that same TFLite flatbuffer by tf2onnx, so it is the graph that
was already checked against the Keras model, and it holds only standard ONNX ops (grouped `Conv`,
pools, `Reshape`/`Transpose` for the channel shuffle). The direct routes do not work with Keras 3
on TensorFlow: Keras runs a grouped `Conv2D` on CPU inside an XLA-compiled function, which tf2onnx
leaves as an unsupported `StatefulPartitionedCall` (for `model.export(format="onnx")` as for
`tf2onnx.convert.from_keras`); the einsum inference graph converts, but into MatMuls with
run-time shape arithmetic instead of convolutions.

Before converting, every export runs the model and its inference graph on the same random batch
and refuses to write a file whose graph computes something else (a `config` that is not the one
the model was built with: weights alone cannot tell a shuffle layout apart).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import unicodedata
import warnings

import numpy as np

from .config import ShuffleNetConfig

#: ONNX opset of the `.onnx` download: tf2onnx's default, which every onnxruntime since 1.10 runs.
ONNX_OPSET = 15

#: How far the inference graph may be from the model (softmax outputs) before an export refuses:
#: BN folding moves float32 results by about 1e-7 relative; a wrong shuffle moves them by 1e-2.
_SELF_CHECK_RTOL, _SELF_CHECK_ATOL = 1e-3, 1e-6

#: Names of the ONNX graph's input and output, instead of the converter's `serving_default_image:0`.
ONNX_INPUT, ONNX_OUTPUT, ONNX_BATCH = "image", "probabilities", "batch"

# tf2onnx numbers the names it makes with a module-global counter: one conversion at a time.
_ONNX_LOCK = threading.Lock()

#: LaTeX's special characters, none of which may stand in a `\label{...}`.
_LABEL_FORBIDDEN = set("\\{}%#~^$&")


# --- file names -----------------------------------------------------------------------------

def file_stem(config: ShuffleNetConfig) -> str:
    """`shufflenet_1x_g3_224`: scale, groups and input size, for download names."""
    return f"shufflenet_{config.scale:g}x_g{config.groups}_{config.input_size}"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def file_name(config, what: str, ext: str) -> str:
    """The name of every download: `shufflenet-1x-g3-stage-macs.svg`,
    `shufflenet-0.5x-g8-noshuffle-layers.csv`, `shufflenet-1x-g3-64px-model.onnx`.

    One maker, so every file a person saves from one configuration sorts together and says which
    network it describes: scale, groups, `noshuffle` for the ablation, and the input size when it
    is not the paper's 224 (MACs and latencies depend on it). `what` is slugified (lowercase,
    hyphens); `ext` is given without or with its dot. `config` needs `.scale`, `.groups`,
    `.shuffle` and `.input_size`, as `ShuffleNetConfig` has.
    """
    if not isinstance(what, str) or not _slug(what):
        raise ValueError(f"`what` must name the download in letters or digits, e.g. 'stage MACs'. Received: {what!r}")
    if not isinstance(ext, str) or not re.fullmatch(r"[a-z0-9]+(\.[a-z0-9]+)*", ext.lower().lstrip(".")):
        raise ValueError(f"`ext` must be a file extension such as 'csv' or '.svg'. Received: ext={ext!r}")
    try:
        parts = [f"shufflenet-{config.scale:g}x", f"g{config.groups}"]
        if not config.shuffle:
            parts.append("noshuffle")
        if config.input_size != 224:
            parts.append(f"{config.input_size}px")
    except AttributeError as exc:
        raise ValueError(f"`config` must be a ShuffleNetConfig (scale, groups, shuffle, input_size). "
                         f"Received: {type(config).__name__} ({exc})") from None
    return f"{'-'.join(parts)}-{_slug(what)}.{ext.lower().lstrip('.')}"


# --- models ---------------------------------------------------------------------------------

def keras_bytes(model) -> bytes:
    """The model saved in Keras's native `.keras` format (architecture + weights), as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def _check_fits(model, config: ShuffleNetConfig) -> None:
    import keras

    from .families import FamilyConfig

    if not isinstance(config, (ShuffleNetConfig, FamilyConfig)):
        raise ValueError(f"`config` must be a ShuffleNetConfig. Received: {type(config).__name__} (another "
                         "family's network takes its configuration from shufflenet.families)")
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a Keras model built by `build_model(config)`. "
                         f"Received: {type(model).__name__}")
    want_in = (None, config.input_size, config.input_size, config.channels)
    want_out = (None, config.num_classes)
    if tuple(model.input_shape) != want_in or tuple(model.output_shape) != want_out:
        raise ValueError(
            f"`model` takes {tuple(model.input_shape)} and gives {tuple(model.output_shape)}, but `config` "
            f"({config.label}) says {want_in} -> {want_out}. Pass the configuration the model was built with."
        )


def _inference_graph(model, config: ShuffleNetConfig):
    """The BN-folded inference graph (native grouped convs) of `model`, checked to compute what
    `model` computes in inference mode on a random batch, so no export is silently wrong."""
    from .optimize import inference_model

    _check_fits(model, config)
    try:
        graph = inference_model(model, config, pointwise="native")
    except ValueError as exc:  # a missing layer or a weight of another shape
        raise ValueError(f"`model` ({model.name}) does not fit `config` ({config.label}): {str(exc).rstrip('.')}. "
                         "Pass the configuration the model was built with.") from None
    x = np.random.default_rng(0).random((2, config.input_size, config.input_size, config.channels),
                                        dtype=np.float32)
    want = np.asarray(model(x, training=False))
    got = np.asarray(graph(x, training=False))
    if not np.allclose(got, want, rtol=_SELF_CHECK_RTOL, atol=_SELF_CHECK_ATOL):
        worst = float(np.max(np.abs(got - want)))
        raise ValueError(
            f"The inference graph made from `model` ({model.name}) with `config` ({config.label}, "
            f"shuffle={getattr(config, 'shuffle', True)}, shuffle_layout={config.shuffle_layout!r}) does not "
            f"compute what the model computes (largest difference {worst:.3g}), so no file was written. Pass the "
            "configuration the model was built with; if it is that one, `shufflenet.optimize.inference_model` "
            "does not handle it."
        )
    return graph


def tflite_convert(model) -> bytes:
    """TFLite flatbuffer of a Keras model (float32)."""
    import contextlib
    import io

    from .settings import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    # The converter exports a SavedModel first and prints every captured tensor; keep it quiet.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        return converter.convert()


def tflite_bytes(model, config: ShuffleNetConfig) -> bytes:
    """A float32 TFLite flatbuffer of `model` (built by `build_model(config)`), made from its
    inference graph: same outputs as the model in inference mode."""
    return tflite_convert(_inference_graph(model, config))


def onnx_from_tflite(flatbuffer: bytes) -> bytes:
    """An ONNX model of a TFLite flatbuffer (tf2onnx, opset `ONNX_OPSET`): the path the .onnx
    download takes, without its renaming and metadata (the latency lab times it)."""
    _, tf2onnx = _onnx_modules()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        with _ONNX_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto, _ = tf2onnx.convert.from_tflite(path, opset=ONNX_OPSET)
    return proto.SerializeToString()


def _onnx_modules():
    try:
        import onnx
        import tf2onnx
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs the packages tf2onnx and onnx ({exc}). Install them with "
            "`pip install -r requirements.txt` (tf2onnx==1.17.0, onnx==1.23.2)."
        ) from exc
    return onnx, tf2onnx


def _rename(graph, old: str, new: str) -> None:
    for node in graph.node:
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                if name == old:
                    names[i] = new
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def onnx_bytes(model, config: ShuffleNetConfig) -> bytes:
    """A float32 ONNX model (opset `ONNX_OPSET`) of `model` (built by `build_model(config)`):
    same outputs as the model in inference mode.

    Input `image`, NHWC float32 (batch, H, W, C) as the Keras model takes it, any batch size;
    output `probabilities` (batch, classes). The configuration is stored in the model's
    metadata (`shufflenet.config`, JSON), so a file says which network it is.
    """
    onnx, tf2onnx = _onnx_modules()
    flatbuffer = tflite_bytes(model, config)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        with _ONNX_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice, numpy notices
            proto, _ = tf2onnx.convert.from_tflite(path, opset=ONNX_OPSET)
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise RuntimeError(f"tf2onnx made a graph with {len(graph.input)} inputs and {len(graph.output)} "
                           "outputs; a ShuffleNet has one of each.")
    _rename(graph, graph.input[0].name, ONNX_INPUT)
    _rename(graph, graph.output[0].name, ONNX_OUTPUT)
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = ONNX_BATCH
    graph.name = model.name
    proto.doc_string = (f"{config.label}: {config.input_size}x{config.input_size}x{config.channels} NHWC float32 "
                        f"input, {config.num_classes} softmax outputs; BN folded into the convolutions.")
    onnx.helper.set_model_props(proto, {"shufflenet.config": json.dumps(config.to_dict(), sort_keys=True)})
    try:
        # tf2onnx keeps going past ops it cannot convert, leaving them in the graph: refuse those here.
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise RuntimeError(f"tf2onnx {tf2onnx.__version__} made an invalid ONNX graph of {model.name}: {exc}") from None
    return proto.SerializeToString()


# --- tables ---------------------------------------------------------------------------------

#: Text-mode LaTeX for its special characters, as pandas escapes table cells (`escape="latex"`).
_LATEX_ESCAPES = str.maketrans({
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
})


def _latex_escape(text: str) -> str:
    return text.translate(_LATEX_ESCAPES)


def latex_table(df, caption: str | None = None, label: str | None = None, *, precision: int = 2) -> str:
    """A booktabs LaTeX tabular of `df` as a person puts it on a slide.

    No index; column names as given; LaTeX's special characters (`_ % & # $ { } ~ ^ \\`) escaped
    in names and cells; integers with thousands separators (`1,234,567`), also in float columns
    that only hold whole numbers (an integer column with a gap becomes float in pandas); other
    floats with `precision` decimals; None/NaN as an en dash (`--`), so a gap reads as "no value"
    rather than as a cell someone forgot. Numeric columns are right-aligned. With a `caption` or
    `label`, the tabular is wrapped in a centred `table` float. Needs \\usepackage{booktabs}.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"`df` must be a pandas DataFrame. Received: {type(df).__name__}")
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 12:
        raise ValueError(f"`precision` must be a whole number of decimals from 0 to 12. Received: {precision!r}")
    if caption is not None and not isinstance(caption, str):
        raise ValueError(f"`caption` must be text or None. Received: {type(caption).__name__}")
    if label is not None and (not isinstance(label, str) or not label or _LABEL_FORBIDDEN & set(label)):
        raise ValueError(f"`label` must be a LaTeX label such as 'tab:stages', without any of "
                         f"{' '.join(sorted(_LABEL_FORBIDDEN))}. Received: label={label!r}")
    styler = df.style.hide(axis="index").format(escape="latex", thousands=",", precision=precision, na_rep="--")
    whole = [i for i, (_, column) in enumerate(df.items()) if _whole_floats(column)]
    if whole:
        styler = styler.format(subset=df.columns[whole], escape="latex", thousands=",", precision=0, na_rep="--")
    styler = styler.format_index(escape="latex", axis=1)
    float_options = {}
    if caption is not None or label is not None:
        float_options = {"position_float": "centering", "label": label,
                         "caption": None if caption is None else _latex_escape(caption)}
    return styler.to_latex(hrules=True, **float_options)


def _whole_floats(column) -> bool:
    """A float column whose values (NaN aside) are all whole numbers: an integer column with gaps."""
    if column.dtype.kind != "f":
        return False
    values = column.dropna().to_numpy()
    return bool(len(values)) and all(math.isfinite(v) and float(v).is_integer() for v in values)
