"""Downloads: the `.keras` bytes reload in safe mode and compute the same function; the `.tflite`
and `.onnx` bytes run in their runtimes and match the Keras model; a model exported with a
configuration it was not built with is refused; tables become slide-ready LaTeX; every download
name comes from one maker."""

from __future__ import annotations

import json
import sys
import warnings

import keras
import numpy as np
import pandas as pd
import pytest

from shufflenet import ShuffleNetConfig, build_model
from shufflenet.export import (
    ONNX_BATCH,
    ONNX_INPUT,
    ONNX_OUTPUT,
    file_name,
    file_stem,
    keras_bytes,
    latex_table,
    onnx_bytes,
    tflite_bytes,
)


def _nontrivial(model, seed=0, fc_gain=1.0):
    """Random BN statistics (so folding them is exercised) and, with `fc_gain`, a sharper softmax
    (so outputs spread over 0..1 and a wrong graph cannot hide in near-uniform probabilities)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 1.5, c)])
    fc = model.layers[-1]
    fc.set_weights([w * fc_gain for w in fc.get_weights()])
    return model


@pytest.fixture(scope="module")
def tiny():
    config = ShuffleNetConfig(groups=3, input_size=32, blocks=(1, 2, 1), num_classes=10)
    model = _nontrivial(build_model(config))
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    return config, model, x


def test_keras_bytes_reload_in_safe_mode(tiny, tmp_path):
    config, model, x = tiny
    data = keras_bytes(model)
    assert data[:2] == b"PK"  # a zip archive
    path = tmp_path / f"{file_stem(config)}.keras"
    path.write_bytes(data)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), np.asarray(model(x, training=False)),
                               rtol=1e-6, atol=1e-7)


def test_tflite_bytes_run_in_the_interpreter_and_match(tiny):
    import tensorflow as tf

    config, model, x = tiny
    data = tflite_bytes(model, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert list(inp["shape"]) == [1, 32, 32, 3] and list(out["shape"]) == [1, 10]
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(out["index"]), np.asarray(model(x, training=False)),
                               rtol=1e-4, atol=1e-5)


# --- ONNX ------------------------------------------------------------------------------------

ONNX_CASES = {
    "g1-rgb-32": ShuffleNetConfig(groups=1, input_size=32, blocks=(1, 1, 1), num_classes=10),
    "g3-gray-64": ShuffleNetConfig(groups=3, input_size=64, channels=1, blocks=(1, 2, 1), num_classes=10, scale=0.5),
    "g3-rgb-32-transposed": ShuffleNetConfig(groups=3, input_size=32, blocks=(2, 1, 1), num_classes=7,
                                             shuffle_layout="transposed"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_bytes_run_in_onnxruntime_and_match(case):
    import onnx
    import onnxruntime as ort

    config = ONNX_CASES[case]
    keras.utils.set_random_seed(0)
    model = _nontrivial(build_model(config), fc_gain=4.0)
    data = onnx_bytes(model, config)

    proto = onnx.load_from_string(data)
    ops = {node.op_type for node in proto.graph.node}
    assert "Conv" in ops and ops <= {"Add", "AveragePool", "Concat", "Conv", "GlobalAveragePool", "MatMul", "MaxPool",
                                     "Pad", "Relu", "Reshape", "Softmax", "Squeeze", "Transpose"}, ops
    groups = {a.i for node in proto.graph.node if node.op_type == "Conv" for a in node.attribute if a.name == "group"}
    assert config.groups in groups  # the 1x1 group convs are grouped Convs, not per-group MatMuls
    assert json.loads({p.key: p.value for p in proto.metadata_props}["shufflenet.config"]) == config.to_dict()

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    size, channels = config.input_size, config.channels
    assert (inp.name, inp.shape, out.name, out.shape) == (
        ONNX_INPUT, [ONNX_BATCH, size, size, channels], ONNX_OUTPUT, [ONNX_BATCH, config.num_classes])
    x = np.random.default_rng(1).random((3, size, size, channels), dtype=np.float32)
    got = session.run(None, {ONNX_INPUT: x})[0]
    want = np.asarray(model(x, training=False))
    assert want.max() > 0.2, "the softmax should be sharp enough for the comparison to mean something"
    assert np.max(np.abs(got - want)) <= 1e-4, np.max(np.abs(got - want))

    wrong = np.zeros((1, size // 2, size // 2, channels), np.float32)  # the file states its input size
    with pytest.raises(Exception, match="invalid dimensions for input: image"):
        session.run(None, {ONNX_INPUT: wrong})


def test_export_refuses_a_config_the_model_was_not_built_with(tiny):
    config, model, _ = tiny
    with pytest.raises(ValueError, match=r"takes \(None, 32, 32, 3\).*Pass the configuration the model was built"):
        onnx_bytes(model, config.replace(input_size=64))
    with pytest.raises(ValueError, match=r"gives \(None, 10\).*says"):
        tflite_bytes(model, config.replace(num_classes=100))
    with pytest.raises(ValueError, match="does not fit `config`"):
        onnx_bytes(model, config.replace(groups=8))
    # same weights, another permutation: only running the graph can tell
    with pytest.raises(ValueError, match=r"does not compute what the model computes.*no file was written"):
        onnx_bytes(model, config.replace(shuffle_layout="transposed"))


def test_export_refuses_what_is_not_a_model_or_a_config(tiny):
    config, model, _ = tiny
    with pytest.raises(ValueError, match=r"`model` must be a Keras model.*Received: str"):
        onnx_bytes("model.keras", config)
    with pytest.raises(ValueError, match=r"`config` must be a ShuffleNetConfig. Received: dict"):
        onnx_bytes(model, config.to_dict())


def test_onnx_export_without_the_converter_says_what_to_install(tiny, monkeypatch):
    config, model, _ = tiny
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` fail
    with pytest.raises(ImportError, match=r"needs the packages tf2onnx and onnx.*pip install -r requirements.txt"):
        onnx_bytes(model, config)


# --- LaTeX tables ----------------------------------------------------------------------------

def test_latex_table_escapes_and_formats_numbers():
    df = pd.DataFrame({
        "stage_name": ["a_b", "50% & #1", None, "$x$ {y} ~ ^ \\"],
        "MACs": [1234567, 12, 0, -4321],
        "ms": [1.23456, float("nan"), 1234.5, 0.5],
        "units": [1000.0, None, 2.0, 16.0],  # an integer column with a gap: pandas makes it float
    }, index=[10, 20, 30, 40])
    assert latex_table(df) == (
        "\\begin{tabular}{lrrr}\n"
        "\\toprule\n"
        "stage\\_name & MACs & ms & units \\\\\n"
        "\\midrule\n"
        "a\\_b & 1,234,567 & 1.23 & 1,000 \\\\\n"
        "50\\% \\& \\#1 & 12 & -- & -- \\\\\n"
        "-- & 0 & 1,234.50 & 2 \\\\\n"
        "\\$x\\$ \\{y\\} \\textasciitilde \\space \\textasciicircum \\space \\textbackslash "
        " & -4,321 & 0.50 & 16 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
    )


def test_latex_table_with_caption_and_label_is_a_centred_float():
    df = pd.DataFrame({"g": [1, 3], "params": [1_870_000, 1_880_000]})
    assert latex_table(df, caption="Costs at 1x: 100% of #params_total", label="tab:costs_1x") == (
        "\\begin{table}\n"
        "\\centering\n"
        "\\caption{Costs at 1x: 100\\% of \\#params\\_total}\n"
        "\\label{tab:costs_1x}\n"
        "\\begin{tabular}{rr}\n"
        "\\toprule\n"
        "g & params \\\\\n"
        "\\midrule\n"
        "1 & 1,870,000 \\\\\n"
        "3 & 1,880,000 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
        "\\end{table}\n"
    )
    assert latex_table(df, precision=1).count("\\begin{tabular}") == 1


def test_latex_table_keeps_column_names_and_text_as_given():
    df = pd.DataFrame({"Output shape": [(28, 28, 240)], "Stage": ["Stage 2"], "ratio": [0.125]})
    assert latex_table(df, precision=3).splitlines()[2:5] == [
        "Output shape & Stage & ratio \\\\", "\\midrule", "(28, 28, 240) & Stage 2 & 0.125 \\\\"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"df": [[1, 2]]}, "`df` must be a pandas DataFrame. Received: list"),
    ({"label": "tab:50%"}, "`label` must be a LaTeX label"),
    ({"caption": 3}, "`caption` must be text or None"),
    ({"precision": -1}, "`precision` must be a whole number of decimals"),
])
def test_latex_table_bad_input(kwargs, message):
    kwargs = {"df": pd.DataFrame({"a": [1]}), **kwargs}
    with pytest.raises(ValueError, match=message):
        latex_table(**kwargs)


# --- file names ------------------------------------------------------------------------------

def test_file_name():
    assert file_name(ShuffleNetConfig(), "stage MACs", "svg") == "shufflenet-1x-g3-stage-macs.svg"
    assert file_name(ShuffleNetConfig(groups=8, scale=0.5, shuffle=False), "layers", ".CSV") == (
        "shufflenet-0.5x-g8-noshuffle-layers.csv")
    assert file_name(ShuffleNetConfig(groups=1, scale=1.5, input_size=64), "Latency (ms)_sweep", "csv") == (
        "shufflenet-1.5x-g1-64px-latency-ms-sweep.csv")
    assert file_name(ShuffleNetConfig(), "Größe & Kosten", "tar.gz") == "shufflenet-1x-g3-grosse-kosten.tar.gz"


@pytest.mark.parametrize(("config", "what", "ext", "message"), [
    (ShuffleNetConfig(), " -- ", "csv", "`what` must name the download"),
    (ShuffleNetConfig(), None, "csv", "`what` must name the download"),
    (ShuffleNetConfig(), "layers", "c/sv", "`ext` must be a file extension"),
    (ShuffleNetConfig(), "layers", "", "`ext` must be a file extension"),
    ({"groups": 3}, "layers", "csv", "`config` must be a ShuffleNetConfig"),
])
def test_file_name_bad_input(config, what, ext, message):
    with pytest.raises(ValueError, match=message):
        file_name(config, what, ext)


def test_file_stem():
    assert file_stem(ShuffleNetConfig(groups=8, scale=0.5)) == "shufflenet_0.5x_g8_224"
