"""Other network families on ShuffleNet v1's layer plan: ShuffleNet v2, MobileNet v1, MobileNet v2.

Each family is one module: its paper's table as data and its unit written once, in the same
`LayerSpec` rows as ShuffleNet v1 (`plan.layer_plan`), so the Keras builder, the cost tables and
their Keras cross-check, the diagrams and the receptive fields walk every family unchanged.

Why a small frozen configuration per family (`base.FamilyConfig`) instead of a `family` field on
`ShuffleNetConfig`: most of v1's fields (groups, the bottleneck reduction, units per stage, the
shuffle ablation, the stem override) mean nothing to a MobileNet, and v1's validation, command-line
flags, explorer controls, URLs and checkpoint manifests are all made from its fields. A separate
class leaves all of them exactly as they were, and a family's config holds only what its paper
varies (the width multiplier and the input) plus what every network has (channels, classes).
`plan.layer_plan` tells the two apart by type.

The registry `FAMILIES` maps a family's name to its `Family`; `family_config(name, scale, ...)`
makes the configuration of any family, ShuffleNet v1 included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..config import FIELDS, ShuffleNetConfig
from .base import FamilyConfig
from .mobilenet_v1 import MobileNetV1Config
from .mobilenet_v2 import MobileNetV2Config
from .shufflenet_v2 import ShuffleNetV2Config

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "Family", "FamilyConfig", "MobileNetV1Config", "MobileNetV2Config",
           "ShuffleNetV2Config", "family_config", "family_of"]

DEFAULT_FAMILY = "shufflenet-v1"


@dataclasses.dataclass(frozen=True)
class Family:
    """One network family: its name, its title and how to make a configuration of it."""

    name: str  # "mobilenet-v2"
    title: str  # "MobileNet v2"
    paper: str  # the paper, for people
    make: Callable[..., Any]  # (scale=..., input_size=..., channels=..., num_classes=...) -> config
    scales: tuple[float, ...]  # the widths it takes (ShuffleNet v1: a range, see `allowed_scales`)

    @property
    def allowed_scales(self) -> str:
        """The widths it takes, in words."""
        if self.name == DEFAULT_FAMILY:
            return FIELDS["scale"].allowed
        return "one of " + ", ".join(f"{s:g}" for s in self.scales)


def _family(cls: type[FamilyConfig], paper: str) -> Family:
    return Family(cls.family, cls.title, paper, cls, cls.SCALES)


FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in (
    Family(DEFAULT_FAMILY, "ShuffleNet v1", "Zhang et al., CVPR 2018", ShuffleNetConfig, (0.25, 0.5, 1.0, 1.5, 2.0)),
    _family(ShuffleNetV2Config, "Ma et al., ECCV 2018"),
    _family(MobileNetV1Config, "Howard et al., 2017"),
    _family(MobileNetV2Config, "Sandler et al., CVPR 2018"),
)})


def family_config(family: str = DEFAULT_FAMILY, scale: float = 1.0, **fields: Any):
    """The configuration of a `family` network at width `scale` (other fields: input_size,
    channels, num_classes; for ShuffleNet v1 any of its fields). ValueError names the family or
    the field that was wrong and what is allowed."""
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {', '.join(FAMILIES)}. Received: family={family!r}")
    return FAMILIES[family].make(scale=scale, **fields)


def family_of(config) -> str:
    """The family name of a configuration (`shufflenet-v1` for a `ShuffleNetConfig`)."""
    return DEFAULT_FAMILY if isinstance(config, ShuffleNetConfig) else config.family
