import keras
import numpy as np
import pytest

from shufflenet import ShuffleNetConfig, build_model
from shufflenet.layers import ChannelShuffle
from shufflenet.optimize import inference_model


def _randomise_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 1.5, c)])


def _logits_model(model):
    fc = model.get_layer("classifier_fc")
    return keras.Model(model.input, fc.input)  # features before the softmax head


@pytest.mark.parametrize("kw", [
    dict(groups=1), dict(groups=3), dict(groups=8, scale=0.5, reduction=0.3),
    dict(groups=4, shuffle_layout="transposed", fc_bias=False), dict(groups=8, shuffle=False),
])
@pytest.mark.parametrize("pointwise", ["einsum", "native"])
def test_inference_model_computes_the_same_function(kw, pointwise):
    c = ShuffleNetConfig(input_size=64, blocks=(2, 2, 1), num_classes=10, **kw)
    m = build_model(c)
    _randomise_bn(m)
    f = inference_model(m, c, pointwise=pointwise)
    x = np.random.default_rng(1).random((3, 64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(_logits_model(f)(x)), np.asarray(_logits_model(m)(x, training=False)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(m(x, training=False)), rtol=1e-4, atol=1e-5)
    assert not [layer for layer in f.layers if isinstance(layer, keras.layers.BatchNormalization)]
    has_shuffle = any(isinstance(layer, ChannelShuffle) for layer in f.layers)
    assert has_shuffle == (c.groups > 1 and c.shuffle and (c.shuffle_layout == "transposed" or pointwise == "native"))
