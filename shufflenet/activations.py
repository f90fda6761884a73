"""What a ShuffleNet unit does to a picture: its real activations, arranged by group.

The paper's point (Sec. 3.1, Fig. 1) is that each 1x1 group convolution sees only its own
group of channels, and that the channel shuffle deals every group out over all the groups of
the next one. This module makes that visible on a trained network:

- `unit_taps(config, stage, unit)` names the layers of one unit worth looking at (after the
  first 1x1 group conv, after the shuffle, after the depthwise conv, the unit's output and its
  shortcut), read from the layer plan, never built from strings;
- `ActivationTaps` is one extra Keras model over the network's own layers whose outputs are
  those layers (for every unit at once), compiled once, so one call on a picture returns every
  map the explorer shows and no second forward pass exists;
- the rest is NumPy on the maps it returns: tiles arranged by group (`before_shuffle`,
  `after_shuffle`, `after_depthwise`, `unit_output`, `shortcut`), in the order the shuffle's
  index array `plan.shuffle_permutation` gives, and the energy (mean squared activation) of each
  group (`group_energy`, `energy_table`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .config import STAGES, ShuffleNetConfig
from .plan import shuffle_permutation, unit_layers, unit_specs

#: The classifier's output, tapped with the maps so the page can say what the network predicts
#: without running the model a second time.
CLASSIFIER = "classifier_fc"
#: Tiles shown by default: enough to see the pattern, few enough to read each one.
DEFAULT_MAX_TILES = 64
#: A tile larger than this (pixels a side) is shown block-averaged down to at most this side:
#: 64 tiles of an ImageNet stage-2 map (56x56) would otherwise send 200,000 values to the browser.
TILE_MAX_SIDE = 28
CONTRASTS = ("layer", "tile")


class UnitNotFoundError(ValueError):
    """The configuration has no such unit; the message says which units exist."""


@dataclasses.dataclass(frozen=True)
class UnitTaps:
    """The layers of one ShuffleNet unit that the explorer looks inside, by their stable names."""

    stage: int
    unit: int
    stride: int  # 2: the average-pooled shortcut is concatenated; 1: the input is added
    groups: int  # g: groups of the shuffle and of the second 1x1 conv
    groups1: int  # groups of the first 1x1 conv (1 in stage 2's first unit, paper Sec. 3.3)
    layout: str  # the shuffle's layout ("paper" or "transposed"), see `shuffle_permutation`
    in_channels: int
    out_channels: int
    bottleneck: int  # channels of the first 1x1 conv's output, the shuffle and the depthwise conv
    gconv1: str  # the first 1x1 conv's output after its BN and ReLU (what the shuffle reads)
    shuffle: str | None  # the channel shuffle; None at g = 1 or with the shuffle switched off
    depthwise: str  # the 3x3 depthwise conv's output after its BN (no ReLU follows, Sec. 3.2)
    output: str  # the unit's output (after the final ReLU)
    shortcut: str  # the unit's input (stride 1) or its 3x3 average pool (stride 2)

    @property
    def names(self) -> tuple[str, ...]:
        """The tapped layers, in model order."""
        return tuple(n for n in (self.shortcut, self.gconv1, self.shuffle, self.depthwise, self.output) if n)

    @property
    def group_size(self) -> int:
        """Channels per group of the bottleneck (n in the paper's (g, n) reshape)."""
        return self.bottleneck // self.groups

    @property
    def mixes_fully(self) -> bool:
        """Whether the shuffle gives every group of the next conv a channel of every group: it needs
        at least g channels per group (paper Fig. 1c)."""
        return self.shuffle is not None and self.group_size >= self.groups

    @property
    def branch_channels(self) -> int:
        """Channels of the residual branch in the output: all at stride 1, out - in at stride 2."""
        return self.out_channels - self.in_channels if self.stride == 2 else self.out_channels

    @property
    def permutation(self) -> np.ndarray:
        """Which channel of `gconv1` each channel of the depthwise conv reads: the shuffle's index
        array, or the identity where the unit has no shuffle."""
        if self.shuffle is None:
            return np.arange(self.bottleneck)
        return shuffle_permutation(self.bottleneck, self.groups, self.layout)


def unit_taps(config: ShuffleNetConfig, stage, unit) -> UnitTaps:
    """The tapped layers of unit `unit` (1-based) of stage `stage` (2, 3 or 4).

    Raises `UnitNotFoundError` for a stage or unit the configuration does not have, e.g. a unit
    chosen before the stage was given fewer units."""
    if isinstance(stage, bool) or not isinstance(stage, (int, np.integer)) or int(stage) not in STAGES:
        raise UnitNotFoundError(
            f"ShuffleNet has stages {', '.join(map(str, STAGES))} (paper Table 1). Received: stage={stage!r}. "
            "Choose one of them."
        )
    stage = int(stage)
    count = config.blocks[STAGES.index(stage)]
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 1 <= int(unit) <= count:
        raise UnitNotFoundError(
            f"Stage {stage} has {count} unit{'s' if count != 1 else ''} in this configuration, so there is no "
            f"unit {unit!r}. Choose a unit from 1 to {count}."
        )
    unit = int(unit)
    spec = next(u for u in unit_specs(config) if (u.stage, u.unit) == (stage, unit))
    parts = {layer.part: layer for layer in unit_layers(config, stage, unit)}
    shortcut = parts["shortcut_pool"].name if spec.stride == 2 else parts["add"].inputs[0]
    return UnitTaps(
        stage=stage, unit=unit, stride=spec.stride, groups=spec.groups, groups1=spec.groups1,
        layout=config.shuffle_layout, in_channels=spec.in_channels, out_channels=spec.out_channels,
        bottleneck=spec.bottleneck, gconv1=parts["relu1"].name,
        shuffle=parts["shuffle"].name if "shuffle" in parts else None, depthwise=parts["bn2"].name,
        output=parts["relu"].name, shortcut=shortcut,
    )


def tap_names(config: ShuffleNetConfig) -> tuple[str, ...]:
    """Every layer `ActivationTaps` returns: the tapped layers of all units, then the classifier."""
    names = dict.fromkeys(n for u in unit_specs(config) for n in unit_taps(config, u.stage, u.unit).names)
    return (*names, CLASSIFIER)


class ActivationTaps:
    """One extra Keras model over the layers of `model` (the network of `config`) whose outputs
    are `tap_names(config)`, compiled once.

    It shares the model's layers and weights, so its maps are the network's own: calling it is
    the network's forward pass, stopped nowhere and read at those layers. Read-only, shareable.
    """

    def __init__(self, model, config: ShuffleNetConfig):
        import keras
        import tensorflow as tf

        names = tap_names(config)
        have = {layer.name for layer in model.layers}
        missing = [n for n in names if n not in have]
        if missing:
            raise ValueError(
                f"Model {model.name!r} is not the network of this configuration: it has no layer(s) "
                f"{', '.join(missing[:4])}. Build it with build_model(config) for the same configuration."
            )
        self.config, self.names = config, names
        self.model = keras.Model(model.inputs, [model.get_layer(n).output for n in names], name=f"{model.name}_taps")
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Each tapped layer's output for the first picture of `batch`: (H, W, C) maps and the
        classifier's (num_classes,) probabilities."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise ValueError(
                f"This network takes batches of shape (N, {', '.join(map(str, self.input_shape))}). "
                f"Received: {batch.shape}. Prepare the picture for this configuration."
            )
        outputs = self._fn(batch[:1])
        return {name: np.asarray(out)[0] for name, out in zip(self.names, outputs)}


# --- arranging channels by group (NumPy only) --------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Frame:
    """A box of tiles: a group of channels."""

    label: str
    color: int  # colour index (a group), or -1 for a neutral frame
    first: int  # the first channel (of the tapped layer) the frame stands for
    count: int  # channels the frame stands for; `Panel.frame_of` says how many of them are shown


@dataclasses.dataclass(frozen=True)
class Panel:
    """The tiles of one tapped layer in display order, each with its channel and colour."""

    layer: str
    tiles: np.ndarray  # (T, h, w) float32 display values in [0, 1]
    channels: np.ndarray  # (T,) the channel of `layer` each tile shows
    sources: np.ndarray  # (T,) the channel of the first 1x1 conv's output it derives from, -1 where mixed
    colors: np.ndarray  # (T,) the group colour of each tile, -1 where the channel mixes groups
    frame_of: np.ndarray  # (T,) the index into `frames` of each tile
    frames: tuple[Frame, ...]
    total: int  # channels of the layer
    signed: bool  # values can be negative: 0 is mid-grey; otherwise 0 is black
    scale: float  # the layer's largest magnitude: white (and, when signed, minus it black) at contrast "layer"
    map_side: int  # side of the layer's maps before any block averaging
    energies: np.ndarray  # (T,) mean squared activation of each tile's channel

    @property
    def shown(self) -> int:
        return len(self.channels)

    @property
    def per_frame(self) -> int:
        """Tiles shown in the fullest frame."""
        return int(np.bincount(self.frame_of, minlength=len(self.frames)).max())


def group_of(channels: int, groups: int) -> np.ndarray:
    """The group of each of `channels` channels split into `groups` contiguous groups."""
    if groups < 1 or channels % groups:
        raise ValueError(f"{channels} channels do not split into {groups} equal groups. Received: channels="
                         f"{channels}, groups={groups}")
    return np.arange(channels) // (channels // groups)


def default_per_group(taps: UnitTaps, max_tiles: int = DEFAULT_MAX_TILES) -> int:
    """Channels shown per group by default: all of a group, but at most `max_tiles` in all."""
    return max(1, min(taps.group_size, max_tiles // taps.groups))


def first_per_group(channels: int, groups: int, per_group: int) -> np.ndarray:
    """The first `per_group` channels of every group, in group order (all of them when a group is
    smaller)."""
    n = channels // groups
    k = max(1, min(int(per_group), n))
    return (np.arange(groups)[:, None] * n + np.arange(k)[None, :]).reshape(-1)


def shrink(maps: np.ndarray, max_side: int = TILE_MAX_SIDE) -> np.ndarray:
    """(T, h, w) maps block-averaged by the smallest whole factor that brings the side to at most
    `max_side` (edge rows that do not fill a block are dropped)."""
    side = max(maps.shape[1:])
    factor = math.ceil(side / max_side) if side > max_side else 1
    if factor == 1:
        return maps
    t, h, w = maps.shape
    h2, w2 = h // factor, w // factor
    cut = maps[:, :h2 * factor, :w2 * factor]
    return cut.reshape(t, h2, factor, w2, factor).mean(axis=(2, 4))


def _display(maps: np.ndarray, full: np.ndarray, contrast: str) -> tuple[np.ndarray, bool, float]:
    """Display values in [0, 1]: 0 black to the largest activation white, or, for a layer with
    negative values, minus to plus the largest magnitude with 0 mid-grey. `contrast` "layer"
    uses one scale for the whole layer (tiles compare), "tile" each tile's own."""
    if contrast not in CONTRASTS:
        raise ValueError(f"`contrast` must be one of {', '.join(CONTRASTS)}. Received: contrast={contrast!r}")
    signed = bool((full < 0).any())
    mag = np.abs(maps.astype(np.float64))
    if contrast == "layer":
        scale = np.full((len(maps), 1, 1), float(np.abs(full).max()))
    else:
        scale = mag.max(axis=(1, 2), keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    values = maps / safe
    values = values * 0.5 + 0.5 if signed else values
    return np.clip(values, 0.0, 1.0).astype(np.float32), signed, float(np.abs(full).max())


def _panel(layer: str, full: np.ndarray, channels: np.ndarray, sources: np.ndarray, colors: np.ndarray,
           frame_of: np.ndarray, frames: tuple[Frame, ...], contrast: str) -> Panel:
    full = np.asarray(full)
    if full.ndim != 3:
        raise ValueError(f"Layer {layer} must give (H, W, C) maps. Received shape {full.shape}.")
    picked = np.moveaxis(full[..., channels], -1, 0)
    tiles, signed, scale = _display(shrink(picked), full, contrast)
    energies = (picked.astype(np.float64) ** 2).mean(axis=(1, 2))
    return Panel(layer, tiles, np.asarray(channels), np.asarray(sources), np.asarray(colors),
                 np.asarray(frame_of), frames, int(full.shape[-1]), signed, scale, int(full.shape[0]), energies)


def _layer(maps: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in maps:
        raise ValueError(f"No activations of layer {name!r} were computed: compute them with ActivationTaps for "
                         "this configuration.")
    return np.asarray(maps[name])


def _ranges(first: int, count: int) -> str:
    return f"{first}" if count == 1 else f"{first}–{first + count - 1}"


def before_shuffle(maps: Mapping[str, np.ndarray], taps: UnitTaps, per_group: int,
                   contrast: str = "layer") -> Panel:
    """The first 1x1 group conv's output (after BN + ReLU): the first `per_group` channels of each
    of its g groups, framed and coloured by group."""
    full = _layer(maps, taps.gconv1)
    g, n = taps.groups, taps.group_size
    channels = first_per_group(taps.bottleneck, g, per_group)
    groups = channels // n
    frames = tuple(Frame(f"group {j}", j, j * n, n) for j in range(g))
    return _panel(taps.gconv1, full, channels, channels, groups, groups, frames, contrast)


def _dealt(layer: str, full: np.ndarray, taps: UnitTaps, per_group: int, contrast: str, label: str) -> Panel:
    """Channels read by each group of the next 1x1 conv (the first `per_group` of each), each
    coloured by the group of the first 1x1 conv it came from (`UnitTaps.permutation`)."""
    g, n = taps.groups, taps.group_size
    channels = first_per_group(taps.bottleneck, g, per_group)
    sources = taps.permutation[channels]
    frames = tuple(Frame(label.format(j=j), -1, j * n, n) for j in range(g))
    return _panel(layer, full, channels, sources, sources // n, channels // n, frames, contrast)


def after_shuffle(maps: Mapping[str, np.ndarray], taps: UnitTaps, per_group: int, contrast: str = "layer") -> Panel:
    """The shuffle's output: frame j holds the channels group j of the next 1x1 conv reads, each
    tile coloured by the group it came from, so the colours interleave. Output channel p shows
    input channel `shuffle_permutation(...)[p]`. ValueError where the unit has no shuffle."""
    if taps.shuffle is None:
        raise ValueError(f"Stage {taps.stage} unit {taps.unit} has no channel shuffle (g = {taps.groups}"
                         f"{', or the shuffle is switched off' if taps.groups > 1 else ''}).")
    return _dealt(taps.shuffle, _layer(maps, taps.shuffle), taps, per_group, contrast, "read by group {j}")


def after_depthwise(maps: Mapping[str, np.ndarray], taps: UnitTaps, per_group: int,
                    contrast: str = "layer") -> Panel:
    """The depthwise conv's output (after its BN): it works per channel, so channel p still
    carries the group of the channel the shuffle put there; framed by the group of the second
    1x1 conv that reads it."""
    return _dealt(taps.depthwise, _layer(maps, taps.depthwise), taps, per_group, contrast, "read by group {j}")


def _output_layout(taps: UnitTaps, per_group: int) -> tuple[np.ndarray, np.ndarray, tuple[Frame, ...], int]:
    """The output's channels shown (the first `per_group` of every group of the second 1x1 conv,
    after as many of the pooled shortcut's channels at stride 2), the frame of each and the frames."""
    g, m = taps.groups, taps.branch_channels // taps.groups
    branch = first_per_group(taps.branch_channels, g, per_group)
    frames, parts, frame_of = [], [], []
    offset = 0
    if taps.stride == 2:
        offset = taps.in_channels
        sc = np.arange(min(taps.in_channels, len(branch) // g))
        frames.append(Frame("average-pooled shortcut", -1, 0, taps.in_channels))
        parts.append(sc)
        frame_of.append(np.zeros(len(sc), dtype=int))
    base = len(frames)
    # Coloured only where the groups never mixed: then group j of the second conv read group j alone.
    mixed = taps.shuffle is not None
    frames += [Frame(f"second 1×1 conv group {j}", -1 if mixed else j, offset + j * m, m) for j in range(g)]
    parts.append(offset + branch)
    frame_of.append(base + branch // m)
    return np.concatenate(parts), np.concatenate(frame_of), tuple(frames), offset


def unit_output(maps: Mapping[str, np.ndarray], taps: UnitTaps, per_group: int, contrast: str = "layer") -> Panel:
    """The unit's output, framed by the group of the second 1x1 conv that wrote each channel
    (after the shortcut's channels at stride 2). A branch channel and its frame keep one group's
    colour only where the groups never mixed (no shuffle, or g = 1); with the shuffle every group
    of the second conv read channels of all groups, so they are neutral."""
    channels, frame_of, frames, offset = _output_layout(taps, per_group)
    mixed = taps.shuffle is not None
    in_branch = channels >= offset
    m = taps.branch_channels // taps.groups
    colors = np.where(in_branch & (not mixed), (channels - offset) // m, -1)
    sources = np.full(len(channels), -1)
    return _panel(taps.output, _layer(maps, taps.output), channels, sources, colors, frame_of, frames, contrast)


def shortcut(maps: Mapping[str, np.ndarray], taps: UnitTaps, per_group: int, contrast: str = "layer") -> Panel:
    """The shortcut: at stride 1 the unit's input, the same channels as `unit_output` shows (each
    is added to them); at stride 2 its average pool, the output's first channels (as many as the
    output shows of the branch)."""
    full = _layer(maps, taps.shortcut)
    channels, frame_of, _, _ = _output_layout(taps, per_group)
    if taps.stride == 2:  # as many channels as the branch shows; the output's first frame has some of them
        channels = np.arange(min(taps.in_channels, int((channels >= taps.in_channels).sum())))
        frame_of = np.zeros(len(channels), dtype=int)
        frames = (Frame("average-pooled unit input", -1, 0, taps.in_channels),)
    else:
        m = taps.out_channels // taps.groups
        frames = tuple(Frame(f"added to group {j}", -1, j * m, m) for j in range(taps.groups))
    none = np.full(len(channels), -1)
    return _panel(taps.shortcut, full, channels, none, none, frame_of, frames, contrast)


# --- energy ------------------------------------------------------------------------------------

def group_energy(maps: np.ndarray, groups: int, order: np.ndarray | None = None) -> np.ndarray:
    """Mean squared activation of each group of an (H, W, C) map: group j is channels
    j*n .. (j+1)*n - 1, or, with `order`, the channels `order[j*n : (j+1)*n]`."""
    maps = np.asarray(maps, dtype=np.float64)
    c = maps.shape[-1]
    group_of(c, groups)  # validates
    if order is not None:
        maps = maps[..., np.asarray(order)]
    per_channel = (maps ** 2).reshape(-1, c).mean(axis=0)
    return per_channel.reshape(groups, c // groups).mean(axis=1)


ENERGY_GCONV1 = "after the first 1×1 conv (BN + ReLU)"
ENERGY_DEPTHWISE = "after the depthwise conv (BN), by group that reads it"


def energy_table(maps: Mapping[str, np.ndarray], taps: UnitTaps) -> pd.DataFrame:
    """Per group: the mean squared activation of the first 1x1 conv's output (its group j) and of
    the depthwise conv's output (the channels group j of the second 1x1 conv reads)."""
    g = taps.groups
    return pd.DataFrame({
        "group": np.arange(g),
        ENERGY_GCONV1: group_energy(_layer(maps, taps.gconv1), g),
        ENERGY_DEPTHWISE: group_energy(_layer(maps, taps.depthwise), g),
    })


def frame_ranges(panel: Panel) -> list[str]:
    """For each frame, the channels it stands for ("0–9") and how many of them are shown."""
    shown = np.bincount(panel.frame_of, minlength=len(panel.frames))
    return [f"channels {_ranges(f.first, f.count)}, {int(k)} of {f.count} shown" for f, k in zip(panel.frames, shown)]


def top_class(maps: Mapping[str, np.ndarray]) -> tuple[int, float]:
    """The classifier's most probable class and its probability."""
    p = _layer(maps, CLASSIFIER).reshape(-1)
    best = int(np.argmax(p))
    return best, float(p[best])


def default_unit(config: ShuffleNetConfig, stage: int) -> int:
    """The unit shown first: the stage's second (a plain stride-1 unit), or its only one."""
    return min(2, stage_units(config)[stage])


def stage_units(config: ShuffleNetConfig) -> dict[int, int]:
    """Units of each stage: {2: 4, 3: 8, 4: 4} for the paper's network."""
    return dict(zip(STAGES, config.blocks))
