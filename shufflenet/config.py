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
    any value in range (0.3x is a valid width), except where `strict_step` says the network needs
    it (`input_size`: it downsamples 32x). `check` is the validation of one field; the fields that
    describe published checkpoints rather than a choice of a person (`settable=False`) are
    declared and checked the same way, but get no flag or control.
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
    why: str = ""  # said after what is allowed: "(the network downsamples 32x)"
    strict_step: bool = False  # the value must lie on the `step` grid from `low`
    optional: bool = False  # None is allowed (and means "from the rules")
    multiple_of: str = ""  # a field checked before it that the value must be a multiple of
    settable: bool = True  # a person sets it: the command line and the explorer make a flag and a control
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


    def _whole(self, label: str, value: Any, extra: str = "") -> int:
        """A whole number from `low` to `high` (an integral float is one); `label` names it."""
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):
                raise ValueError(f"`{label}` must be a whole number from {self.low} to {self.high}{extra}. "
                                 f"Received: {label}={_describe(value)}")
            value = int(value)
        if not self.low <= value <= self.high:
            raise ValueError(f"`{label}` must be from {self.low} to {self.high}{extra}. Received: {label}={value}")
        return value

    def check(self, value: Any, checked: Mapping[str, Any]) -> Any:
        """`value` as the configuration keeps it (integral floats become ints, `blocks` a tuple), or
        ValueError saying what was received and what is allowed. `checked` holds the fields checked
        before this one, for `multiple_of`."""
        name, why = self.name, f" ({self.why})" if self.why else ""
        if value is None and self.optional:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"`{name}` must be true or false. Received: {name}={_describe(value)}")
            return value
        if self.choices:
            if self.kind is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, self.kind) or value not in self.choices:
                raise ValueError(f"`{name}` must be {self.allowed}{why}. Received: {name}={_describe(value)}")
            return value
        if self.count > 1:
            if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != self.count:
                raise ValueError(
                    f"`{name}` must be {('two', 'three', 'four')[self.count - 2]} whole numbers, the units of "
                    f"stages {_listed(STAGES[:-1])} and {STAGES[-1]}, each from {self.low} to {self.high} "
                    f"(paper: {_listed(self.default)}). Received: {name}={_describe(value)}")
            return tuple(self._whole(f"{name}[stage{stage}]", n) for stage, n in zip(STAGES, value))
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"`{name}` must be a number from {self.low} to {self.high}. "
                                 f"Received: {name}={_describe(value)}")
            value = float(value)
            if not math.isfinite(value) or not self.low <= value <= self.high:
                raise ValueError(f"`{name}` must be a number from {self.low} to {self.high}. Received: {name}={value}")
            return value
        grid = self.strict_step and self.step > 1
        value = self._whole(name, value, f", a multiple of {self.step}" if grid else "")
        if grid and (value - self.low) % self.step:
            raise ValueError(f"`{name}` must be a multiple of {self.step}{why}, from {self.low} to {self.high}. "
                             f"Received: {name}={value}")
        if self.multiple_of and value % checked[self.multiple_of]:
            other = self.multiple_of
            raise ValueError(f"`{name}` must be a multiple of {other}={checked[other]}. Received: {name}={value}")
        return value


def _declared(default: Any, **spec: Any) -> Any:
    """A dataclass field that carries its `FieldSpec`, so the limits sit next to the field."""
    return dataclasses.field(default=default, metadata={"spec": FieldSpec(**spec)})


def _listed(values) -> str:
    return ", ".join(map(str, values))


def _describe(value: Any) -> str:
    return f"{value!r} (type {type(value).__name__})"


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
                            why="the settings of the paper's Table 1",
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
                                strict_step=True, why="the network downsamples 32x",
                                help="A multiple of 32: the network downsamples 32x.")
    channels: int = _declared(3, kind=int, label="Input channels", choices=(1, 3), choice_names=("grayscale", "RGB"),
                              help="Colour channels of the input image.")
    num_classes: int = _declared(1000, kind=int, label="Classes", low=2, high=100_000, step=1,
                                 help="Outputs of the classifier: 1000 for ImageNet, 10 for Fashion-MNIST.")
    stem_channels: int | None = _declared(
        None, kind=int, label="Stem channels", low=4, high=512, step=1, optional=True, multiple_of="groups",
        settable=False, help="An explicit stem width instead of the width rule, for published checkpoints.")
    fc_bias: bool = _declared(True, kind=bool, label="Classifier bias", settable=False,
                              help="Whether the classifier's FC layer has a bias (megvii's has none).")
    shuffle_layout: str = _declared("paper", kind=str, label="Shuffle layout", choices=SHUFFLE_LAYOUTS,
                                    settable=False, help="How the channel shuffle reshapes the channel axis.")
    shuffle: bool = _declared(
        True, kind=bool, label="Channel shuffle",
        help="Shuffles the channels between group convolutions so that groups mix (paper Sec. 3.1). Switched "
             "off, this is the paper's Table 3 ablation: the same network and MACs, but the groups never mix. "
             "On by default.")

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {}
        for name, spec in SPECS.items():  # in field order: `stem_channels` is checked against `groups`
            checked[name] = spec.check(getattr(self, name), checked)
            object.__setattr__(self, name, checked[name])
        if self.stem_channels is not None and self.stem_channels >= self.stage_widths[0]:
            # stage 2's first unit concatenates its pooled input with a branch of the rest
            raise ValueError(f"`stem_channels` must be less than stage 2's width ({self.stage_widths[0]} at "
                             f"g={self.groups}, {self.scale:g}x). Received: stem_channels={self.stem_channels}")

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


#: Every field, in the dataclass's order: name -> its `FieldSpec` (with `name` and `default`
#: filled in); `ShuffleNetConfig` checks each with it.
SPECS: Mapping[str, FieldSpec] = types.MappingProxyType({
    f.name: dataclasses.replace(f.metadata["spec"], name=f.name, default=f.default)
    for f in dataclasses.fields(ShuffleNetConfig)
})
#: The fields a person sets. The command line's flags and the explorer's controls are made from
#: this table, so a declared field gets both; the URL names its fields in explorer/state.py.
FIELDS: Mapping[str, FieldSpec] = types.MappingProxyType({name: s for name, s in SPECS.items() if s.settable})
