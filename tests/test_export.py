"""Model downloads: the `.keras` bytes reload in safe mode and compute the same function; the
`.tflite` bytes run in the TFLite interpreter and match the Keras model."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from shufflenet import ShuffleNetConfig, build_model
from shufflenet.export import file_stem, keras_bytes, tflite_bytes


@pytest.fixture(scope="module")
def tiny():
    config = ShuffleNetConfig(groups=3, input_size=32, blocks=(1, 2, 1), num_classes=10)
    model = build_model(config)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BN statistics, so folding them is exercised
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 1.5, c)])
    x = rng.random((1, 32, 32, 3), dtype=np.float32)
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


def test_file_stem():
    assert file_stem(ShuffleNetConfig(groups=8, scale=0.5)) == "shufflenet_0.5x_g8_224"
