"""An inference graph of a trained ShuffleNet: the same function, fewer passes over memory.

`inference_model(model, config)` returns a new Keras model that computes what `model` computes
in inference mode (tested to 1e-4) with:
- every BatchNormalization folded into the convolution before it (scale the kernel per output
  channel, add a bias);
- the channel shuffle fused into the first 1x1 group conv, which writes its output directly
  in the shuffled order (the shuffle is a fixed permutation and BN/ReLU act per channel, so the
  permutation moves through them).

MACs are unchanged; what goes is memory traffic: BN and shuffle are cheap in MACs but each
reads and writes a whole activation tensor, and grouped settings have more activations.
Layer names keep the `stage3_unit2_gconv1` scheme, so the cost tables still parse them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .config import ShuffleNetConfig
from .layers import ChannelShuffle, GroupConv1x1, shuffle_permutation
from .naming import layer_name
from .plan import unit_specs


def _bn_scale_shift(bn: layers.BatchNormalization):
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def _fold_group(kernel: np.ndarray, bn) -> tuple[np.ndarray, np.ndarray]:
    """Fold BN into a (g, C/g, F/g) group kernel; output channel j*F/g + o is kernel[j, :, o]."""
    scale, shift = _bn_scale_shift(bn)
    g, _, co = kernel.shape
    return (kernel * scale.reshape(g, 1, co)).astype(np.float32), shift.astype(np.float32)


def _to_shuffled(kernel_and_bias, groups):
    """Bias of a group conv whose output is written in shuffled order (n, g)."""
    kernel, bias = kernel_and_bias
    co = kernel.shape[-1]
    return kernel, bias.reshape(groups, co).T.reshape(-1)


def _native_group_conv(filters, groups, name):
    return layers.Conv2D(filters, 1, groups=groups, name=name)


def _native_weights(kernel_and_bias):
    """(g, C/g, F/g) group kernel -> Keras Conv2D(groups=g) kernel (1, 1, C/g, F)."""
    kernel, bias = kernel_and_bias
    return [np.concatenate(list(kernel), axis=-1)[None, None], bias]


def inference_model(model: keras.Model, config: ShuffleNetConfig, pointwise: str = "einsum") -> keras.Model:
    """The BN-folded inference graph of `model` (built by `build_model(config)`).

    pointwise="einsum" (TensorFlow): our batched-matmul group conv, with the channel shuffle
    fused into the first one. pointwise="native" (TFLite): Keras `Conv2D(groups=g)`, which the
    TFLite converter turns into one grouped CONV_2D that XNNPACK runs, plus a static shuffle.
    """
    if pointwise not in ("einsum", "native"):
        raise ValueError(f"`pointwise` must be 'einsum' or 'native'. Received: pointwise={pointwise!r}")
    native = pointwise == "native"
    fuse_shuffle = config.shuffle_layout == "paper" and not native
    get = model.get_layer
    weights: dict[str, list[np.ndarray]] = {}

    inputs = keras.Input((config.input_size, config.input_size, config.channels), name="image")
    x = layers.ZeroPadding2D(1, name=layer_name("stem", "pad"))(inputs)
    name = layer_name("stem", "conv")
    x = layers.Conv2D(config.stem_width, 3, strides=2, name=name)(x)
    scale, shift = _bn_scale_shift(get(layer_name("stem", "bn")))
    weights[name] = [(np.asarray(get(name).kernel) * scale).astype(np.float32), shift.astype(np.float32)]
    x = layers.ReLU(name=layer_name("stem", "relu"))(x)
    x = layers.ZeroPadding2D(1, name=layer_name("stem", "pool_pad"))(x)
    x = layers.MaxPooling2D(3, strides=2, name=layer_name("stem", "pool"))(x)

    for u in unit_specs(config):
        def n(part, u=u):
            return layer_name(u.stage, part, unit=u.unit)

        shortcut = x
        shuffled = fuse_shuffle and u.groups > 1
        kb = _fold_group(np.asarray(get(n("gconv1")).kernel), get(n("bn1")))
        if shuffled and u.groups1 > 1:
            weights[n("gconv1")] = list(_to_shuffled(kb, u.groups))
            y = GroupConv1x1(u.bottleneck, groups=u.groups1, use_bias=True, shuffle_output=True, name=n("gconv1"))(x)
        elif shuffled:  # stage 2's ungrouped first conv: permute its output columns instead
            perm = shuffle_permutation(u.bottleneck, u.groups)
            weights[n("gconv1")] = [kb[0][:, :, perm], kb[1][perm]]
            y = GroupConv1x1(u.bottleneck, groups=1, use_bias=True, name=n("gconv1"))(x)
        elif native:
            weights[n("gconv1")] = _native_weights(kb)
            y = _native_group_conv(u.bottleneck, u.groups1, n("gconv1"))(x)
        else:
            weights[n("gconv1")] = list(kb)
            y = GroupConv1x1(u.bottleneck, groups=u.groups1, use_bias=True, name=n("gconv1"))(x)
        y = layers.ReLU(name=n("relu1"))(y)
        if u.groups > 1 and not shuffled:
            y = ChannelShuffle(u.groups, layout=config.shuffle_layout, name=n("shuffle"))(y)
        if u.stride == 2:
            y = layers.ZeroPadding2D(1, name=n("dwpad"))(y)
            y = layers.DepthwiseConv2D(3, strides=2, name=n("dwconv"))(y)
        else:
            y = layers.DepthwiseConv2D(3, padding="same", name=n("dwconv"))(y)
        scale, shift = _bn_scale_shift(get(n("bn2")))
        dw = np.asarray(get(n("dwconv")).kernel)
        weights[n("dwconv")] = [(dw * scale[None, None, :, None]).astype(np.float32), shift.astype(np.float32)]
        kb2 = _fold_group(np.asarray(get(n("gconv2")).kernel), get(n("bn3")))
        if native:
            weights[n("gconv2")] = _native_weights(kb2)
            y = _native_group_conv(u.branch_out, u.groups, n("gconv2"))(y)
        else:
            weights[n("gconv2")] = list(kb2)
            y = GroupConv1x1(u.branch_out, groups=u.groups, use_bias=True, name=n("gconv2"))(y)
        if u.stride == 2:
            s = layers.ZeroPadding2D(1, name=n("shortcut_pad"))(shortcut)
            s = layers.AveragePooling2D(3, strides=2, name=n("shortcut_pool"))(s)
            y = layers.Concatenate(name=n("concat"))([s, y])
        else:
            y = layers.Add(name=n("add"))([shortcut, y])
        x = layers.ReLU(name=n("relu"))(y)

    x = layers.GlobalAveragePooling2D(name=layer_name("classifier", "pool"))(x)
    fc = get(layer_name("classifier", "fc"))
    out = layers.Dense(config.num_classes, activation="softmax", use_bias=config.fc_bias,
                       name=layer_name("classifier", "fc"))(x)
    folded = keras.Model(inputs, out, name=f"{model.name}_inference")
    for layer_name_, w in weights.items():
        folded.get_layer(layer_name_).set_weights(w)
    folded.get_layer(fc.name).set_weights(fc.get_weights())
    return folded

