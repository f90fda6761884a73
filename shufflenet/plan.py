"""The architecture as data: one row per ShuffleNet unit, fed to the model builder and the
cost counter alike (paper Table 1 and Fig. 2)."""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import STAGES, ShuffleNetConfig


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
