"""MobileNet v2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018, arXiv 1801.04381) as a layer plan.

The body is Table 2 of the paper: a full 3x3 conv of 32 channels at stride 2, seven sequences
of bottleneck units (one stage per row of the table: expansion t, output channels c, repeats
n, first stride s), a 1x1 conv to 1280 channels (the `head`), a global average pool and the
classifier. The unit (Fig. 4d, Table 1) is written once, in `_unit`: 1x1 expansion conv to t
times the input channels -> BN -> ReLU6 -> 3x3 depthwise conv (stride s) -> BN -> ReLU6 -> 1x1
projection conv -> BN, linear (no activation, Sec. 3.2), added to the input when the unit keeps
stride 1 and its width. Stage 1 (t = 1) has no expansion conv, as in the authors' code.

Width multiplier (Sec. 6.1, the family's `scale`): every width is `make_divisible(c * alpha)`,
the reference implementation's rounding to a multiple of 8; the last conv keeps 1280 channels
below 1x ("we apply width multiplier to all layers except the very last convolutional layer"),
and the expansion is t times the (already rounded) input channels.

Published figures this plan reproduces (tests/test_families.py): Table 4, MobileNetV2: 300
million MAdds, 3.4 million parameters. Both are the exact counts truncated: 300,774,272 MAdds,
FC layer included, and 3,470,760 weights of the convolutions and the FC layer, the batch norms'
scales and shifts left out (with them: 3,504,872 trainable parameters). The authors' TF-slim
model table (tensorflow/models, research/slim/nets/mobilenet/README.md: 300 M and 3.47 M for
this model) prints all of its 22 widths and resolutions this way, for 1001 classes; every row is
reproduced. Keras's `keras.applications.MobileNetV2` has exactly this plan's weights and
multiply-adds.
"""

from __future__ import annotations

import dataclasses

from ..plan import LayerSpec, LayerWriter, write_classifier
from .base import FamilyConfig, Shape, act, conv_bn_act, dwconv3x3, mobilenet_stem

#: Paper Table 2, one stage per row: (expansion t, output channels c, repeats n, stride s).
BOTTLENECKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))
STEM_WIDTH = 32
HEAD_WIDTH = 1280
DIVISOR = 8


def make_divisible(value: float, divisor: int = DIVISOR) -> int:
    """The reference implementation's channel rounding: the nearest multiple of `divisor` (at
    least `divisor`), one step up if that loses more than 10 % of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclasses.dataclass(frozen=True)
class MobileNetV2Config(FamilyConfig):
    __doc__ = FamilyConfig.__doc__.replace("A network of one family (`family`)", "A MobileNet v2")
    family = "mobilenet-v2"
    title = "MobileNet v2"
    SCALES = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)  # paper Sec. 6.1 (0.35 to 1.4), the published checkpoints

    def width(self, channels: int) -> int:
        return make_divisible(channels * self.scale)

    @property
    def head_width(self) -> int:
        return make_divisible(HEAD_WIDTH * self.scale) if self.scale > 1.0 else HEAD_WIDTH

    def layer_plan(self) -> tuple[LayerSpec, ...]:
        layers: list[LayerSpec] = []
        x, shape = mobilenet_stem(layers, (self.input_size, self.input_size, self.channels), self.width(STEM_WIDTH))
        for stage, (t, c, n, first_stride) in enumerate(BOTTLENECKS, start=1):
            for unit in range(1, n + 1):
                x, shape = _unit(LayerWriter(f"stage{stage}", unit, layers), x, shape, t, self.width(c),
                                 first_stride if unit == 1 else 1)
        x, shape = conv_bn_act(LayerWriter("head", None, layers), "conv", x, shape, self.head_width, "relu6")
        write_classifier(self, x, shape, layers)
        return tuple(layers)


def _unit(s: LayerWriter, x: str, shape: Shape, t: int, filters: int, stride: int) -> tuple[str, Shape]:
    """An inverted residual unit with a linear bottleneck (paper Fig. 4d, Table 1). The only
    place its layer sequence is written."""
    unit_input, in_shape = x, shape
    if t != 1:
        x, shape = conv_bn_act(s, "expand", x, shape, t * shape[-1], "relu6")
    x, shape = dwconv3x3(s, "dwconv", x, shape, stride)
    x = act(s, "dw_relu6", s.bn("dw_bn", x, shape), shape, "relu6")
    x, shape = conv_bn_act(s, "project", x, shape, filters, op=None)  # linear bottleneck (Sec. 3.2)
    if stride == 1 and in_shape[-1] == filters:
        x = s.add("add", "add", (unit_input, x), shape, shape)
    return x, shape
