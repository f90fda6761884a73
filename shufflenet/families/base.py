"""What every family's configuration shares, and the layer rows its units are written with.

A family configuration is a small frozen dataclass: the width multiplier `scale` (one of the
family's published `SCALES`), the input side, the input channels and the classes, validated
once on construction with the same limits `config.FIELDS` declares for ShuffleNet v1. It gives
the generic machinery what it reads off a `ShuffleNetConfig`: `input_size`, `channels`,
`num_classes`, `fc_bias`, `shuffle_layout`, `label`, `to_dict()`, and `layer_plan()`, the
family's own plan in `LayerSpec` rows (`plan.layer_plan` calls it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from ..config import FIELDS, _describe
from ..plan import LayerSpec, LayerWriter


def _as_int(field: str, value: Any, low: int, high: int, extra: str = "") -> int:
    """A whole number from `low` to `high` (a float with no fraction counts), or ValueError
    saying what was received and what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"`{field}` must be a whole number from {low} to {high}{extra}. "
                             f"Received: {field}={_describe(value)}")
        value = int(value)
    if not low <= value <= high:
        raise ValueError(f"`{field}` must be from {low} to {high}{extra}. Received: {field}={value}")
    return value

Shape = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
    """A network of one family (`family`), validated once on construction.

    Args:
        scale: width multiplier, one of the family's `SCALES` (the published ones).
        input_size: square input side, a multiple of 32 from 32 to 512.
        channels: input channels, 1 (grayscale) or 3 (RGB).
        num_classes: classifier outputs, 2..100000.
    """

    scale: float = 1.0
    input_size: int = 224
    channels: int = 3
    num_classes: int = 1000

    family: ClassVar[str] = ""  # the registry key, e.g. "mobilenet-v2"
    title: ClassVar[str] = ""  # e.g. "MobileNet v2"
    SCALES: ClassVar[tuple[float, ...]] = (1.0,)
    fc_bias: ClassVar[bool] = True
    shuffle_layout: ClassVar[str] = "paper"  # read by the channel-shuffle factory of `model.build_graph`

    def __post_init__(self) -> None:
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) \
                or float(scale) not in self.SCALES:
            raise ValueError(f"`scale` of {self.title} must be one of {', '.join(f'{s:g}' for s in self.SCALES)} "
                             f"(the published widths). Received: scale={_describe(scale)}")
        side = FIELDS["input_size"]
        size = _as_int("input_size", self.input_size, side.low, side.high, f", a multiple of {side.step}")
        if size % side.step:
            raise ValueError(f"`input_size` must be a multiple of {side.step} (the network downsamples 32x), "
                             f"from {side.low} to {side.high}. Received: input_size={size}")
        colours = FIELDS["channels"]
        channels = _as_int("channels", self.channels, min(colours.choices), max(colours.choices))
        if channels not in colours.choices:
            raise ValueError(f"`channels` must be {colours.allowed}. Received: channels={channels}")
        classes = FIELDS["num_classes"]
        set_ = object.__setattr__
        set_(self, "scale", float(scale))
        set_(self, "input_size", size)
        set_(self, "channels", channels)
        set_(self, "num_classes", _as_int("num_classes", self.num_classes, classes.low, classes.high))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **dataclasses.asdict(self)}

    def replace(self, **changes: Any) -> FamilyConfig:
        return dataclasses.replace(self, **changes)

    @property
    def label(self) -> str:
        """`MobileNet v2 1x`, `ShuffleNet v2 0.5x (160 px)`."""
        return f"{self.title} {self.scale:g}x" + ("" if self.input_size == 224 else f" ({self.input_size} px)")

    @property
    def model_name(self) -> str:
        """The Keras model's name: `mobilenet_v2_1x`, `shufflenet_v2_0_5x`."""
        return f"{self.family.replace('-', '_')}_{self.scale:g}x".replace(".", "_")

    def layer_plan(self) -> tuple[LayerSpec, ...]:
        raise NotImplementedError


# --- the layer rows of the families' units ---------------------------------------------------

def conv1x1(s: LayerWriter, part: str, src: str, shape: Shape, filters: int) -> tuple[str, Shape]:
    """A plain (not grouped) 1x1 convolution without bias."""
    h, w, c = shape
    out = (h, w, filters)
    return s.add(part, "conv1x1", src, shape, out, kernel=1, params=c * filters, macs=h * w * c * filters), out


def dwconv3x3(s: LayerWriter, part: str, src: str, shape: Shape, stride: int) -> tuple[str, Shape]:
    """A 3x3 depthwise convolution without bias, one pixel of symmetric zero padding: inside the
    conv at stride 1, a pad layer of its own at stride 2 (as ShuffleNet v1's units do, since
    Keras's "same" pads a stride-2 conv on one side only). The pad layer is `<part>_pad`."""
    h, _, c = shape
    padding = 1
    if stride == 2:
        src, shape = s.pad(f"{part}_pad", src, shape)
        padding = 0
    side = (h - 1) // stride + 1
    out = (side, side, c)
    return s.add(part, "dwconv3x3", src, shape, out, groups=c, kernel=3, stride=stride, padding=padding,
                 params=9 * c, macs=side * side * 9 * c), out


def conv3x3(s: LayerWriter, part: str, src: str, shape: Shape, filters: int, stride: int = 2) -> tuple[str, Shape]:
    """A full 3x3 convolution without bias after a pad layer `<part>_pad` of one pixel (the stems)."""
    h, _, c = shape
    src, padded = s.pad(f"{part}_pad", src, shape)
    side = (h - 1) // stride + 1
    out = (side, side, filters)
    return s.add(part, "conv3x3", src, padded, out, kernel=3, stride=stride, params=9 * c * filters,
                 macs=side * side * 9 * c * filters), out


def act(s: LayerWriter, part: str, src: str, shape: Shape, op: str = "relu") -> str:
    """An activation ("relu" or "relu6")."""
    return s.add(part, op, src, shape, shape)


def conv_bn_act(s: LayerWriter, name: str, src: str, shape: Shape, filters: int, op: str = "relu"
                ) -> tuple[str, Shape]:
    """1x1 conv -> BN -> activation, as the parts `<name>`, `<name>_bn`, `<name>_<op>`; `op=None`
    leaves the activation out (a linear bottleneck)."""
    x, shape = conv1x1(s, name, src, shape, filters)
    x = s.bn(f"{name}_bn", x, shape)
    return (act(s, f"{name}_{op}", x, shape, op) if op else x), shape


def mobilenet_stem(layers: list, image: Shape, filters: int) -> tuple[str, Shape]:
    """Both MobileNets' stem: a 3x3 convolution of stride 2, batch norm, ReLU6."""
    s = LayerWriter("stem", None, layers)
    x, shape = conv3x3(s, "conv", "image", image, filters, stride=2)
    return act(s, "relu6", s.bn("bn", x, shape), shape, "relu6"), shape
