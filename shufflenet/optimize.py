"""An inference graph of a trained ShuffleNet: the same function, fewer passes over memory.

`inference_model(model, config)` returns a new Keras model that computes what `model` computes
in inference mode (tested to 1e-4). It is `model.build_graph` over a transformed layer plan:
- `plan.fold_batchnorm`: every BatchNormalization merged into the conv before it (the kernel
  scaled per output channel, a bias added), computed by `fold_weights`;
- `plan.fuse_shuffle` (paper layout, einsum group convs): the channel shuffle merged into the
  first 1x1 group conv, which writes its output directly in the shuffled order (the shuffle is a
  fixed permutation and BN/ReLU act per channel, so the permutation moves through them).

MACs are unchanged; what goes is memory traffic: BN and shuffle are cheap in MACs but each
reads and writes a whole activation tensor, and grouped settings have more activations.
Layer names keep the `stage3_unit2_gconv1` scheme, so the cost tables still parse them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from . import layers as sl
from .config import ShuffleNetConfig
from .model import build_graph
from .plan import LayerSpec, fold_batchnorm, fuse_shuffle, layer_plan, shuffle_permutation

POINTWISE = ("einsum", "native")


def _bn_scale_shift(bn: layers.BatchNormalization):
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def inference_plan(config: ShuffleNetConfig, pointwise: str = "einsum") -> tuple[LayerSpec, ...]:
    """The layer plan of the folded graph: BN folded; shuffle fused where the einsum group conv
    can write the paper's order."""
    if pointwise not in POINTWISE:
        raise ValueError(f"`pointwise` must be 'einsum' or 'native'. Received: pointwise={pointwise!r}")
    plan = fold_batchnorm(layer_plan(config))
    if pointwise == "einsum" and config.shuffle_layout == "paper":
        plan = fuse_shuffle(plan)
    return plan


def fold_weights(model: keras.Model, config: ShuffleNetConfig, plan: tuple[LayerSpec, ...],
                 pointwise: str = "einsum") -> dict[str, list[np.ndarray]]:
    """Weights of every layer of the folded `plan`, computed from the trained `model`."""
    bn_of = {b.inputs[0]: b.name for b in layer_plan(config) if b.op == "batchnorm"}
    get = model.get_layer
    out: dict[str, list[np.ndarray]] = {}
    for spec in plan:
        if spec.op not in ("conv3x3", "conv1x1", "gconv1x1", "dwconv3x3", "fc"):
            continue
        kernel = np.asarray(get(spec.name).kernel, dtype=np.float64)
        if spec.op == "fc":
            out[spec.name] = get(spec.name).get_weights()
            continue
        scale, shift = _bn_scale_shift(get(bn_of[spec.name]))
        if spec.op == "conv3x3":
            kernel = kernel * scale
        elif spec.op == "dwconv3x3":
            kernel = kernel * scale[None, None, :, None]
        else:  # (g, C/g, F/g) group kernel: output channel j*F/g + o is kernel[j, :, o]
            g, _, co = kernel.shape
            kernel = kernel * scale.reshape(g, 1, co)
            if spec.shuffled_output and g > 1:  # the einsum writes (n, g): bias in shuffled order
                shift = shift.reshape(g, co).T.reshape(-1)
            elif spec.shuffled_output:  # an ungrouped conv before a shuffle: permute its output columns
                perm = shuffle_permutation(spec.filters, config.groups, config.shuffle_layout)
                kernel, shift = kernel[:, :, perm], shift[perm]
            if pointwise == "native":  # Keras Conv2D(groups=g): (1, 1, C/g, F)
                kernel = np.concatenate(list(kernel), axis=-1)[None, None]
        out[spec.name] = [kernel.astype(np.float32), shift.astype(np.float32)]
    return out


def _einsum_pointwise(spec: LayerSpec, config: ShuffleNetConfig):
    return sl.GroupConv1x1(spec.filters, groups=spec.groups, use_bias=True,
                           shuffle_output=spec.shuffled_output and spec.groups > 1, name=spec.name)


def _native_pointwise(spec: LayerSpec, config: ShuffleNetConfig):
    return layers.Conv2D(spec.filters, 1, groups=spec.groups, name=spec.name)


def inference_model(model: keras.Model, config: ShuffleNetConfig, pointwise: str = "einsum") -> keras.Model:
    """The BN-folded inference graph of `model` (built by `build_model(config)`).

    pointwise="einsum" (TensorFlow): our batched-matmul group conv, with the channel shuffle
    fused into the first one. pointwise="native" (TFLite): Keras `Conv2D(groups=g)`, which the
    TFLite converter turns into one grouped CONV_2D that XNNPACK runs, plus a static shuffle.
    """
    plan = inference_plan(config, pointwise)
    make = _einsum_pointwise if pointwise == "einsum" else _native_pointwise
    folded = build_graph(config, plan, {"conv1x1": make, "gconv1x1": make}, name=f"{model.name}_inference")
    for name, weights in fold_weights(model, config, plan, pointwise).items():
        folded.get_layer(name).set_weights(weights)
    return folded
