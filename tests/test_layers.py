import keras
import numpy as np
import pytest

from shufflenet.layers import ChannelShuffle, GroupConv1x1, shuffle_permutation
from shufflenet.settings import quiet_tensorflow_env


def reference_shuffle(x, g):
    """Paper Sec. 3.1 spelled out: output channel k*g + j comes from input channel j*n + k."""
    c = x.shape[-1]
    n = c // g
    out = np.empty_like(x)
    for j in range(g):
        for k in range(n):
            out[..., k * g + j] = x[..., j * n + k]
    return out


@pytest.mark.parametrize(("c", "g"), [(12, 3), (60, 3), (16, 8), (8, 2), (24, 4), (5, 1)])
def test_shuffle_matches_numpy_reference(c, g):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, c)).astype("float32")
    y = np.asarray(ChannelShuffle(g)(x))
    np.testing.assert_array_equal(y, reference_shuffle(x, g))
    np.testing.assert_array_equal(x[..., shuffle_permutation(c, g)], y)


def test_shuffle_permutation_small_example():
    # g=2, n=3: groups (0 1 2)(3 4 5) interleave to 0 3 1 4 2 5
    assert shuffle_permutation(6, 2).tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match="divisible"):
        shuffle_permutation(10, 3)


def test_shuffle_rejects_indivisible_channels():
    with pytest.raises(ValueError, match="divisible by 3"):
        ChannelShuffle(3)(np.zeros((1, 2, 2, 10), "float32"))
    with pytest.raises(ValueError, match="positive whole number"):
        ChannelShuffle(0)


@pytest.mark.parametrize(("cin", "cout", "g"), [(24, 60, 1), (60, 216, 3), (64, 32, 8), (40, 40, 2), (32, 16, 4)])
def test_group_conv_equals_dense_conv_with_block_diagonal_kernel(cin, cout, g):
    x = np.random.default_rng(1).normal(size=(2, 5, 5, cin)).astype("float32")
    layer = GroupConv1x1(cout, groups=g)
    y = np.asarray(layer(x))
    dense = keras.layers.Conv2D(cout, 1, use_bias=False)
    dense.build(x.shape)
    dense.set_weights([layer.dense_kernel()])
    np.testing.assert_allclose(y, np.asarray(dense(x)), rtol=1e-5, atol=1e-5)
    # and against Keras's native grouped convolution with the same weights
    native = keras.layers.Conv2D(cout, 1, groups=g, use_bias=False)
    native.build(x.shape)
    k = np.asarray(layer.kernel)  # (g, cin/g, cout/g) -> (1, 1, cin/g, cout) with groups along cout
    native.set_weights([np.concatenate(list(k), axis=-1)[None, None]])
    np.testing.assert_allclose(y, np.asarray(native(x)), rtol=1e-5, atol=1e-5)
    assert layer.count_params() == cin * cout // g


def test_group_conv_blocks_cross_group_information():
    x = np.zeros((1, 1, 1, 6), "float32")
    x[..., 0] = 1.0  # only group 0 of 3 is active
    layer = GroupConv1x1(6, groups=3)
    y = np.asarray(layer(x))[0, 0, 0]
    assert np.all(y[2:] == 0) and np.any(y[:2] != 0)


def test_group_conv_initialiser_uses_per_group_fan_in():
    layer = GroupConv1x1(3000, groups=8)
    layer.build((None, 4, 4, 800))
    std = float(np.std(np.asarray(layer.kernel)))
    expected = np.sqrt(2.0 / (800 / 8))  # he_normal with fan-in C/g, as a native grouped conv
    assert abs(std - expected) / expected < 0.1


def test_group_conv_validation_messages():
    with pytest.raises(ValueError, match="multiple of groups=3"):
        GroupConv1x1(10, groups=3)
    with pytest.raises(ValueError, match="divisible by 3"):
        GroupConv1x1(6, groups=3)(np.zeros((1, 2, 2, 10), "float32"))


def test_layers_serialise():
    for layer in (ChannelShuffle(4, name="s"), GroupConv1x1(8, groups=4, name="g")):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is type(layer)


@pytest.mark.parametrize(("c", "g"), [(60, 3), (16, 8), (24, 4)])
def test_transposed_layout_is_the_inverse_permutation(c, g):
    paper, transposed = shuffle_permutation(c, g), shuffle_permutation(c, g, layout="transposed")
    np.testing.assert_array_equal(paper[transposed], np.arange(c))
    x = np.random.default_rng(4).normal(size=(1, 2, 2, c)).astype("float32")
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(g, layout="transposed")(x)), x[..., transposed])


@pytest.mark.parametrize("shuffle_output", [False, True])
@pytest.mark.parametrize("g", [2, 3, 8])
def test_training_and_inference_paths_agree(g, shuffle_output):
    x = np.random.default_rng(5).normal(size=(2, 3, 3, 8 * g)).astype("float32")
    layer = GroupConv1x1(4 * g, groups=g, use_bias=True, shuffle_output=shuffle_output)
    layer.build(x.shape)
    layer.bias.assign(np.arange(4 * g, dtype="float32"))
    infer, train = np.asarray(layer(x, training=False)), np.asarray(layer(x, training=True))
    np.testing.assert_allclose(train, infer, rtol=1e-5, atol=1e-5)
    if shuffle_output:
        plain = GroupConv1x1(4 * g, groups=g)
        plain.build(x.shape)
        plain.kernel.assign(layer.kernel)
        expected = np.asarray(plain(x))[..., shuffle_permutation(4 * g, g)] + layer.bias.numpy()
        np.testing.assert_allclose(infer, expected, rtol=1e-5, atol=1e-5)


def test_fast_training_layers_equal_pad_then_op():
    """The training graph's merged layers compute what ZeroPadding2D + the Keras op compute."""
    import keras

    from shufflenet.layers import PaddedConv2D, PaddedDepthwiseConv2D, PaddedPool2D

    x = np.random.default_rng(2).normal(size=(2, 9, 9, 6)).astype("float32")
    padded = keras.layers.ZeroPadding2D(1)(x)
    conv = PaddedConv2D(4, 3, strides=2)
    ref = keras.layers.Conv2D(4, 3, strides=2, use_bias=False)
    ref.build(padded.shape)
    conv.build(x.shape)
    ref.kernel.assign(conv.kernel)
    np.testing.assert_allclose(conv(x), ref(padded) + conv.bias, rtol=1e-5, atol=1e-5)
    dw = PaddedDepthwiseConv2D(3, strides=2, use_bias=False)
    dref = keras.layers.DepthwiseConv2D(3, strides=2, use_bias=False)
    dw.build(x.shape)
    dref.build(padded.shape)
    dref.kernel.assign(dw.kernel)
    np.testing.assert_allclose(dw(x), dref(padded), rtol=1e-5, atol=1e-5)
    relu = np.maximum(x, 0)  # the stem's max pool reads a ReLU's output, so zero padding is -inf padding
    np.testing.assert_allclose(PaddedPool2D("max", 3, 2)(relu), keras.layers.MaxPooling2D(3, 2)(
        keras.layers.ZeroPadding2D(1)(relu)), rtol=1e-6)
    np.testing.assert_allclose(PaddedPool2D("avg", 3, 2)(x), keras.layers.AveragePooling2D(3, 2)(padded),
                               rtol=1e-5, atol=1e-6)
    assert PaddedPool2D("avg", 3, 2).compute_output_shape((None, 9, 9, 6)) == (None, 5, 5, 6)
    with pytest.raises(ValueError, match="'max' or 'avg'"):
        PaddedPool2D("min")


def test_fast_batch_norm_matches_keras_in_training_and_inference():
    import keras
    import tensorflow as tf

    from shufflenet.layers import FastBatchNormalization

    x = tf.constant(np.random.default_rng(3).normal(2.0, 3.0, size=(16, 4, 4, 8)).astype("float32"))
    fast, ref = FastBatchNormalization(momentum=0.9, epsilon=1e-5), keras.layers.BatchNormalization(momentum=0.9,
                                                                                                      epsilon=1e-5)
    for layer in (fast, ref):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 8))
        layer.beta.assign(np.linspace(-1, 1, 8))
    outs, grads = [], []
    for layer in (fast, ref):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(8, dtype=tf.float32))
        outs.append(y.numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fast.moving_mean, ref.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fast.moving_variance, ref.moving_variance, rtol=1e-5)
    np.testing.assert_allclose(fast(x, training=False), ref(x, training=False), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_grouped_conv_training_path_equals_split_with_onednn():
    """The "conv" training path (TensorFlow's grouped convolution, which needs oneDNN on CPU) gives
    the split path's outputs and gradients; checked in a process started with oneDNN on."""
    import os
    import subprocess
    import sys

    code = """
import numpy as np, tensorflow as tf
from shufflenet.layers import GroupConv1x1
x = tf.constant(np.random.default_rng(4).normal(size=(3, 4, 4, 24)).astype('float32'))
out = []
for path in ('split', 'conv'):
    layer = GroupConv1x1(12, groups=3, training_path=path, name='g')
    layer.build(x.shape)
    layer.kernel.assign(np.random.default_rng(5).normal(size=(3, 8, 4)).astype('float32'))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * y)
    gx, gk = tape.gradient(loss, [x, layer.kernel])
    out.append((y.numpy(), gx.numpy(), gk.numpy()))
print(max(float(np.abs(a - b).max()) for a, b in zip(*out)))
"""
    env = {**os.environ, **quiet_tensorflow_env(onednn=True)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-3
