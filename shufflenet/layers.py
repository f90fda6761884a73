"""The two layers ShuffleNet adds to Keras: channel shuffle and the 1x1 group convolution.

Both are registered, serialisable layers (no `Lambda`), so a saved `.keras` model reloads
with `keras.models.load_model(path, safe_mode=True)`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .plan import shuffle_permutation

__all__ = ["ChannelShuffle", "GroupConv1x1", "shuffle_permutation"]

PACKAGE = "shufflenet"


def _spatial(inputs):
    """(H, W) of an NHWC tensor: static ints when known (so converters see fixed shapes and
    TFLite needs no SHAPE/GATHER ops), dynamic tensors otherwise."""
    dynamic = None
    dims = []
    for axis in (1, 2):
        d = inputs.shape[axis]
        if d is None:
            dynamic = ops.shape(inputs) if dynamic is None else dynamic
            d = dynamic[axis]
        dims.append(d)
    return dims


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelShuffle(keras.layers.Layer):
    """Channel shuffle of the paper, Sec. 3.1 (see `shuffle_permutation`). Channels last."""

    def __init__(self, groups: int, layout: str = "paper", **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"`groups` must be a positive whole number. Received: groups={groups!r}")
        if layout not in ("paper", "transposed"):
            raise ValueError(f"`layout` must be 'paper' or 'transposed'. Received: layout={layout!r}")
        self.groups = groups
        self.layout = layout

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"ChannelShuffle({self.groups}) needs a known channel count divisible by "
                f"{self.groups}. Received input shape: {input_shape}"
            )
        self.built = True

    def call(self, inputs):
        if self.groups == 1:
            return inputs
        h, w = _spatial(inputs)
        channels = inputs.shape[-1]
        n = channels // self.groups
        split = (self.groups, n) if self.layout == "paper" else (n, self.groups)
        x = ops.reshape(inputs, (-1, h, w, *split))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, h, w, channels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "layout": self.layout}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupConv1x1(keras.layers.Layer):
    """1x1 group convolution (paper Sec. 3.1), no bias; channels last.

    The input's C channels are split into g consecutive groups; group j's outputs see only
    group j's inputs. The kernel has shape (g, C/g, F/g): C*F/g parameters, as the paper counts.

    Computed as one batched matrix product (einsum) at inference and as one MatMul per group
    when training, instead of `Conv2D(groups=g)`, whose CPU kernels in TensorFlow are several
    times slower (bench/group_conv.py, bench/perf_targets.py). Both paths compute the same
    function (tests/test_layers.py).

    For inference graphs (`shufflenet.optimize`): `use_bias` adds a bias (a folded BN), and
    `shuffle_output=True` writes the result directly in the paper's shuffled channel order,
    so a following `ChannelShuffle` costs nothing: the einsum emits (n, g) instead of (g, n).
    """

    def __init__(self, filters: int, groups: int = 1, kernel_initializer="he_normal",
                 kernel_regularizer=None, use_bias: bool = False, shuffle_output: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"`groups` must be a positive whole number. Received: groups={groups!r}")
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1 or filters % groups:
            raise ValueError(
                f"`filters` must be a positive multiple of groups={groups}. Received: filters={filters!r}"
            )
        self.filters = filters
        self.groups = groups
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.use_bias = bool(use_bias)
        self.shuffle_output = bool(shuffle_output)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"GroupConv1x1(groups={self.groups}) needs input channels divisible by "
                f"{self.groups}. Received input shape: {input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.groups, channels // self.groups, self.filters // self.groups),
            initializer=self._fan_initializer(channels),
            regularizer=self.kernel_regularizer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        self.built = True

    def _fan_initializer(self, channels):
        # Draw the kernel as an ordinary (C/g, F) matrix, so fan-in is C/g as for a native
        # Conv2D(groups=g), then regroup it to (g, C/g, F/g).
        g, ci, co = self.groups, channels // self.groups, self.filters // self.groups

        def init(shape, dtype=None):
            flat = self.kernel_initializer((ci, g * co), dtype=dtype)
            return ops.transpose(ops.reshape(flat, (ci, g, co)), (1, 0, 2))

        return init

    def call(self, inputs, training=None):
        h, w = _spatial(inputs)
        if self.groups == 1:
            y = ops.matmul(inputs, self.kernel[0])
        elif training:
            y = self._per_group_matmuls(inputs, h, w)
        else:
            channels = inputs.shape[-1]
            x = ops.reshape(inputs, (-1, h, w, self.groups, channels // self.groups))
            out = "bhwog" if self.shuffle_output else "bhwgo"
            y = ops.einsum(f"bhwgi,gio->{out}", x, self.kernel)
            y = ops.reshape(y, (-1, h, w, self.filters))
        if self.bias is not None:
            y = y + self.bias
        return y

    def _per_group_matmuls(self, inputs, h, w):
        # Training: TensorFlow's Einsum gradient kernels are several times slower on CPU than
        # plain MatMuls of the same size (bench/perf_targets.py), so split the channels and run
        # one MatMul per group. Same function as the einsum path (tested).
        x = ops.reshape(inputs, (-1, inputs.shape[-1]))
        parts = ops.split(x, self.groups, axis=-1)
        ys = [ops.matmul(p, self.kernel[j]) for j, p in enumerate(parts)]
        # stacking on the last axis writes (n, g): the paper's shuffled order
        y = ops.stack(ys, axis=-1) if self.shuffle_output else ops.concatenate(ys, axis=-1)
        return ops.reshape(y, (-1, h, w, self.filters))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def dense_kernel(self) -> np.ndarray:
        """The equivalent (1, 1, C, F) block-diagonal kernel of an ordinary convolution."""
        k = np.asarray(self.kernel)
        g, ci, co = k.shape
        dense = np.zeros((g * ci, g * co), dtype=k.dtype)
        for j in range(g):
            dense[j * ci:(j + 1) * ci, j * co:(j + 1) * co] = k[j]
        return dense[None, None]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "use_bias": self.use_bias,
            "shuffle_output": self.shuffle_output,
        }
