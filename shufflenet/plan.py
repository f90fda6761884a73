"""The architecture as data (paper Table 1 and Fig. 2).

`unit_specs(config)` gives one row per ShuffleNet unit (its widths, groups, stride and sizes);
`layer_plan(config)` gives one `LayerSpec` per layer. The Keras builder, the cost tables, the
diagrams and the ImageNet importer all walk the layer plan, so the unit's layer sequence is
written once, in `_unit`. The plan transformations (`fold_pads`, `fold_batchnorm`,
`fuse_shuffle`) describe other graphs of the same network: the fast training graph and the
folded inference graph.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .config import STAGES, ShuffleNetConfig
from .naming import layer_name


@dataclasses.dataclass(frozen=True)
class UnitSpec:
    stage: int  # 2, 3 or 4
    unit: int  # 1-based
    stride: int  # 2 for a stage's first unit (Fig. 2c), else 1 (Fig. 2b)
    in_channels: int
    out_channels: int  # the unit's output, after add / concat
    bottleneck: int  # output of the first 1x1 conv, input of the depthwise conv
    groups1: int  # groups of the first 1x1 conv (1 in stage 2's first unit)
    groups: int  # groups of the second 1x1 conv and of the shuffle
    in_size: int  # spatial side of the input
    out_size: int

    @property
    def branch_out(self) -> int:
        """Channels of the residual branch: all of them at stride 1, (out - in) at stride 2,
        where the average-pooled shortcut is concatenated."""
        return self.out_channels - self.in_channels if self.stride == 2 else self.out_channels


def stem_sizes(config: ShuffleNetConfig) -> tuple[int, int]:
    """Spatial side after Conv1 (stride 2) and after the max pool (stride 2)."""
    return config.input_size // 2, config.input_size // 4


def unit_specs(config: ShuffleNetConfig) -> list[UnitSpec]:
    specs = []
    channels = config.stem_width
    size = stem_sizes(config)[1]
    for stage, units, width in zip(STAGES, config.blocks, config.stage_widths):
        for unit in range(1, units + 1):
            stride = 2 if unit == 1 else 1
            out_size = size // stride
            specs.append(
                UnitSpec(
                    stage=stage,
                    unit=unit,
                    stride=stride,
                    in_channels=channels,
                    out_channels=width,
                    bottleneck=config.bottleneck_channels(width),
                    groups1=config.first_pointwise_groups(stage, unit),
                    groups=config.groups,
                    in_size=size,
                    out_size=out_size,
                )
            )
            channels, size = width, out_size
    return specs


def shuffle_permutation(channels: int, groups: int, layout: str = "paper") -> np.ndarray:
    """The paper's channel shuffle (Sec. 3.1) as an index array, ``out = x[..., perm]``.

    "paper": reshape the channel axis to (g, n), transpose to (n, g), flatten: output channel
    ``k*g + j`` takes input channel ``j*n + k``. "transposed": reshape to (n, g) instead, the
    inverse permutation (megvii's released code).
    """
    if layout not in ("paper", "transposed"):
        raise ValueError(f"`layout` must be 'paper' or 'transposed'. Received: layout={layout!r}")
    if groups < 1 or channels % groups:
        raise ValueError(
            f"Channel shuffle needs channels divisible by groups. Received: channels={channels}, "
            f"groups={groups}"
        )
    n = channels // groups
    if layout == "transposed":
        return np.arange(channels).reshape(n, groups).T.reshape(-1)
    return np.arange(channels).reshape(groups, n).T.reshape(-1)


# --- the layer plan: every layer of the network, once -------------------------------------------

@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer of `build_model(config)`, described before any Keras object exists.

    `inputs` names the layers it reads ("image" is the model input); `input_shape` is the shape
    of its last input (for add / concat: the residual branch). Costs follow `complexity`: MACs
    are multiply-adds, params the trainable weights, `non_trainable` the BN statistics.
    """

    name: str
    op: str  # see `OPS`
    stage: str  # "stem", "stage2".."stage4", "classifier"
    unit: int | None  # 1-based within a stage, None for the stem and the classifier
    part: str  # the name's last part: "gconv1", "shuffle", "shortcut_pool", ...
    inputs: tuple[str, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    groups: int = 1
    kernel: int = 0  # side of the kernel or pooling window (0: none)
    stride: int = 1
    padding: int = 0  # zero pixels added on every side (pad layers; see `fold_pads`)
    params: int = 0
    non_trainable: int = 0
    macs: int = 0
    bias: bool = False  # conv layers: a bias (set by `fold_batchnorm` for inference graphs)
    shuffled_output: bool = False  # gconv1 writes its output in shuffled order (`fuse_shuffle`)
    offset: int = 0  # split layers: the first input channel they take (ShuffleNet v2's channel split)

    @property
    def filters(self) -> int:
        return self.output_shape[-1]

    @property
    def activations(self) -> int:
        """Elements of the output (batch 1)."""
        return math.prod(self.output_shape)


#: Every op of the plan: what it is, in words (used by tables, diagrams and tests).
OPS = {
    "pad": "zero padding", "conv3x3": "3x3 convolution", "batchnorm": "batch normalization",
    "relu": "ReLU", "maxpool": "3x3 max pooling", "conv1x1": "1x1 convolution",
    "gconv1x1": "1x1 group convolution", "shuffle": "channel shuffle", "dwconv3x3": "3x3 depthwise convolution",
    "avgpool": "3x3 average pooling", "concat": "concatenation", "add": "addition",
    "global_pool": "global average pooling", "fc": "fully connected",
    # Ops of the other families (`shufflenet.families`): MobileNets clip at 6 as their reference
    # implementations do; ShuffleNet v2 splits the channels into two halves.
    "relu6": "ReLU6", "split": "channel split",
}


class LayerWriter:
    """Appends LayerSpecs, each reading the previous one unless told otherwise (the other
    families' plans, `shufflenet.families`, write their units with it too)."""

    def __init__(self, stage: str, unit: int | None, layers: list[LayerSpec]):
        self.stage, self.unit, self.layers = stage, unit, layers

    def name(self, part: str) -> str:
        return layer_name(self.stage if self.unit is None else int(self.stage[5:]), part, unit=self.unit)

    def add(self, part: str, op: str, src: str | tuple[str, ...], in_shape, out_shape, **kw) -> str:
        name = self.name(part)
        inputs = (src,) if isinstance(src, str) else tuple(src)
        self.layers.append(LayerSpec(name, op, self.stage, self.unit, part, inputs, tuple(in_shape),
                                     tuple(out_shape), **kw))
        return name

    def bn(self, part: str, src: str, shape) -> str:
        c = shape[-1]
        return self.add(part, "batchnorm", src, shape, shape, params=2 * c, non_trainable=2 * c)

    def pad(self, part: str, src: str, shape) -> tuple[str, tuple]:
        h, w, c = shape
        out = (h + 2, w + 2, c)
        return self.add(part, "pad", src, shape, out, padding=1), out


def write_stem(config: ShuffleNetConfig, layers: list[LayerSpec]) -> tuple[str, tuple]:
    """Conv1 (3x3, stride 2) + BN + ReLU, then 3x3 max pool, stride 2 (paper Table 1), each
    with one pixel of explicit, symmetric zero padding as in the reference implementations."""
    s = LayerWriter("stem", None, layers)
    size, c_in, w = config.input_size, config.channels, config.stem_width
    s1, s2 = stem_sizes(config)
    x, shape = s.pad("pad", "image", (size, size, c_in))
    x = s.add("conv", "conv3x3", x, shape, (s1, s1, w), kernel=3, stride=2, params=9 * c_in * w,
              macs=s1 * s1 * 9 * c_in * w)
    x = s.bn("bn", x, (s1, s1, w))
    x = s.add("relu", "relu", x, (s1, s1, w), (s1, s1, w))
    # The input is post-ReLU (>= 0), so zero padding acts as the -inf padding of a max pool.
    x, shape = s.pad("pool_pad", x, (s1, s1, w))
    return s.add("pool", "maxpool", x, shape, (s2, s2, w), kernel=3, stride=2), (s2, s2, w)


def _unit(config: ShuffleNetConfig, u: UnitSpec, x: str, layers: list[LayerSpec]) -> str:
    """One ShuffleNet unit (paper Fig. 2b at stride 1, Fig. 2c at stride 2): 1x1 group conv ->
    BN -> ReLU -> channel shuffle -> 3x3 depthwise conv -> BN (no ReLU, Sec. 3.2) -> 1x1 group
    conv -> BN; added to the identity, or concatenated after a 3x3 average-pooled shortcut
    (shortcut first); then ReLU. The only place the unit's layer sequence is written."""
    s = LayerWriter(f"stage{u.stage}", u.unit, layers)
    hin, hout, cin, b = u.in_size, u.out_size, u.in_channels, u.bottleneck
    x_in, mid_in, mid_out = (hin, hin, cin), (hin, hin, b), (hout, hout, b)
    unit_input = x
    y = s.add("gconv1", "gconv1x1" if u.groups1 > 1 else "conv1x1", x, x_in, mid_in, groups=u.groups1, kernel=1,
              params=cin * b // u.groups1, macs=hin * hin * cin * b // u.groups1)
    y = s.bn("bn1", y, mid_in)
    y = s.add("relu1", "relu", y, mid_in, mid_in)
    if u.groups > 1 and config.shuffle:
        y = s.add("shuffle", "shuffle", y, mid_in, mid_in, groups=u.groups)
    dw_in = mid_in
    if u.stride == 2:
        y, dw_in = s.pad("dwpad", y, mid_in)
    y = s.add("dwconv", "dwconv3x3", y, dw_in, mid_out, groups=b, kernel=3, stride=u.stride,
              padding=0 if u.stride == 2 else 1, params=9 * b, macs=hout * hout * 9 * b)
    y = s.bn("bn2", y, mid_out)  # no ReLU after the depthwise conv (paper Sec. 3.2)
    branch = (hout, hout, u.branch_out)
    y = s.add("gconv2", "gconv1x1" if u.groups > 1 else "conv1x1", y, mid_out, branch, groups=u.groups, kernel=1,
              params=b * u.branch_out // u.groups, macs=hout * hout * b * u.branch_out // u.groups)
    y = s.bn("bn3", y, branch)
    out = (hout, hout, u.out_channels)
    if u.stride == 2:
        sc, shape = s.pad("shortcut_pad", unit_input, x_in)
        sc = s.add("shortcut_pool", "avgpool", sc, shape, (hout, hout, cin), kernel=3, stride=2)
        y = s.add("concat", "concat", (sc, y), branch, out)
    else:
        y = s.add("add", "add", (unit_input, y), branch, out)
    return s.add("relu", "relu", y, out, out)


def write_classifier(config: ShuffleNetConfig, x: str, shape, layers: list[LayerSpec]) -> None:
    """Global average pool + fully connected layer with softmax (paper Table 1)."""
    s = LayerWriter("classifier", None, layers)
    c, k = shape[-1], config.num_classes
    x = s.add("pool", "global_pool", x, shape, (c,))
    s.add("fc", "fc", x, (c,), (k,), params=c * k + (k if config.fc_bias else 0), macs=c * k, bias=config.fc_bias)


@functools.lru_cache(maxsize=256)
def layer_plan(config: ShuffleNetConfig) -> tuple[LayerSpec, ...]:
    """Every layer of the network of `config`, in model order: what the Keras builder builds,
    the cost tables count, the diagrams draw and the ImageNet importer maps. A configuration of
    another family (`shufflenet.families`) writes its own plan with the same LayerSpec rows."""
    if not isinstance(config, ShuffleNetConfig):
        return config.layer_plan()
    layers: list[LayerSpec] = []
    x, shape = write_stem(config, layers)
    for u in unit_specs(config):
        x = _unit(config, u, x, layers)
        shape = (u.out_size, u.out_size, u.out_channels)
    write_classifier(config, x, shape, layers)
    return tuple(layers)


# --- plan transformations: other graphs of the same network -------------------------------------

def fold_pads(plan: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
    """The plan with every pad layer merged into the layer that reads it (which then pads by
    itself): the same function with fewer passes over memory, for the fast training graph."""
    pads = {p.name: p for p in plan if p.op == "pad"}
    out = []
    for layer in plan:
        if layer.op == "pad":
            continue
        src = [pads[n] for n in layer.inputs if n in pads]
        if src:
            (pad,) = src
            layer = dataclasses.replace(layer, inputs=pad.inputs, input_shape=pad.input_shape, padding=pad.padding)
        out.append(layer)
    return tuple(out)


def fold_batchnorm(plan: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
    """The plan with every BN merged into the conv before it (which gains a bias): the
    inference graph. `optimize.fold_weights` computes the folded kernels."""
    bns = {b.inputs[0]: b.name for b in plan if b.op == "batchnorm"}
    renamed = {b.name: b.inputs[0] for b in plan if b.op == "batchnorm"}
    out = []
    for layer in plan:
        if layer.op == "batchnorm":
            continue
        inputs = tuple(renamed.get(n, n) for n in layer.inputs)
        layer = dataclasses.replace(layer, inputs=inputs, bias=layer.bias or layer.name in bns)
        out.append(layer)
    return tuple(out)


def fuse_shuffle(plan: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
    """The plan with each channel shuffle removed and the unit's first 1x1 conv writing its
    output directly in shuffled order (BN and ReLU act per channel, so the fixed permutation
    moves through them). For folded inference graphs with the paper's layout. A shuffle in a unit
    without a first 1x1 conv to write it (ShuffleNet v2's, after the concat) stays as it is."""
    writers = {(layer.stage, layer.unit) for layer in plan if layer.part == "gconv1"}
    shuffles = {s.name: s for s in plan if s.op == "shuffle" and (s.stage, s.unit) in writers}
    source = {s.name: s.inputs[0] for s in shuffles.values()}
    units_shuffled = {(s.stage, s.unit) for s in shuffles.values()}
    out = []
    for layer in plan:
        if layer.name in shuffles:
            continue
        if layer.part == "gconv1" and (layer.stage, layer.unit) in units_shuffled:
            layer = dataclasses.replace(layer, shuffled_output=True)
        out.append(dataclasses.replace(layer, inputs=tuple(source.get(n, n) for n in layer.inputs)))
    return tuple(out)


def unit_layers(config: ShuffleNetConfig, stage: int, unit: int) -> tuple[LayerSpec, ...]:
    """The layers of one unit, in order."""
    key = f"stage{stage}"
    found = tuple(layer for layer in layer_plan(config) if layer.stage == key and layer.unit == unit)
    if not found:
        raise ValueError(f"Stage {stage} has no unit {unit}: it has {config.blocks[stage - 2]} unit(s).")
    return found
