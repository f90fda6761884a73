"""The one validated configuration of a ShuffleNet v1 network, and the paper's width rules.

Every paper rule that turns a configuration into channel counts has its single home here:
`stage_widths` (Table 1 and the width multiplier), `stem_width`, `bottleneck_channels`
(Sec. 3.2: a quarter of the unit's output) and `first_pointwise_groups` (the stage-2 exception).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

ALLOWED_GROUPS = (1, 2, 3, 4, 8)

#: Paper Table 1: output channels of stage 2 at width 1x, per number of groups g.
#: Stages 3 and 4 double the previous stage.
STAGE2_BASE_WIDTH = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}

#: Paper Table 1: the stem ("Conv1") has 24 output channels at width 1x.
STEM_BASE_WIDTH = 24

STAGES = (2, 3, 4)

#: How the channel shuffle reshapes the channel axis. "paper": (g, n) -> transpose (Sec. 3.1);
#: "transposed": (n, g) -> transpose, the inverse permutation, as megvii's released code does.
SHUFFLE_LAYOUTS = ("paper", "transposed")
DEFAULT_BLOCKS = (4, 8, 4)


def _describe(value: Any) -> str:
    return f"{value!r} (type {type(value).__name__})"


def _as_int(field: str, value: Any, low: int, high: int, extra: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(
                f"`{field}` must be a whole number from {low} to {high}{extra}. "
                f"Received: {field}={_describe(value)}"
            )
    if not low <= value <= high:
        raise ValueError(
            f"`{field}` must be from {low} to {high}{extra}. Received: {field}={value}"
        )
    return value


def _as_float(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{field}` must be a number from {low} to {high}. Received: {field}={_describe(value)}"
        )
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"`{field}` must be a number from {low} to {high}. Received: {field}={value}")
    return value


@dataclasses.dataclass(frozen=True)
class ShuffleNetConfig:
    """A ShuffleNet v1 network (Zhang et al. 2018), validated once on construction.

    Args:
        groups: number of groups g of the 1x1 group convolutions, one of 1, 2, 3, 4, 8.
        blocks: units per stage 2, 3, 4 (paper: 4, 8, 4), each 1..16.
        reduction: bottleneck channels / unit output channels (paper: 0.25), 0.05..1.0.
        scale: width multiplier "s x" (paper Sec. 4.1.1), 0.25..3.0.
        input_size: square input side, a multiple of 32 from 32 to 512.
        channels: input channels, 1 (grayscale) or 3 (RGB).
        num_classes: classifier outputs, 2..100000.
        stem_channels: explicit stem width instead of the width rule (a multiple of g, 4..512);
            some published checkpoints (megvii's 1.5x) use a stem the rule does not give.
        fc_bias: whether the classifier's FC layer has a bias (megvii's has none).
        shuffle_layout: "paper" or "transposed" (see `SHUFFLE_LAYOUTS`).
    """

    groups: int = 3
    blocks: tuple[int, int, int] = DEFAULT_BLOCKS
    reduction: float = 0.25
    scale: float = 1.0
    input_size: int = 224
    channels: int = 3
    num_classes: int = 1000
    stem_channels: int | None = None
    fc_bias: bool = True
    shuffle_layout: str = "paper"

    def __post_init__(self) -> None:
        groups = self.groups
        if isinstance(groups, float) and groups.is_integer():
            groups = int(groups)
        if isinstance(groups, bool) or groups not in ALLOWED_GROUPS:
            raise ValueError(
                f"`groups` must be one of {', '.join(map(str, ALLOWED_GROUPS))} "
                f"(the settings of the paper's Table 1). Received: groups={_describe(self.groups)}"
            )
        blocks = self.blocks
        if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__len__") or len(blocks) != 3:
            raise ValueError(
                "`blocks` must be three whole numbers, the units of stages 2, 3 and 4, "
                f"each from 1 to 16 (paper: 4, 8, 4). Received: blocks={_describe(blocks)}"
            )
        blocks = tuple(
            _as_int(f"blocks[stage{stage}]", b, 1, 16) for stage, b in zip(STAGES, blocks)
        )
        size = _as_int("input_size", self.input_size, 32, 512, ", a multiple of 32")
        if size % 32:
            raise ValueError(
                "`input_size` must be a multiple of 32 (the network downsamples 32x), "
                f"from 32 to 512. Received: input_size={size}"
            )
        channels = _as_int("channels", self.channels, 1, 3)
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 (grayscale) or 3 (RGB). Received: channels={channels}")
        set_ = object.__setattr__
        set_(self, "groups", int(groups))
        set_(self, "blocks", blocks)
        set_(self, "reduction", _as_float("reduction", self.reduction, 0.05, 1.0))
        set_(self, "scale", _as_float("scale", self.scale, 0.25, 3.0))
        set_(self, "input_size", size)
        set_(self, "channels", channels)
        set_(self, "num_classes", _as_int("num_classes", self.num_classes, 2, 100_000))
        if self.stem_channels is not None:
            stem = _as_int("stem_channels", self.stem_channels, 4, 512)
            if stem % self.groups:
                raise ValueError(
                    f"`stem_channels` must be a multiple of groups={self.groups}. Received: stem_channels={stem}"
                )
            set_(self, "stem_channels", stem)
        if not isinstance(self.fc_bias, bool):
            raise ValueError(f"`fc_bias` must be true or false. Received: fc_bias={_describe(self.fc_bias)}")
        if self.shuffle_layout not in SHUFFLE_LAYOUTS:
            raise ValueError(
                f"`shuffle_layout` must be one of {', '.join(SHUFFLE_LAYOUTS)}. "
                f"Received: shuffle_layout={_describe(self.shuffle_layout)}"
            )

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShuffleNetConfig:
        if not isinstance(data, dict):
            raise ValueError(f"A configuration must be a mapping of fields. Received: {_describe(data)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown configuration field(s): {', '.join(map(str, unknown))}. "
                f"Allowed: {', '.join(sorted(known))}."
            )
        return cls(**data)

    def replace(self, **changes: Any) -> ShuffleNetConfig:
        return dataclasses.replace(self, **changes)

    # --- the paper's width rules --------------------------------------------------------
    @property
    def stem_width(self) -> int:
        """Stem ("Conv1") output channels: 24 at 1x; ceil(24 s / g) g otherwise (REFERENCE.md),
        unless `stem_channels` sets it explicitly."""
        if self.stem_channels is not None:
            return self.stem_channels
        return math.ceil(round(STEM_BASE_WIDTH * self.scale / self.groups, 9)) * self.groups

    @property
    def stage_widths(self) -> tuple[int, int, int]:
        """Output channels of stages 2, 3, 4 (paper Table 1, scaled by s).

        Stage 2 = ceil(base_g s / 4g) 4g, so every grouped width (and its quarter) splits
        evenly into g groups; stages 3 and 4 double it.
        """
        unit = 4 * self.groups
        w2 = math.ceil(round(STAGE2_BASE_WIDTH[self.groups] * self.scale / unit, 9)) * unit
        return (w2, 2 * w2, 4 * w2)

    def bottleneck_channels(self, unit_out: int) -> int:
        """Bottleneck width of a unit (paper Sec. 3.2): its output channels times `reduction`.

        The paper uses 1/4 of the *unit's* output channels, stride-2 units included. Rounded to
        the nearest multiple of g (at least g) so it splits into groups; at 0.25 it is exact.
        """
        g = self.groups
        return max(g, int(math.floor(unit_out * self.reduction / g + 0.5)) * g)

    def first_pointwise_groups(self, stage: int, unit: int) -> int:
        """Groups of a unit's first 1x1 conv: 1 for stage 2's first unit, g elsewhere.

        Paper Sec. 3.3: "we do not apply group convolution on the first pointwise layer [of
        stage 2] because the number of input channels is relatively small".
        """
        return 1 if (stage, unit) == (2, 1) else self.groups

    @property
    def label(self) -> str:
        """Short human name, e.g. `ShuffleNet 1x (g=3)`."""
        return f"ShuffleNet {self.scale:g}x (g={self.groups})"
