"""ShuffleNet v2 (Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018, arXiv 1807.11164) as a layer plan.

The body is Table 5 of the paper: Conv1 (3x3, stride 2, 24 channels) and a 3x3 max pool of
stride 2 (the stem ShuffleNet v1 has, `plan.write_stem`), stages 2, 3, 4 of 4, 8, 4 units,
Conv5 (1x1, the `head`), a global average pool and the FC layer, at the widths

    0.5x: 48, 96, 192 + 1024     1x: 116, 232, 464 + 1024
    1.5x: 176, 352, 704 + 1024   2x: 244, 488, 976 + 2048

The unit (Fig. 3c at stride 1, Fig. 3d at stride 2) is written once, in `_unit`. At stride 1 a
channel split gives half of the channels to an identity branch and half to 1x1 conv -> BN ->
ReLU -> 3x3 depthwise conv -> BN -> 1x1 conv -> BN -> ReLU; at stride 2 both branches read the
whole input, the left one a 3x3 depthwise conv of stride 2 -> BN -> 1x1 conv -> BN -> ReLU. The
two branches are concatenated, then the channels shuffled with two groups (`plan.
shuffle_permutation`), as the figure draws it.

Where the paper leaves widths open, the plan follows the authors' released code (megvii-model/
ShuffleNet-Series, ShuffleNetV2): every unit's bottleneck (the right branch's first 1x1 conv
and depthwise conv) has half the unit's output channels; in a stride-2 unit the left branch
keeps the input's channels and the right one writes the rest (in stage 2: 24 + 92 = 116 at 1x);
the FC layer has no bias. The authors' code shuffles at the start of each stride-1 unit
instead of after each concat; a fixed permutation between two layers changes no count.

Published figures (tests/test_families.py): Table 5 gives FLOPs (multiply-adds, FC included)
41 M, 146 M, 299 M, 591 M and weights 1.4 M, 2.3 M, 3.5 M, 7.4 M at 0.5x, 1x, 1.5x, 2x. The
weights are the trainable parameters (BN scales and shifts included) and round to the paper's at
every width; the multiply-adds round to the paper's except at 0.5x: 40.48 M against 41 M (the
paper does not say what else it counts).
"""

from __future__ import annotations

import dataclasses

from ..plan import LayerSpec, LayerWriter, write_classifier, write_stem
from .base import FamilyConfig, Shape, act, conv1x1, conv_bn_act, dwconv3x3

#: Paper Table 5: output channels of stages 2, 3, 4 and of Conv5, per width.
WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024),
          2.0: (244, 488, 976, 2048)}
#: Paper Table 5: units of stages 2, 3, 4.
REPEATS = (4, 8, 4)
STEM_WIDTH = 24
SHUFFLE_GROUPS = 2


@dataclasses.dataclass(frozen=True)
class ShuffleNetV2Config(FamilyConfig):
    __doc__ = FamilyConfig.__doc__.replace("A network of one family (`family`)", "A ShuffleNet v2")
    family = "shufflenet-v2"
    title = "ShuffleNet v2"
    SCALES = tuple(WIDTHS)
    fc_bias = False  # the authors' released code
    stem_width = STEM_WIDTH  # read by `plan.write_stem`

    @property
    def stage_widths(self) -> tuple[int, int, int]:
        return WIDTHS[self.scale][:3]

    @property
    def head_width(self) -> int:
        return WIDTHS[self.scale][3]

    def layer_plan(self) -> tuple[LayerSpec, ...]:
        layers: list[LayerSpec] = []
        x, shape = write_stem(self, layers)
        for stage, units, width in zip((2, 3, 4), REPEATS, self.stage_widths):
            for unit in range(1, units + 1):
                x, shape = _unit(LayerWriter(f"stage{stage}", unit, layers), x, shape, width, 2 if unit == 1 else 1)
        x, shape = conv_bn_act(LayerWriter("head", None, layers), "conv", x, shape, self.head_width, "relu")
        write_classifier(self, x, shape, layers)
        return tuple(layers)


def _unit(s: LayerWriter, x: str, shape: Shape, out_channels: int, stride: int) -> tuple[str, Shape]:
    """One ShuffleNet v2 unit (paper Fig. 3c at stride 1, Fig. 3d at stride 2). The only place
    its layer sequence is written."""
    h, w, cin = shape
    mid = out_channels // 2
    if stride == 1:
        half = cin // 2
        left = s.add("split_left", "split", x, shape, (h, w, half))
        right = s.add("split_right", "split", x, shape, (h, w, cin - half), offset=half)
        right_shape = (h, w, cin - half)
    else:
        left, left_shape = dwconv3x3(s, "left_dwconv", x, shape, stride)
        left = s.bn("left_dw_bn", left, left_shape)
        left, left_shape = conv_bn_act(s, "left_conv", left, left_shape, cin)
        half = cin
        right, right_shape = x, shape
    right, right_shape = conv_bn_act(s, "conv1", right, right_shape, mid)
    right, right_shape = dwconv3x3(s, "dwconv", right, right_shape, stride)
    right = s.bn("dw_bn", right, right_shape)  # no ReLU after the depthwise conv, as in v1
    right, right_shape = conv1x1(s, "conv2", right, right_shape, out_channels - half)
    right = act(s, "conv2_relu", s.bn("conv2_bn", right, right_shape), right_shape)
    oh = right_shape[0]
    out = (oh, oh, out_channels)
    y = s.add("concat", "concat", (left, right), right_shape, out)
    return s.add("shuffle", "shuffle", y, out, out, groups=SHUFFLE_GROUPS), out
