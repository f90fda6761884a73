"""The one validated configuration of a ShuffleNet v1 network, and the paper's width rules.

Every paper rule that turns a configuration into channel counts has its single home here:
`stage_widths` (Table 1 and the width multiplier), `stem_width`, `bottleneck_channels`
(Sec. 3.2: a quarter of the unit's output) and `first_pointwise_groups` (the stage-2 exception).
So does what each field a person sets may hold (`FIELDS`): the command line and the explorer
make their flags, controls and URL checks from it.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
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


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a person may set one `ShuffleNetConfig` field to, stated once.

    The validation in `ShuffleNetConfig`, the command line's flags and the explorer's controls and
    URL all take their limits, steps, choices and help from here (see `FIELDS`), so a limit cannot
    say one thing in the sidebar and another in the library.

    `step` is the grid of the explorer's controls and of its URL. The configuration itself takes
    any value in range (0.3x is a valid width), except `input_size`, whose step the network
    needs: it downsamples 32x.
    """

    kind: type  # of one value: int, float or bool
    label: str  # a human name, as the explorer's control shows it
    help: str  # what the field does and what the paper uses
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    choices: tuple = ()
    choice_names: tuple[str, ...] = ()  # said after each choice: "1 (grayscale)"
    count: int = 1  # values in the field: `blocks` holds one per stage
    name: str = ""  # filled in from the dataclass field (see `FIELDS`)
    default: Any = None  # filled in from the dataclass field

    @property
    def allowed(self) -> str:
        """What the field accepts, in words: "one of 1, 2, 3, 4, 8", "1 (grayscale) or 3 (RGB)"."""
        if self.kind is bool:
            return "true or false"
        if self.choice_names:
            named = [f"{c} ({n})" for c, n in zip(self.choices, self.choice_names)]
            return ", ".join(named[:-1]) + " or " + named[-1]
        if self.choices:
            return f"one of {_listed(self.choices)}"
        if self.count > 1:
            return f"{self.count} whole numbers, each from {self.low} to {self.high}"
        if self.kind is float:
            return f"a number from {self.low} to {self.high}"
        if self.step and self.step > 1:
            return f"a multiple of {self.step} from {self.low} to {self.high}"
        return f"a whole number from {self.low} to {self.high}"


def _declared(default: Any, **spec: Any) -> Any:
    """A dataclass field that carries its `FieldSpec`, so the limits sit next to the field."""
    return dataclasses.field(default=default, metadata={"spec": FieldSpec(**spec)})


def _listed(values) -> str:
    return ", ".join(map(str, values))


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
        shuffle: whether the units shuffle channels (paper Sec. 3.1). False is the ablation of
            the paper's Table 3: the same network, the same MACs, groups that never mix.
    """

    # The fields a person sets carry their limits and help (`FieldSpec`, collected in `FIELDS`);
    # the rest describe published checkpoints and are set by the code that reads them.
    groups: int = _declared(3, kind=int, label="Groups g", choices=ALLOWED_GROUPS,
                            help="Groups of the 1x1 group convolutions (paper Sec. 3.1, Table 1).")
    blocks: tuple[int, int, int] = _declared(DEFAULT_BLOCKS, kind=int, label="Units in stage", low=1, high=16, step=1,
                                             count=len(STAGES), help="The paper uses 4, 8 and 4 units (Table 1).")
    reduction: float = _declared(
        0.25, kind=float, label="Bottleneck reduction", low=0.05, high=1.0, step=0.05,
        help="Bottleneck channels / unit output channels; the paper uses 1/4 (Sec. 3.2).")
    scale: float = _declared(
        1.0, kind=float, label="Width scale s", low=0.25, high=3.0, step=0.25,
        help="Multiplies every layer's channels: 0.25x, 0.5x, 1x, 1.5x, 2x in the paper (Sec. 4.1.1).")
    input_size: int = _declared(224, kind=int, label="Input size (pixels, square)", low=32, high=512, step=32,
                                help="A multiple of 32: the network downsamples 32x.")
    channels: int = _declared(3, kind=int, label="Input channels", choices=(1, 3), choice_names=("grayscale", "RGB"),
                              help="Colour channels of the input image.")
    num_classes: int = _declared(1000, kind=int, label="Classes", low=2, high=100_000, step=1,
                                 help="Outputs of the classifier: 1000 for ImageNet, 10 for Fashion-MNIST.")
    stem_channels: int | None = None
    fc_bias: bool = True
    shuffle_layout: str = "paper"
    shuffle: bool = _declared(
        True, kind=bool, label="Channel shuffle",
        help="Shuffles the channels between group convolutions so that groups mix (paper Sec. 3.1). Switched "
             "off, this is the paper's Table 3 ablation: the same network and MACs, but the groups never mix. "
             "On by default.")

    def __post_init__(self) -> None:
        spec = FIELDS
        groups = self.groups
        if isinstance(groups, float) and groups.is_integer():
            groups = int(groups)
        if isinstance(groups, bool) or groups not in spec["groups"].choices:
            raise ValueError(
                f"`groups` must be {spec['groups'].allowed} "
                f"(the settings of the paper's Table 1). Received: groups={_describe(self.groups)}"
            )
        blocks, b = self.blocks, spec["blocks"]
        if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__len__") or len(blocks) != b.count:
            raise ValueError(
                "`blocks` must be three whole numbers, the units of stages 2, 3 and 4, "
                f"each from {b.low} to {b.high} (paper: {_listed(b.default)}). Received: blocks={_describe(blocks)}"
            )
        blocks = tuple(
            _as_int(f"blocks[stage{stage}]", n, b.low, b.high) for stage, n in zip(STAGES, blocks)
        )
        side = spec["input_size"]
        size = _as_int("input_size", self.input_size, side.low, side.high, f", a multiple of {side.step}")
        if size % side.step:
            raise ValueError(
                f"`input_size` must be a multiple of {side.step} (the network downsamples 32x), "
                f"from {side.low} to {side.high}. Received: input_size={size}"
            )
        colours = spec["channels"]
        channels = _as_int("channels", self.channels, min(colours.choices), max(colours.choices))
        if channels not in colours.choices:
            raise ValueError(f"`channels` must be {colours.allowed}. Received: channels={channels}")
        set_ = object.__setattr__
        set_(self, "groups", int(groups))
        set_(self, "blocks", blocks)
        for name in ("reduction", "scale"):
            set_(self, name, _as_float(name, getattr(self, name), spec[name].low, spec[name].high))
        set_(self, "input_size", size)
        set_(self, "channels", channels)
        classes = spec["num_classes"]
        set_(self, "num_classes", _as_int("num_classes", self.num_classes, classes.low, classes.high))
        if self.stem_channels is not None:
            stem = _as_int("stem_channels", self.stem_channels, 4, 512)
            if stem % self.groups:
                raise ValueError(
                    f"`stem_channels` must be a multiple of groups={self.groups}. Received: stem_channels={stem}"
                )
            set_(self, "stem_channels", stem)
        if not isinstance(self.fc_bias, bool):
            raise ValueError(f"`fc_bias` must be true or false. Received: fc_bias={_describe(self.fc_bias)}")
        if not isinstance(self.shuffle, bool):
            raise ValueError(f"`shuffle` must be true or false. Received: shuffle={_describe(self.shuffle)}")
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
        """Stem ("Conv1") output channels: 24 at 1x; ceil(24 s / g) g otherwise (the paper's Table 1),
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
        return max(g, math.floor(unit_out * self.reduction / g + 0.5) * g)

    def first_pointwise_groups(self, stage: int, unit: int) -> int:
        """Groups of a unit's first 1x1 conv: 1 for stage 2's first unit, g elsewhere.

        Paper Sec. 3.3: "we do not apply group convolution on the first pointwise layer [of
        stage 2] because the number of input channels is relatively small".
        """
        return 1 if (stage, unit) == (2, 1) else self.groups

    @property
    def label(self) -> str:
        """Short human name, e.g. `ShuffleNet 1x (g=3)`, `ShuffleNet 0.5x (g=8, no shuffle)`."""
        return f"ShuffleNet {self.scale:g}x (g={self.groups}{'' if self.shuffle else ', no shuffle'})"


#: The fields a person sets, in the dataclass's order: name -> its `FieldSpec` (with `name` and
#: `default` filled in). The command line's flags and the explorer's controls are made from this
#: table, so a declared field gets both; the URL names its fields in explorer/sidebar.py.
FIELDS: Mapping[str, FieldSpec] = types.MappingProxyType({
    f.name: dataclasses.replace(f.metadata["spec"], name=f.name, default=f.default)
    for f in dataclasses.fields(ShuffleNetConfig) if "spec" in f.metadata
})
