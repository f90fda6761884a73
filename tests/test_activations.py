"""shufflenet.activations: which layers of a unit are tapped (read from the layer plan), the one
tap model over a real (small, random) network, and the NumPy that arranges channels by group."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shufflenet import ShuffleNetConfig, build_model
from shufflenet import activations as act
from shufflenet.plan import layer_plan, shuffle_permutation

SMALL = ShuffleNetConfig(groups=3, blocks=(1, 2, 1), scale=0.25, input_size=32, channels=1, num_classes=10)


@pytest.fixture(scope="module")
def small():
    """(model, tap model, maps of one random picture) of SMALL."""
    model = build_model(SMALL)
    taps = act.ActivationTaps(model, SMALL)
    batch = np.random.default_rng(0).random((1, 32, 32, 1), dtype=np.float32)
    return model, taps, batch, taps(batch)


def _plan(config):
    return {layer.name: layer for layer in layer_plan(config)}


# --- which layers ----------------------------------------------------------------------------

def test_taps_of_a_stride_1_unit_read_the_plan():
    taps = act.unit_taps(SMALL, 3, 2)
    plan = _plan(SMALL)
    assert (taps.stride, taps.groups, taps.groups1) == (1, 3, 3)
    assert plan[taps.gconv1].op == "relu" and plan[taps.gconv1].inputs == ("stage3_unit2_bn1",)
    assert plan[taps.shuffle].op == "shuffle" and plan[taps.shuffle].inputs == (taps.gconv1,)
    assert plan[taps.depthwise].op == "batchnorm" and plan[plan[taps.depthwise].inputs[0]].op == "dwconv3x3"
    assert taps.output == "stage3_unit2_relu"
    # the identity shortcut is the previous unit's output, the first input of the addition
    assert taps.shortcut == "stage3_unit1_relu" == plan["stage3_unit2_add"].inputs[0]
    assert taps.names == ("stage3_unit1_relu", "stage3_unit2_relu1", "stage3_unit2_shuffle", "stage3_unit2_bn2",
                          "stage3_unit2_relu")


def test_taps_of_stride_2_units_use_the_pooled_shortcut():
    first = act.unit_taps(SMALL, 2, 1)
    assert first.stride == 2 and first.shortcut == "stage2_unit1_shortcut_pool"
    assert first.groups1 == 1 and first.groups == 3  # stage 2's first pointwise conv is not grouped
    assert act.unit_taps(SMALL, 3, 1).shortcut == "stage3_unit1_shortcut_pool"
    # the branch writes the channels the pooled shortcut does not fill
    assert first.branch_channels == _plan(SMALL)["stage2_unit1_gconv2"].filters == 60 - 6


@pytest.mark.parametrize("config", [SMALL.replace(groups=1), SMALL.replace(shuffle=False)])
def test_no_shuffle_layer_at_g1_or_in_the_ablation(config):
    taps = act.unit_taps(config, 3, 2)
    assert taps.shuffle is None and taps.shuffle not in taps.names
    assert (taps.permutation == np.arange(taps.bottleneck)).all()


def test_the_permutation_follows_the_configured_layout():
    taps = act.unit_taps(SMALL.replace(shuffle_layout="transposed"), 3, 2)
    assert (taps.permutation == shuffle_permutation(taps.bottleneck, 3, "transposed")).all()
    assert not (taps.permutation == shuffle_permutation(taps.bottleneck, 3, "paper")).all()


@pytest.mark.parametrize(("stage", "unit", "says"), [
    (3, 3, "Stage 3 has 2 units in this configuration, so there is no unit 3. Choose a unit from 1 to 2."),
    (4, 2, "Stage 4 has 1 unit in this configuration, so there is no unit 2. Choose a unit from 1 to 1."),
    (2, 0, "no unit 0"), (3, True, "no unit True"), (3, "2", "no unit '2'"),
    (5, 1, "ShuffleNet has stages 2, 3, 4"), (1, 1, "Received: stage=1"),
])
def test_a_unit_the_configuration_lacks_is_refused_with_a_message(stage, unit, says):
    with pytest.raises(act.UnitNotFoundError) as info:
        act.unit_taps(SMALL, stage, unit)
    assert says in str(info.value)


def test_tap_names_cover_every_unit_once_then_the_classifier():
    names = act.tap_names(SMALL)
    assert len(names) == len(set(names)) and names[-1] == act.CLASSIFIER
    assert sum(n.endswith("_relu1") for n in names) == sum(SMALL.blocks)


def test_default_unit_and_tiles():
    assert act.default_unit(SMALL, 3) == 2 and act.default_unit(SMALL, 4) == 1
    g3 = ShuffleNetConfig(groups=3, scale=0.5, input_size=32, channels=1, num_classes=10)
    assert act.default_per_group(act.unit_taps(g3, 2, 2)) == 10  # 3 groups of 10: all 30
    g1 = g3.replace(groups=1)
    assert act.unit_taps(g1, 3, 2).group_size == 36 and act.default_per_group(act.unit_taps(g1, 3, 2)) == 36
    assert act.default_per_group(act.unit_taps(g1, 4, 2)) == 64  # 72 channels: at most 64 tiles
    g8 = g3.replace(groups=8)
    assert act.default_per_group(act.unit_taps(g8, 4, 2)) == 8


# --- the tap model -----------------------------------------------------------------------------

def test_one_tap_model_returns_every_tapped_layer(small):
    model, taps, batch, maps = small
    assert isinstance(taps.model, keras.Model) and len(taps.model.outputs) == len(act.tap_names(SMALL))
    assert list(maps) == list(act.tap_names(SMALL))
    for name, array in maps.items():
        if name != act.CLASSIFIER:
            assert array.shape == tuple(model.get_layer(name).output.shape[1:]), name
    # the classifier read from the same call is the network's prediction
    np.testing.assert_allclose(maps[act.CLASSIFIER], np.asarray(model(batch, training=False))[0], atol=1e-5)


def test_the_shuffle_layer_is_the_permutation(small):
    _, _, _, maps = small
    for stage, unit in ((2, 1), (3, 2), (4, 1)):
        taps = act.unit_taps(SMALL, stage, unit)
        np.testing.assert_array_equal(maps[taps.shuffle], maps[taps.gconv1][..., taps.permutation])


def test_transposed_layout_shuffle_is_its_permutation():
    config = SMALL.replace(groups=2, blocks=(1, 1, 1), shuffle_layout="transposed")
    maps = act.ActivationTaps(build_model(config), config)(np.ones((1, 32, 32, 1), np.float32))
    taps = act.unit_taps(config, 2, 1)
    np.testing.assert_array_equal(maps[taps.shuffle], maps[taps.gconv1][..., taps.permutation])


def test_the_shortcuts_are_what_the_unit_adds_or_concatenates(small):
    model, _, batch, maps = small
    stride2 = act.unit_taps(SMALL, 3, 1)
    # concat(avgpool(x), branch): the output's first channels are the pooled shortcut (ReLU leaves it)
    np.testing.assert_allclose(maps[stride2.output][..., :stride2.in_channels], maps[stride2.shortcut], atol=1e-6)
    stride1 = act.unit_taps(SMALL, 3, 2)
    bn3 = keras.Model(model.input, model.get_layer("stage3_unit2_bn3").output)(batch, training=False)
    np.testing.assert_allclose(maps[stride1.output], np.maximum(maps[stride1.shortcut] + np.asarray(bn3)[0], 0),
                               atol=1e-5)


def test_tap_model_refuses_another_network_and_a_wrong_batch(small):
    _, taps, _, _ = small
    with pytest.raises(ValueError, match=r"batches of shape \(N, 32, 32, 1\).*\(1, 28, 28, 1\)"):
        taps(np.zeros((1, 28, 28, 1), np.float32))
    other = SMALL.replace(blocks=(1, 3, 1))
    with pytest.raises(ValueError, match="stage3_unit3"):
        act.ActivationTaps(build_model(SMALL), other)


# --- arranging by group --------------------------------------------------------------------------

def test_before_shuffle_tiles_in_group_order(small):
    _, _, _, maps = small
    taps = act.unit_taps(SMALL, 3, 2)
    n = taps.group_size
    panel = act.before_shuffle(maps, taps, per_group=2)
    assert list(panel.channels) == [0, 1, n, n + 1, 2 * n, 2 * n + 1]
    assert list(panel.colors) == list(panel.frame_of) == [0, 0, 1, 1, 2, 2]
    assert [f.label for f in panel.frames] == ["group 0", "group 1", "group 2"]
    assert (panel.shown, panel.total, panel.per_frame) == (6, taps.bottleneck, 2)
    whole = act.before_shuffle(maps, taps, per_group=10_000)
    assert list(whole.channels) == list(range(taps.bottleneck))


def test_after_shuffle_order_is_the_permutation_and_colours_interleave(small):
    _, _, _, maps = small
    taps = act.unit_taps(SMALL, 3, 2)
    n, g = taps.group_size, taps.groups
    panel = act.after_shuffle(maps, taps, per_group=n)
    perm = shuffle_permutation(taps.bottleneck, g)
    assert (panel.channels == np.arange(taps.bottleneck)).all() and (panel.sources == perm).all()
    assert (panel.colors == perm // n).all() and (panel.frame_of == np.arange(taps.bottleneck) // n).all()
    assert list(panel.colors[:2 * g]) == [0, 1, 2, 0, 1, 2]  # every group reads every group
    # each tile shows the same map as its source tile in (a), on the same grey scale
    before = act.before_shuffle(maps, taps, per_group=n)
    np.testing.assert_array_equal(panel.tiles, before.tiles[perm])
    part = act.after_shuffle(maps, taps, per_group=2)
    assert list(part.channels) == [0, 1, n, n + 1, 2 * n, 2 * n + 1]
    assert list(part.sources) == list(perm[part.channels])


def test_after_shuffle_needs_a_shuffle():
    config = SMALL.replace(shuffle=False)
    taps = act.unit_taps(config, 3, 2)
    maps = {taps.gconv1: np.ones((2, 2, taps.bottleneck))}
    with pytest.raises(ValueError, match="switched off"):
        act.after_shuffle(maps, taps, 2)


def test_depthwise_without_shuffle_keeps_each_group_in_its_frame():
    config = SMALL.replace(shuffle=False)
    taps = act.unit_taps(config, 3, 2)
    maps = {taps.depthwise: np.random.default_rng(1).normal(size=(2, 2, taps.bottleneck))}
    panel = act.after_depthwise(maps, taps, per_group=3)
    assert (panel.colors == panel.frame_of).all() and panel.signed
    shuffled = act.unit_taps(SMALL, 3, 2)
    mixed = act.after_depthwise({shuffled.depthwise: maps[taps.depthwise]}, shuffled, per_group=3)
    assert (mixed.colors != mixed.frame_of).any()


def test_output_frames_and_colours(small):
    _, _, _, maps = small
    stride2 = act.unit_taps(SMALL, 3, 1)
    out = act.unit_output(maps, stride2, per_group=2)
    assert out.frames[0].label == "average-pooled shortcut" and len(out.frames) == 1 + stride2.groups
    assert (out.colors == -1).all()  # with the shuffle, every group of the second conv mixed all groups
    m = stride2.branch_channels // stride2.groups
    assert list(out.channels[out.frame_of == 1]) == [stride2.in_channels, stride2.in_channels + 1]
    assert list(out.channels[out.frame_of == 2]) == [stride2.in_channels + m, stride2.in_channels + m + 1]
    assert list(out.channels[out.frame_of == 0]) == [0, 1]  # as many as each group of the branch shows
    sc = act.shortcut(maps, stride2, per_group=2)
    assert list(sc.channels) == list(range(2 * stride2.groups)) and sc.frames[0].count == stride2.in_channels
    stride1 = act.unit_taps(SMALL, 3, 2)
    assert list(act.shortcut(maps, stride1, 3).channels) == list(act.unit_output(maps, stride1, 3).channels)
    ablation = act.unit_taps(SMALL.replace(shuffle=False), 3, 2)
    unmixed = act.unit_output({ablation.output: maps[stride1.output]}, ablation, per_group=2)
    assert list(unmixed.colors) == [0, 0, 1, 1, 2, 2] and [f.color for f in unmixed.frames] == [0, 1, 2]


def test_frame_ranges_say_what_is_shown(small):
    _, _, _, maps = small
    taps = act.unit_taps(SMALL, 3, 2)
    n = taps.group_size
    assert act.frame_ranges(act.before_shuffle(maps, taps, 2))[1] == f"channels {n}–{2 * n - 1}, 2 of {n} shown"


# --- display values and energy -------------------------------------------------------------------

def test_grey_levels_per_layer_and_per_tile():
    full = np.zeros((2, 2, 3))
    full[..., 0], full[..., 1] = 4.0, 1.0
    taps = act.UnitTaps(2, 2, 1, 3, 3, "paper", 3, 3, 3, "a", None, "b", "c", "d")
    layer = act.before_shuffle({"a": full}, taps, 1, "layer")
    assert not layer.signed and layer.scale == 4.0
    np.testing.assert_allclose(layer.tiles[:, 0, 0], [1.0, 0.25, 0.0])
    np.testing.assert_allclose(act.before_shuffle({"a": full}, taps, 1, "tile").tiles[:, 0, 0], [1.0, 1.0, 0.0])
    signed = act.after_depthwise({"b": full - 2.0}, taps, 1)
    assert signed.signed
    np.testing.assert_allclose(signed.tiles[:, 0, 0], [1.0, 0.25, 0.0])  # +2 white, -1 at 0.25, -2 black
    np.testing.assert_allclose(layer.energies, [16.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="`contrast` must be one of layer, tile"):
        act.before_shuffle({"a": full}, taps, 1, "loud")


def test_shrink_block_averages_large_maps_only():
    maps = np.arange(2 * 56 * 56, dtype=np.float64).reshape(2, 56, 56)
    small = act.shrink(maps, 28)
    assert small.shape == (2, 28, 28)
    assert small[0, 0, 0] == maps[0, :2, :2].mean()
    np.testing.assert_array_equal(act.shrink(maps[:, :28, :28], 28), maps[:, :28, :28])
    assert act.shrink(np.ones((1, 29, 29)), 28).shape == (1, 14, 14)


def test_group_energy_is_the_mean_square_of_each_group():
    maps = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4)
    np.testing.assert_allclose(act.group_energy(maps, 2), [2.5, 12.5])
    np.testing.assert_allclose(act.group_energy(maps, 2, order=[0, 2, 1, 3]), [5.0, 10.0])
    with pytest.raises(ValueError, match="do not split into 3 equal groups"):
        act.group_energy(maps, 3)


def test_energy_table_per_group(small):
    _, _, _, maps = small
    taps = act.unit_taps(SMALL, 3, 2)
    table = act.energy_table(maps, taps)
    assert list(table["group"]) == [0, 1, 2]
    np.testing.assert_allclose(table[act.ENERGY_GCONV1], act.group_energy(maps[taps.gconv1], 3))
    n = taps.group_size
    expected = (maps[taps.depthwise][..., :n] ** 2).mean()
    np.testing.assert_allclose(table[act.ENERGY_DEPTHWISE][0], expected, rtol=1e-6)


def test_top_class(small):
    _, _, _, maps = small
    best, p = act.top_class(maps)
    assert p == maps[act.CLASSIFIER].max() and best == int(np.argmax(maps[act.CLASSIFIER]))
