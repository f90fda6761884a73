"""Receptive fields of every layer, read off the kernels, strides and paddings of the layer plan.

How many input pixels can one output position of a layer see? The standard recurrence, in
pixels of the input image, for a layer with kernel k, stride s and padding p reading an input
whose positions each see `size_in` pixels, `jump_in` pixels apart, the first one centred on
image coordinate `start_in`::

    size_out  = size_in + (k - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k - 1) / 2 - p) * jump_in

The image itself has size 1, jump 1 and start 0 (pixel i is centred on coordinate i). A pad
layer (k = 1, s = 1, p pixels) only moves the start; BN, ReLU, the shuffle and the 1x1 convs
(k = 1) change nothing; the global pool is one window over its whole input (k = s = its side);
the FC layer reads that single position.

Add and concat join two paths. Each output position of the join sees the union of what the
same position of both inputs sees; in a ShuffleNet unit both paths downsample alike (the
identity, or a 3x3 stride-2 average pool beside the branch's 3x3 stride-2 depthwise conv, both
after one pixel of padding), so their receptive fields share centre and jump and the union is
simply the larger one. `plan_receptive_fields` checks that and raises otherwise.

The size is not clipped to the image: a receptive field wider than the picture reaches into
the zero padding. `sees_whole_input` tells when every output position sees every input pixel.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from .config import ShuffleNetConfig
from .plan import LayerSpec, layer_plan


class ReceptiveField(NamedTuple):
    """What one output position of a layer sees, in input-image pixels."""

    size: int  # side of the square window of image pixels it depends on
    jump: int  # distance, in image pixels, between the centres of neighbouring output positions
    start: float  # image coordinate of the centre of output position 0's window (pixel i sits at i)


IMAGE = ReceptiveField(size=1, jump=1, start=0.0)


def _window(layer: LayerSpec) -> tuple[int, int]:
    """(kernel, stride) the recurrence uses: layers without a window are 1x1, the global pool
    is one window over its whole input."""
    if layer.op == "global_pool":
        side = layer.input_shape[0]
        return side, side
    return max(layer.kernel, 1), layer.stride


def plan_receptive_fields(plan: tuple[LayerSpec, ...]) -> dict[str, ReceptiveField]:
    """The receptive field of every layer of `plan` (any plan: `plan.fold_pads` gives the same
    fields for the layers it keeps, since a conv's own padding enters the recurrence as p).

    Raises ValueError when the two inputs of an add / concat do not share jump and centre (the
    union of their fields would then not be a square window)."""
    fields: dict[str, ReceptiveField] = {"image": IMAGE}
    for layer in plan:
        inputs = [fields[name] for name in layer.inputs]
        widest = max(inputs, key=lambda f: f.size)
        if any((f.jump, f.start) != (widest.jump, widest.start) for f in inputs):
            raise ValueError(
                f"Layer {layer.name!r} joins inputs whose receptive fields are not aligned "
                f"({', '.join(f'{n}: jump {f.jump}, centre {f.start}' for n, f in zip(layer.inputs, inputs))}); "
                "the larger one is only their union when both paths downsample alike. Give both paths the "
                "same strides and paddings."
            )
        k, s = _window(layer)
        fields[layer.name] = ReceptiveField(
            size=widest.size + (k - 1) * widest.jump,
            jump=widest.jump * s,
            start=widest.start + ((k - 1) / 2 - layer.padding) * widest.jump,
        )
    del fields["image"]
    return fields


@functools.lru_cache(maxsize=256)
def _receptive_fields(config: ShuffleNetConfig) -> tuple[tuple[str, ReceptiveField], ...]:
    return tuple(plan_receptive_fields(layer_plan(config)).items())


def receptive_fields(config: ShuffleNetConfig) -> dict[str, ReceptiveField]:
    """Layer name -> `ReceptiveField(size, jump, start)` for every layer of `build_model(config)`,
    in model order (cached; each call gets its own dict)."""
    return dict(_receptive_fields(config))


def output_side(layer: LayerSpec) -> int:
    """Spatial side of a layer's output (1 for the vectors of the global pool and the FC layer)."""
    return layer.output_shape[0] if len(layer.output_shape) == 3 else 1


def sees_whole_input(field: ReceptiveField, side: int, input_size: int) -> bool:
    """Whether every one of the `side` x `side` output positions sees all `input_size` pixels of
    the image along both axes: the first window reaches the last pixel and the last window the
    first one."""
    half = (field.size - 1) / 2
    last_centre = field.start + (side - 1) * field.jump
    return field.start + half >= input_size - 1 and last_centre - half <= 0


def clear_caches() -> None:
    """Forget cached fields (for benchmarks that time a cold computation)."""
    _receptive_fields.cache_clear()
