"""Downloads of a model: the Keras model as a `.keras` file and its TFLite flatbuffer, as bytes.

The `.keras` file holds our registered layers (no `Lambda`), so it reloads with
`keras.saving.load_model(path, safe_mode=True)`. The `.tflite` file is made from the BN-folded
inference graph with native grouped convolutions (`optimize.inference_model(pointwise="native")`):
the converter turns those into grouped CONV_2D ops that XNNPACK runs, with no dynamic-shape ops.
"""

from __future__ import annotations

import os
import tempfile

from .config import ShuffleNetConfig


def file_stem(config: ShuffleNetConfig) -> str:
    """`shufflenet_1x_g3_224`: scale, groups and input size, for download names."""
    return f"shufflenet_{config.scale:g}x_g{config.groups}_{config.input_size}"


def keras_bytes(model) -> bytes:
    """The model saved in Keras's native `.keras` format (architecture + weights), as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def tflite_bytes(model, config: ShuffleNetConfig) -> bytes:
    """A float32 TFLite flatbuffer of `model` (built by `build_model(config)`), made from its
    inference graph: same outputs as the model in inference mode."""
    from .benchmark import tflite_convert
    from .optimize import inference_model

    return tflite_convert(inference_model(model, config, pointwise="native"))
