"""Builds the Keras ShuffleNet v1 model, read top-down in the paper's words:
stem -> stages of units -> classifier (paper Table 1, Fig. 2)."""

from __future__ import annotations

import keras
from keras import layers

from .config import ShuffleNetConfig
from .layers import ChannelShuffle, GroupConv1x1
from .naming import layer_name
from .plan import UnitSpec, unit_specs

BN_EPSILON = 1e-5  # the reference implementations' (PyTorch) default
BN_MOMENTUM = 0.9


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def stem(x, config: ShuffleNetConfig):
    """Conv1 (3x3, stride 2) + BN + ReLU, then 3x3 max pool, stride 2 (paper Table 1).

    Padding is explicit and symmetric (1 pixel), as in the reference implementations;
    Keras's "same" would pad only bottom/right at stride 2.
    """
    x = layers.ZeroPadding2D(1, name=layer_name("stem", "pad"))(x)
    x = layers.Conv2D(config.stem_width, 3, strides=2, use_bias=False, name=layer_name("stem", "conv"))(x)
    x = _bn(layer_name("stem", "bn"))(x)
    x = layers.ReLU(name=layer_name("stem", "relu"))(x)
    # The input is post-ReLU (>= 0), so zero padding acts as the -inf padding of a max pool.
    x = layers.ZeroPadding2D(1, name=layer_name("stem", "pool_pad"))(x)
    return layers.MaxPooling2D(3, strides=2, name=layer_name("stem", "pool"))(x)


def shufflenet_unit(x, spec: UnitSpec, shuffle_layout: str = "paper"):
    """One ShuffleNet unit (paper Fig. 2b stride 1, Fig. 2c stride 2)."""

    def name(part: str) -> str:
        return layer_name(spec.stage, part, unit=spec.unit)

    shortcut = x
    y = GroupConv1x1(spec.bottleneck, groups=spec.groups1, name=name("gconv1"))(x)
    y = _bn(name("bn1"))(y)
    y = layers.ReLU(name=name("relu1"))(y)
    if spec.groups > 1:
        y = ChannelShuffle(spec.groups, layout=shuffle_layout, name=name("shuffle"))(y)
    if spec.stride == 2:
        y = layers.ZeroPadding2D(1, name=name("dwpad"))(y)
        y = layers.DepthwiseConv2D(3, strides=2, use_bias=False, name=name("dwconv"))(y)
    else:
        y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=name("dwconv"))(y)
    y = _bn(name("bn2"))(y)  # no ReLU after the depthwise conv (paper Sec. 3.2)
    y = GroupConv1x1(spec.branch_out, groups=spec.groups, name=name("gconv2"))(y)
    y = _bn(name("bn3"))(y)
    if spec.stride == 2:
        s = layers.ZeroPadding2D(1, name=name("shortcut_pad"))(shortcut)
        s = layers.AveragePooling2D(3, strides=2, name=name("shortcut_pool"))(s)
        y = layers.Concatenate(name=name("concat"))([s, y])
    else:
        y = layers.Add(name=name("add"))([shortcut, y])
    return layers.ReLU(name=name("relu"))(y)


def classifier(x, config: ShuffleNetConfig):
    """Global average pool + fully connected layer with softmax (paper Table 1)."""
    x = layers.GlobalAveragePooling2D(name=layer_name("classifier", "pool"))(x)
    return layers.Dense(config.num_classes, activation="softmax", use_bias=config.fc_bias,
                        name=layer_name("classifier", "fc"))(x)


def build_model(config: ShuffleNetConfig | None = None, name: str | None = None) -> keras.Model:
    """The ShuffleNet v1 Keras model of `config` (default: the paper's 1x, g=3, 224x224x3)."""
    config = config or ShuffleNetConfig()
    if not isinstance(config, ShuffleNetConfig):
        raise ValueError(f"`config` must be a ShuffleNetConfig. Received: {type(config).__name__}")
    inputs = keras.Input((config.input_size, config.input_size, config.channels), name="image")
    x = stem(inputs, config)
    for spec in unit_specs(config):
        x = shufflenet_unit(x, spec, shuffle_layout=config.shuffle_layout)
    outputs = classifier(x, config)
    default = f"shufflenet_{config.scale:g}x_g{config.groups}".replace(".", "_")
    return keras.Model(inputs, outputs, name=name or default)
