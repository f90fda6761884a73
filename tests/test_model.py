import keras
import numpy as np
import pytest

from shufflenet import ShuffleNetConfig, build_model, cost_table
from shufflenet.layers import ChannelShuffle


@pytest.mark.parametrize("kw", [
    dict(groups=1, input_size=32, channels=1, num_classes=10),
    dict(groups=2, input_size=64, blocks=(1, 1, 1)),
    dict(groups=3, input_size=96, scale=0.5, reduction=0.5),
    dict(groups=4, input_size=32, scale=1.5, blocks=(2, 3, 2), num_classes=7),
    dict(groups=8, input_size=128, scale=0.25, reduction=0.1, channels=1),
])
def test_output_shapes_and_softmax(kw):
    c = ShuffleNetConfig(**kw)
    m = build_model(c)
    x = np.random.default_rng(0).random((2, c.input_size, c.input_size, c.channels), dtype=np.float32)
    y = np.asarray(m(x))
    assert y.shape == (2, c.num_classes)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert m.get_layer("stage4_unit1_concat").output.shape[1:] == (c.input_size // 32, c.input_size // 32,
                                                                    c.stage_widths[2])


def test_unit_structure_follows_fig2():
    m = build_model(ShuffleNetConfig(groups=3, input_size=64, blocks=(2, 2, 2)))
    names = [layer.name for layer in m.layers]
    # stride-2 unit: avg-pool shortcut concatenated first, then the branch; stride-1: add
    concat = m.get_layer("stage3_unit1_concat")
    assert concat.input[0] is m.get_layer("stage3_unit1_shortcut_pool").output
    assert concat.input[1] is m.get_layer("stage3_unit1_bn3").output
    assert "stage3_unit2_add" in names and "stage3_unit2_shortcut_pool" not in names
    # shuffle sits between the first 1x1 conv's ReLU and the depthwise conv; no ReLU after dwconv
    shuffle = m.get_layer("stage3_unit2_shuffle")
    assert shuffle.input is m.get_layer("stage3_unit2_relu1").output
    assert m.get_layer("stage3_unit2_dwconv").input is shuffle.output
    assert m.get_layer("stage3_unit2_gconv2").input is m.get_layer("stage3_unit2_bn2").output
    assert m.get_layer("stage2_unit1_gconv1").groups == 1  # Sec. 3.3 exception
    assert m.get_layer("stage2_unit1_gconv2").groups == 3
    assert m.get_layer("stage3_unit1_gconv1").groups == 3


def test_no_shuffle_layers_when_g_is_1():
    m = build_model(ShuffleNetConfig(groups=1, input_size=32))
    assert not [layer for layer in m.layers if isinstance(layer, ChannelShuffle)]
    assert not [layer for layer in m.layers if "Lambda" in type(layer).__name__]


def test_layer_names_match_cost_table():
    c = ShuffleNetConfig(groups=8, input_size=64, blocks=(1, 2, 3))
    m = build_model(c)
    assert sorted(layer.name for layer in m.layers[1:]) == sorted(cost_table(c)["name"])


@pytest.mark.slow
def test_save_and_reload_in_safe_mode_gives_identical_outputs(tmp_path):
    c = ShuffleNetConfig(groups=3, input_size=64, blocks=(1, 2, 1))
    m = build_model(c)
    x = np.random.default_rng(2).random((2, 64, 64, 3), dtype=np.float32)
    # non-trivial BN statistics, so a reload that dropped them would show
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    m.fit(x, np.eye(1000)[[1, 2]], epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    m.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(m(x)), np.asarray(loaded(x)))


@pytest.mark.slow
def test_tflite_conversion_runs_and_matches():
    import tensorflow as tf

    c = ShuffleNetConfig(groups=3, input_size=64, blocks=(1, 1, 1), num_classes=10)
    m = build_model(c)
    tflite = tf.lite.TFLiteConverter.from_keras_model(m).convert()
    interpreter = tf.lite.Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = np.random.default_rng(3).random((1, 64, 64, 3), dtype=np.float32)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(out["index"]), np.asarray(m(x)), atol=1e-5)


def test_build_model_rejects_non_config():
    with pytest.raises(ValueError, match="ShuffleNetConfig"):
        build_model({"groups": 3})


# --- the fast training graph ---------------------------------------------------------------------

def _grads(model, x, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    return {v.path: g.numpy() for v, g in zip(model.trainable_variables, grads)}


@pytest.mark.parametrize("kw", [dict(groups=3), dict(groups=8, shuffle=False), dict(groups=1, channels=3)])
def test_training_graph_is_the_same_network(kw):
    """Pads merged, batch norm's gradient written out: same weights, outputs and gradients."""
    from shufflenet.model import copy_weights, training_graph

    c = ShuffleNetConfig(blocks=(2, 2, 1), scale=0.5, input_size=32, num_classes=10, **{"channels": 1, **kw})
    m, t = build_model(c), training_graph(c)
    assert not [layer for layer in t.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert {layer.name for layer in t.layers if layer.weights} == {layer.name for layer in m.layers if layer.weights}
    copy_weights(m, t)
    x = np.random.default_rng(0).random((8, 32, 32, c.channels), dtype=np.float32)
    y = np.arange(8) % 10
    np.testing.assert_allclose(t(x, training=False), m(x, training=False), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t(x, training=True), m(x, training=True), rtol=1e-4, atol=1e-5)
    gm, gt = _grads(m, x, y), _grads(t, x, y)
    assert gm.keys() == gt.keys()
    for name in gm:
        scale = np.abs(gm[name]).max()
        # float32 sums in another order: a thousandth of the largest gradient
        np.testing.assert_allclose(gt[name], gm[name], atol=1e-3 * scale + 1e-6, err_msg=name)


def test_copy_weights_names_what_does_not_fit():
    from shufflenet.model import copy_weights

    a = build_model(ShuffleNetConfig(groups=3, input_size=32, num_classes=10))
    b = build_model(ShuffleNetConfig(groups=8, input_size=32, num_classes=10))
    with pytest.raises(ValueError, match="shapes differ"):
        copy_weights(a, b)
