"""The layer plan (shufflenet/plan.py) against the paper: Table 1's units and sizes, Fig. 2's unit,
Sec. 3.1's shuffle, and the plan transformations that describe the other graphs."""

from __future__ import annotations

import numpy as np
import pytest

from shufflenet import ShuffleNetConfig
from shufflenet.plan import (
    fold_batchnorm,
    fold_pads,
    fuse_shuffle,
    layer_plan,
    shuffle_permutation,
    stem_sizes,
    unit_layers,
    unit_specs,
)

PAPER = ShuffleNetConfig()  # 1x, g = 3, 224x224x3, 1000 classes


def test_units_follow_table_1():
    specs = unit_specs(PAPER)
    assert len(specs) == sum(PAPER.blocks) == 16
    assert stem_sizes(PAPER) == (112, 56)
    for stage, width, out_size in zip((2, 3, 4), (240, 480, 960), (28, 14, 7)):
        units = [u for u in specs if u.stage == stage]
        assert [u.stride for u in units] == [2] + [1] * (len(units) - 1)  # the first unit downsamples
        assert {u.out_channels for u in units} == {width} and units[-1].out_size == out_size
        assert {u.bottleneck for u in units} == {width // 4}  # Sec. 3.2: a quarter of the output
    first = specs[0]
    assert (first.in_channels, first.groups1, first.branch_out) == (24, 1, 240 - 24)  # Sec. 3.3: ungrouped


def test_the_paper_shuffle_interleaves_the_groups_and_transposed_is_its_inverse():
    perm = shuffle_permutation(6, 2)
    assert perm.tolist() == [0, 3, 1, 4, 2, 5]  # output k*g + j takes channel j*n + k
    inverse = shuffle_permutation(6, 2, layout="transposed")
    assert np.arange(6)[perm][inverse].tolist() == list(range(6))
    assert shuffle_permutation(6, 1).tolist() == list(range(6))  # one group: the identity
    with pytest.raises(ValueError, match="divisible"):
        shuffle_permutation(7, 2)
    with pytest.raises(ValueError, match="layout"):
        shuffle_permutation(6, 2, layout="sideways")


def test_a_stride_1_unit_is_fig_2b_and_its_costs_are_the_closed_forms():
    layers = unit_layers(PAPER, 3, 2)
    assert [layer.part for layer in layers] == ["gconv1", "bn1", "relu1", "shuffle", "dwconv", "bn2", "gconv2",
                                                "bn3", "add", "relu"]
    gconv1, dwconv = layers[0], layers[4]
    h, c, b, g = 14, 480, 120, 3
    assert gconv1.macs == h * h * c * b // g and gconv1.params == c * b // g and gconv1.groups == g
    assert dwconv.macs == h * h * 9 * b and dwconv.groups == b
    assert layers[-2].inputs == ("stage3_unit1_relu", "stage3_unit2_bn3")  # the identity, then the branch


def test_a_stride_2_unit_concatenates_the_pooled_shortcut_and_the_ablation_drops_the_shuffle():
    parts = [layer.part for layer in unit_layers(PAPER, 4, 1)]
    assert parts[-4:] == ["shortcut_pad", "shortcut_pool", "concat", "relu"] and "dwpad" in parts
    no_shuffle = PAPER.replace(shuffle=False)
    assert not any(layer.op == "shuffle" for layer in layer_plan(no_shuffle))
    assert not any(layer.op == "shuffle" for layer in layer_plan(PAPER.replace(groups=1)))
    with pytest.raises(ValueError, match="has 4 unit"):
        unit_layers(PAPER, 2, 5)


def test_every_layer_reads_an_earlier_one(tiny_config):
    for config in (PAPER, tiny_config):
        seen = {"image"}
        for layer in layer_plan(config):
            assert set(layer.inputs) <= seen, layer.name
            seen.add(layer.name)
        assert len(seen) == len(layer_plan(config)) + 1  # names are unique
        assert layer_plan(config)[-1].output_shape == (config.num_classes,)


def test_the_transformations_remove_their_layers_and_keep_the_costs(tiny_config):
    plan = layer_plan(tiny_config)
    macs = sum(layer.macs for layer in plan)
    folded = fold_pads(plan)
    assert not any(layer.op == "pad" for layer in folded) and sum(layer.macs for layer in folded) == macs
    assert next(layer for layer in folded if layer.name == "stem_conv").padding == 1
    no_bn = fold_batchnorm(folded)
    assert not any(layer.op == "batchnorm" for layer in no_bn)
    assert all(layer.bias for layer in no_bn if layer.op in ("conv3x3", "conv1x1", "gconv1x1", "dwconv3x3"))
    fused = fuse_shuffle(no_bn)
    assert not any(layer.op == "shuffle" for layer in fused)
    shuffled = {(layer.stage, layer.unit) for layer in fused if layer.shuffled_output}
    assert shuffled == {(layer.stage, layer.unit) for layer in plan if layer.op == "shuffle"} and shuffled
    names = {layer.name for layer in fused} | {"image"}
    assert all(set(layer.inputs) <= names for layer in fused)  # no input points at a removed layer
