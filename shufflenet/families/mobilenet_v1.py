"""MobileNet v1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", 2017, arXiv 1704.04861) as a layer plan.

The body is Table 1 of the paper: a full 3x3 conv of 32 channels at stride 2, then 13
depthwise separable convolutions (Fig. 3: 3x3 depthwise conv -> BN -> ReLU -> 1x1 conv -> BN
-> ReLU), then a global average pool and the fully connected classifier. The unit is written
once, in `_unit`. Table 1 lists the 12th depthwise conv (the first at 7x7) as stride 2; every
implementation (the authors' TF-slim code, Keras) runs it at stride 1, and so does this plan.

Grouping: the paper gives no stages, so the 13 units are grouped by the resolution they write,
each group starting with its stride-2 unit, as ShuffleNet's stages do: stage1 (112x112, 64
channels, 1 unit), stage2 (56, 128, 2), stage3 (28, 256, 2), stage4 (14, 512, 6), stage5 (7,
1024, 2).

Width multiplier alpha (Sec. 3.3, the family's `scale`): every layer's channels are
int(channels * alpha), as in Keras's `keras.applications.MobileNet` and the TF-slim code (whose
floor of 8 channels no published alpha reaches). Resolution multiplier (Sec. 3.4): `input_size`.
Activations are ReLU6, as in both reference implementations (the paper writes ReLU; the counts
do not change).

Published figures this plan reproduces (tests/test_families.py), rounded as printed: Table 8
(and Table 6): 1.0 MobileNet-224, 569 million Mult-Adds (exactly 568,740,352), 4.2 million
parameters (4,231,976 trainable); Table 6: 0.75 325 M / 2.6 M, 0.5 149 M / 1.3 M, 0.25 41 M /
0.5 M. The Mult-Adds include the FC layer (Table 2 gives it 0.18 % of them); without it the 1.0
model has 567.7 M. Table 7's resolutions (192: 418 M, 160: 290 M, 128: 186 M) are 569 M scaled by
(side/224)^2; the exact counts are within 1 M (160 px: 290.68 M). Keras's
`keras.applications.MobileNet` has exactly this plan's weights and multiply-adds.
"""

from __future__ import annotations

import dataclasses

from ..plan import LayerSpec, LayerWriter, write_classifier
from .base import FamilyConfig, Shape, act, conv_bn_act, dwconv3x3, mobilenet_stem

#: Paper Table 1, grouped by resolution: (output channels at alpha 1, units); each group's first
#: unit has stride 2, except stage 1's (the stem already halved the input).
STAGES = ((64, 1), (128, 2), (256, 2), (512, 6), (1024, 2))
STEM_WIDTH = 32


@dataclasses.dataclass(frozen=True)
class MobileNetV1Config(FamilyConfig):
    __doc__ = FamilyConfig.__doc__.replace("A network of one family (`family`)", "A MobileNet v1")
    family = "mobilenet-v1"
    title = "MobileNet v1"
    SCALES = (0.25, 0.5, 0.75, 1.0)  # paper Table 6

    def width(self, channels: int) -> int:
        """The width multiplier's rule (Sec. 3.3): int(channels * alpha)."""
        return int(channels * self.scale)

    def layer_plan(self) -> tuple[LayerSpec, ...]:
        layers: list[LayerSpec] = []
        x, shape = mobilenet_stem(layers, (self.input_size, self.input_size, self.channels), self.width(STEM_WIDTH))
        for stage, (channels, units) in enumerate(STAGES, start=1):
            for unit in range(1, units + 1):
                stride = 2 if unit == 1 and stage > 1 else 1
                x, shape = _unit(LayerWriter(f"stage{stage}", unit, layers), x, shape, self.width(channels), stride)
        write_classifier(self, x, shape, layers)
        return tuple(layers)


def _unit(s: LayerWriter, x: str, shape: Shape, filters: int, stride: int) -> tuple[str, Shape]:
    """A depthwise separable convolution (paper Fig. 3 right): 3x3 depthwise conv -> BN -> ReLU6
    -> 1x1 conv -> BN -> ReLU6. The only place its layer sequence is written."""
    x, shape = dwconv3x3(s, "dwconv", x, shape, stride)
    x = act(s, "dw_relu6", s.bn("dw_bn", x, shape), shape, "relu6")
    return conv_bn_act(s, "pwconv", x, shape, filters, "relu6")
