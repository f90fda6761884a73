"""Builds Keras graphs of a ShuffleNet v1 by walking its layer plan (`plan.layer_plan`); the
other families' plans (`shufflenet.families`) are built by the same walk.

`build_model(config)` is the paper's network (Table 1, Fig. 2). The builder knows no layer
sequence of its own: for every `LayerSpec` it asks a *factory* for the op ("gconv1x1",
"batchnorm", ...) to make the Keras layer, and wires it to the layers the spec names. Other
graphs of the same network are the same builder with another plan and other factories:

- `training_graph(config)`: the fast training graph (pads merged into the layers that read
  them, batch norm with a hand-written gradient); `copy_weights` moves its weights into
  `build_model(config)`, whose checkpoints every other part of the project reads.
- `optimize.inference_model`: the BN-folded inference graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import keras
from keras import layers

from . import layers as sl
from .config import ShuffleNetConfig
from .families.base import FamilyConfig
from .plan import LayerSpec, fold_pads, layer_plan

BN_EPSILON = 1e-5  # the reference implementations' (PyTorch) default
BN_MOMENTUM = 0.9

Factory = Callable[[LayerSpec, ShuffleNetConfig], keras.layers.Layer]


def _conv3x3(spec: LayerSpec, config: ShuffleNetConfig):
    if spec.padding:
        return sl.PaddedConv2D(spec.filters, 3, strides=spec.stride, use_bias=spec.bias, name=spec.name)
    return layers.Conv2D(spec.filters, 3, strides=spec.stride, use_bias=spec.bias, name=spec.name)


def _dwconv(spec: LayerSpec, config: ShuffleNetConfig):
    if spec.stride == 1:  # "same" pads one pixel on every side at stride 1
        return layers.DepthwiseConv2D(3, padding="same", use_bias=spec.bias, name=spec.name)
    if spec.padding:
        return sl.PaddedDepthwiseConv2D(3, strides=spec.stride, use_bias=spec.bias, name=spec.name)
    return layers.DepthwiseConv2D(3, strides=spec.stride, use_bias=spec.bias, name=spec.name)


def _pointwise(spec: LayerSpec, config: ShuffleNetConfig):
    return sl.GroupConv1x1(spec.filters, groups=spec.groups, use_bias=spec.bias, shuffle_output=spec.shuffled_output,
                           name=spec.name)


def _pool(kind: str):
    def make(spec: LayerSpec, config: ShuffleNetConfig):
        if spec.padding:
            return sl.PaddedPool2D(kind, spec.kernel, spec.stride, name=spec.name)
        cls = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
        return cls(spec.kernel, strides=spec.stride, name=spec.name)

    return make


#: The paper's network: one Keras layer per `LayerSpec`.
KERAS_FACTORIES: dict[str, Factory] = {
    "pad": lambda s, c: layers.ZeroPadding2D(s.padding, name=s.name),
    "conv3x3": _conv3x3,
    "batchnorm": lambda s, c: layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=s.name),
    "relu": lambda s, c: layers.ReLU(name=s.name),
    "maxpool": _pool("max"),
    "conv1x1": _pointwise,
    "gconv1x1": _pointwise,
    "shuffle": lambda s, c: sl.ChannelShuffle(s.groups, layout=c.shuffle_layout, name=s.name),
    "dwconv3x3": _dwconv,
    "avgpool": _pool("avg"),
    "concat": lambda s, c: layers.Concatenate(name=s.name),
    "add": lambda s, c: layers.Add(name=s.name),
    "global_pool": lambda s, c: layers.GlobalAveragePooling2D(name=s.name),
    "fc": lambda s, c: layers.Dense(c.num_classes, activation="softmax", use_bias=s.bias, name=s.name),
    "relu6": lambda s, c: layers.ReLU(6.0, name=s.name),
    "split": lambda s, c: sl.ChannelSplit(s.offset, s.filters, name=s.name),
}


def _check(config, families: bool = False) -> ShuffleNetConfig:
    config = config or ShuffleNetConfig()
    if families and isinstance(config, FamilyConfig):
        return config
    if not isinstance(config, ShuffleNetConfig):
        allowed = "a ShuffleNetConfig or a family configuration (shufflenet.families)" if families else \
            "a ShuffleNetConfig"
        raise ValueError(f"`config` must be {allowed}. Received: {type(config).__name__}")
    return config


def default_name(config: ShuffleNetConfig) -> str:
    """`shufflenet_0_5x_g3`, `shufflenet_1x_g8_noshuffle`; another family's `model_name`
    (`mobilenet_v2_1x`)."""
    if isinstance(config, FamilyConfig):
        return config.model_name
    name = f"shufflenet_{config.scale:g}x_g{config.groups}".replace(".", "_")
    return name if config.shuffle else name + "_noshuffle"


def build_graph(config: ShuffleNetConfig, plan: tuple[LayerSpec, ...],
                factories: Mapping[str, Factory] | None = None, name: str | None = None) -> keras.Model:
    """A Keras model of `plan` (a layer plan of `config`, maybe transformed), each layer made by
    `factories` (default `KERAS_FACTORIES`; entries given replace those ops only)."""
    make = {**KERAS_FACTORIES, **(factories or {})}
    inputs = keras.Input((config.input_size, config.input_size, config.channels), name="image")
    tensors = {"image": inputs}
    for spec in plan:
        args = [tensors[n] for n in spec.inputs]
        tensors[spec.name] = make[spec.op](spec, config)(args if len(args) > 1 else args[0])
    return keras.Model(inputs, tensors[plan[-1].name], name=name or default_name(config))


def build_model(config: ShuffleNetConfig | None = None, name: str | None = None) -> keras.Model:
    """The ShuffleNet v1 Keras model of `config` (default: the paper's 1x, g=3, 224x224x3), or
    the model of another family's configuration (`shufflenet.families`)."""
    config = _check(config, families=True)
    return build_graph(config, layer_plan(config), name=name)


#: The fast training graph's factories: the same layers, computed with fewer passes over memory.
TRAINING_FACTORIES: dict[str, Factory] = {
    "batchnorm": lambda s, c: sl.FastBatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=s.name),
}


def training_graph(config: ShuffleNetConfig | None = None, group_conv: str = "split") -> keras.Model:
    """The network of `config` arranged for fast training on CPU (same weights, same function):
    every pad merged into the conv or pool that reads it, batch norm with a hand-written
    gradient, and the 1x1 group convs computed as `group_conv` when training ("split": one
    matmul per group; "conv": TensorFlow's grouped convolution, which needs oneDNN on CPU).
    Train it, then `copy_weights` into `build_model(config)`."""
    config = _check(config)
    if group_conv not in sl.GROUP_CONV_TRAINING:
        raise ValueError(f"`group_conv` must be one of {', '.join(sl.GROUP_CONV_TRAINING)}. "
                         f"Received: group_conv={group_conv!r}")

    def pointwise(spec, c):
        return sl.GroupConv1x1(spec.filters, groups=spec.groups, use_bias=spec.bias, training_path=group_conv,
                               name=spec.name)

    factories = {**TRAINING_FACTORIES, "conv1x1": pointwise, "gconv1x1": pointwise}
    return build_graph(config, fold_pads(layer_plan(config)), factories, name=default_name(config) + "_training")


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Set every weighted layer of `target` from the layer of the same name in `source`;
    ValueError unless each one is found with the same shapes."""
    problems = []
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            weights = source.get_layer(layer.name).get_weights()
        except ValueError:
            problems.append(f"{layer.name}: not in {source.name}")
            continue
        if [w.shape for w in weights] != [tuple(v.shape) for v in layer.weights]:
            problems.append(f"{layer.name}: shapes differ")
            continue
        layer.set_weights(weights)
    if problems:
        raise ValueError(f"Cannot copy the weights of {source.name} into {target.name}: {'; '.join(problems[:4])}")
