"""Layer names: one function makes them, one parses them.

Names are stable and parseable (Keras rejects "/"): ``stem_conv``, ``stage3_unit2_gconv1``,
``stage3_unit1_shortcut_pool``, ``classifier_fc``; ``head_conv`` for the last 1x1 conv that
some families (ShuffleNet v2's Conv5, MobileNet v2's final conv) put between the stages and the
classifier. Diagrams and cost tables group layers by parsing these names.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .config import STAGES

#: Parts of a network outside its numbered stages.
FIXED_STAGES = ("stem", "head", "classifier")

#: The parts of ShuffleNet v1, in order, as layer names begin: what diagrams, cost filters and the
#: views' part choosers list.
PARTS = ("stem", *(f"stage{s}" for s in STAGES), "classifier")

_PATTERN = re.compile(r"^(?:(stem|head|classifier)|stage(\d+)_unit(\d+))_([a-z0-9_]+)$")


class LayerName(NamedTuple):
    stage: str  # "stem", "stage2".."stage4", "head", "classifier"
    unit: int | None  # 1-based unit index inside a stage, None outside stages
    part: str  # e.g. "gconv1", "shuffle", "shortcut_pool"


def layer_name(stage: str | int, part: str, unit: int | None = None) -> str:
    """``layer_name(3, "gconv1", unit=2) -> "stage3_unit2_gconv1"``; ``layer_name("stem", "conv")``."""
    if isinstance(stage, int):
        if unit is None:
            raise ValueError(f"A layer of stage {stage} needs its unit number.")
        return f"stage{stage}_unit{unit}_{part}"
    if stage not in FIXED_STAGES:
        raise ValueError(f"Unknown stage {stage!r}: use 'stem', 'head', 'classifier' or a stage number.")
    return f"{stage}_{part}"


def parse_layer_name(name: str) -> LayerName:
    """Inverse of `layer_name`; raises ValueError for a name it did not make."""
    m = _PATTERN.match(name)
    if not m:
        raise ValueError(f"Not a ShuffleNet layer name: {name!r}")
    fixed, stage, unit, part = m.groups()
    if fixed:
        return LayerName(fixed, None, part)
    return LayerName(f"stage{stage}", int(unit), part)
