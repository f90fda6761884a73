"""The two layers ShuffleNet adds to Keras, channel shuffle and the 1x1 group convolution,
and the layers of the fast training graph (`model.training_graph`).

All are registered, serialisable layers (no `Lambda`), so a saved `.keras` model reloads
with `keras.models.load_model(path, safe_mode=True)`. The training-graph layers compute the
same functions as Keras's own with fewer passes over memory, using TensorFlow ops directly:
explicit padding inside the conv or pool instead of a separate pad (TensorFlow's CPU pad and
average-pool gradient kernels are slow), and a batch norm whose gradient is written out.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .plan import shuffle_permutation

__all__ = [
    "ChannelShuffle", "ChannelSplit", "FastBatchNormalization", "GroupConv1x1", "PaddedConv2D", "PaddedDepthwiseConv2D",
    "PaddedPool2D", "shuffle_permutation",
]

PACKAGE = "shufflenet"

#: How `GroupConv1x1` computes a training step: "split", one MatMul per group (any CPU);
#: "conv", TensorFlow's grouped convolution (on CPU it needs oneDNN, TF_ENABLE_ONEDNN_OPTS=1).
GROUP_CONV_TRAINING = ("split", "conv")


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
class ChannelSplit(keras.layers.Layer):
    """One part of ShuffleNet v2's channel split (Ma et al. 2018, Sec. 4): the `channels`
    channels from `offset` on. Channels last.

    Example: the two halves of a 116-channel tensor `x` are
    ``ChannelSplit(0, 58)(x)`` and ``ChannelSplit(58, 58)(x)``.
    """

    def __init__(self, offset: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        for name, value, low in (("offset", offset, 0), ("channels", channels, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be a whole number >= {low}. Received: {name}={value!r}")
        self.offset, self.channels = offset, channels
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        available = input_shape[-1]
        if available is None or self.offset + self.channels > available:
            raise ValueError(f"ChannelSplit({self.offset}, {self.channels}) needs at least "
                             f"{self.offset + self.channels} input channels. Received input shape: {input_shape}")
        self.built = True

    def call(self, inputs):
        return inputs[..., self.offset:self.offset + self.channels]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "offset": self.offset, "channels": self.channels}


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
                 kernel_regularizer=None, use_bias: bool = False, shuffle_output: bool = False,
                 training_path: str = "split", **kwargs):
        super().__init__(**kwargs)
        if training_path not in GROUP_CONV_TRAINING:
            raise ValueError(f"`training_path` must be one of {', '.join(GROUP_CONV_TRAINING)}. "
                             f"Received: training_path={training_path!r}")
        self.training_path = training_path
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
        self.input_spec = keras.layers.InputSpec(ndim=4)

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
        elif training and self.training_path == "conv" and not self.shuffle_output:
            import tensorflow as tf

            kernel = ops.concatenate([self.kernel[j] for j in range(self.groups)], axis=-1)[None, None]
            y = tf.nn.conv2d(inputs, kernel, 1, "VALID")
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
            "training_path": self.training_path,
        }


# --- the fast training graph's layers ---------------------------------------------------------

def _explicit(padding: int) -> list[list[int]]:
    return [[0, 0], [padding, padding], [padding, padding], [0, 0]]


class _ExplicitPadding:
    """What the padded convolutions share: `padding_pixels` of zeros a side before a "valid" op,
    in the output shape and in the saved config."""

    padding_pixels: int

    def compute_output_shape(self, input_shape):
        p = 2 * self.padding_pixels
        padded = (input_shape[0], *(d + p if d is not None else None for d in input_shape[1:3]), input_shape[3])
        return super().compute_output_shape(padded)

    def get_config(self):
        return {**super().get_config(), "padding_pixels": self.padding_pixels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PaddedConv2D(_ExplicitPadding, keras.layers.Conv2D):
    """`ZeroPadding2D(padding)` followed by `Conv2D(..., padding="valid")`, in one op.

    Same weights as `Conv2D`. Example: ``PaddedConv2D(24, 3, strides=2)`` on a 32x32 input
    gives 16x16, as the stem's pad + conv do."""

    def __init__(self, filters, kernel_size, padding_pixels: int = 1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, padding="valid", **kwargs)
        self.padding_pixels = int(padding_pixels)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        import tensorflow as tf

        y = tf.nn.conv2d(inputs, self.kernel, self.strides, _explicit(self.padding_pixels))
        return y + self.bias if self.use_bias else y


@keras.saving.register_keras_serializable(package=PACKAGE)
class PaddedDepthwiseConv2D(_ExplicitPadding, keras.layers.DepthwiseConv2D):
    """`ZeroPadding2D(padding)` followed by `DepthwiseConv2D(..., padding="valid")`, in one op
    (the stride-2 depthwise conv of a unit). Same weights as `DepthwiseConv2D`."""

    def __init__(self, kernel_size, padding_pixels: int = 1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(kernel_size, padding="valid", **kwargs)
        self.padding_pixels = int(padding_pixels)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        import tensorflow as tf

        s = self.strides
        y = tf.nn.depthwise_conv2d(inputs, self.kernel, [1, s[0], s[1], 1], _explicit(self.padding_pixels))
        return y + self.bias if self.use_bias else y


@keras.saving.register_keras_serializable(package=PACKAGE)
class PaddedPool2D(keras.layers.Layer):
    """`ZeroPadding2D(padding)` followed by a max or average pool ("valid"), in one op.

    The average counts the padded zeros (divides by size²), as the reference implementations'
    shortcut pool does; it runs as a depthwise conv with a constant kernel, whose gradient is
    far faster on CPU than TensorFlow's average-pool gradient. Example:
    ``PaddedPool2D("avg", 3, 2)`` on 8x8x24 gives 4x4x24."""

    def __init__(self, kind: str, pool_size: int = 3, strides: int = 2, padding_pixels: int = 1, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("max", "avg"):
            raise ValueError(f"`kind` must be 'max' or 'avg'. Received: kind={kind!r}")
        self.kind, self.pool_size, self.strides, self.padding_pixels = kind, int(pool_size), int(strides), int(
            padding_pixels)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        import tensorflow as tf

        k, s, pad = self.pool_size, self.strides, _explicit(self.padding_pixels)
        if self.kind == "max":
            return tf.nn.max_pool2d(inputs, k, s, pad)
        kernel = tf.fill((k, k, inputs.shape[-1], 1), tf.constant(1.0 / (k * k), inputs.dtype))
        return tf.nn.depthwise_conv2d(inputs, kernel, [1, s, s, 1], pad)

    def compute_output_shape(self, input_shape):
        def side(d):
            return None if d is None else (d + 2 * self.padding_pixels - self.pool_size) // self.strides + 1

        return (input_shape[0], side(input_shape[1]), side(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "pool_size": self.pool_size, "strides": self.strides,
                "padding_pixels": self.padding_pixels}


def _batch_norm_train(x, gamma, beta, epsilon: float):
    """Batch norm over all axes but the last, with its gradient written out: about half the
    passes over the activations of the generic gradient. Returns (y, batch mean, batch variance)."""
    import tensorflow as tf

    axes = list(range(len(x.shape) - 1))

    @tf.custom_gradient
    def bn(x, gamma, beta):
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
        mean = tf.reduce_mean(x, axes)
        var = tf.reduce_mean(tf.math.squared_difference(x, mean), axes)
        inv = tf.math.rsqrt(var + epsilon)
        scale = gamma * inv
        y = x * scale + (beta - mean * scale)

        def grad(dy, _dmean, _dvar):
            sum_dy = tf.reduce_sum(dy, axes)
            sum_dy_xhat = inv * (tf.reduce_sum(dy * x, axes) - mean * sum_dy)  # d gamma
            k = scale * inv * sum_dy_xhat / n
            dx = dy * scale - x * k + (k * mean - scale * sum_dy / n)
            return dx, sum_dy_xhat, sum_dy

        return (y, tf.stop_gradient(mean), tf.stop_gradient(var)), grad

    return bn(x, gamma, beta)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FastBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` (same weights, same function) whose training step uses
    `_batch_norm_train`; inference is Keras's own. Channels last, no mask."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.axis not in (-1, len(inputs.shape) - 1):
            return super().call(inputs, training=training, mask=mask)
        y, mean, var = _batch_norm_train(inputs, self.gamma.value, self.beta.value, self.epsilon)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + var * (1.0 - m))
        return y
