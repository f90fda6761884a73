import keras
import numpy as np
import pytest

from shufflenet.layers import ChannelShuffle, GroupConv1x1, shuffle_permutation


def reference_shuffle(x, g):
    """Paper Sec. 3.1 spelled out: output channel k*g + j comes from input channel j*n + k."""
    c = x.shape[-1]
    n = c // g
    out = np.empty_like(x)
    for j in range(g):
        for k in range(n):
            out[..., k * g + j] = x[..., j * n + k]
    return out


@pytest.mark.parametrize("c,g", [(12, 3), (60, 3), (16, 8), (8, 2), (24, 4), (5, 1)])
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


@pytest.mark.parametrize("cin,cout,g", [(24, 60, 1), (60, 216, 3), (64, 32, 8), (40, 40, 2), (32, 16, 4)])
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


@pytest.mark.parametrize("c,g", [(60, 3), (16, 8), (24, 4)])
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
