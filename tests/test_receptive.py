"""shufflenet.receptive and analysis.receptive_field_table: receptive fields from the layer plan,
checked by hand for the stem and stage 2 and against a direct computation of the windows."""

from __future__ import annotations

import math

import pytest

from shufflenet import ShuffleNetConfig, analysis
from shufflenet.plan import LayerSpec, fold_pads, layer_plan
from shufflenet.receptive import ReceptiveField, plan_receptive_fields, receptive_fields, sees_whole_input


def test_stem_and_stage2_by_hand():
    rf = receptive_fields(ShuffleNetConfig())  # the paper's network, g = 3, 224x224
    # Image: size 1, jump 1, pixel i centred on i.
    # stem_pad (1 pixel): output position 0 is the padding pixel at -1.
    assert rf["stem_pad"] == (1, 1, -1.0)
    # stem_conv 3x3, stride 2: size 1 + (3 - 1) * 1 = 3, jump 1 * 2 = 2, centre -1 + 1 * 1 = 0.
    assert rf["stem_conv"] == (3, 2, 0.0)
    assert rf["stem_bn"] == rf["stem_relu"] == (3, 2, 0.0)  # per-pixel layers change nothing
    # stem_pool_pad moves the start back one position of jump 2; stem_pool 3x3 / 2: 3 + 2 * 2 = 7, jump 4.
    assert rf["stem_pool_pad"] == (3, 2, -2.0)
    assert rf["stem_pool"] == (7, 4, 0.0)
    # stage2 unit1 (stride 2): the 1x1 conv and the shuffle see what their input sees; the 3x3 depthwise
    # conv, stride 2 after one pixel of padding: 7 + 2 * 4 = 15, jump 8. The average-pooled shortcut
    # is the same window (3x3 / 2 after padding), so the concat sees 15 as well.
    assert rf["stage2_unit1_gconv1"] == rf["stage2_unit1_shuffle"] == (7, 4, 0.0)
    assert rf["stage2_unit1_dwpad"] == (7, 4, -4.0)
    assert rf["stage2_unit1_dwconv"] == rf["stage2_unit1_gconv2"] == (15, 8, 0.0)
    assert rf["stage2_unit1_shortcut_pool"] == (15, 8, 0.0)
    assert rf["stage2_unit1_concat"] == rf["stage2_unit1_relu"] == (15, 8, 0.0)
    # stage2 units 2-4 (stride 1): each 3x3 depthwise conv, padding 1, adds (3 - 1) * 8 = 16; the add joins
    # it with the identity (15, 31, 47), the larger field wins.
    for unit, size in ((2, 31), (3, 47), (4, 63)):
        assert rf[f"stage2_unit{unit}_dwconv"] == (size, 8, 0.0)
        assert rf[f"stage2_unit{unit}_add"] == rf[f"stage2_unit{unit}_relu"] == (size, 8, 0.0)


def test_stage_table_of_the_paper_network_by_hand():
    t = analysis.receptive_field_table(ShuffleNetConfig()).set_index("stage")
    assert list(t.index) == ["stem", "stage2", "stage3", "stage4", "classifier"]
    assert t["layer"].tolist() == ["stem_pool", "stage2_unit4_relu", "stage3_unit8_relu", "stage4_unit4_relu",
                                   "classifier_fc"]
    assert t["output_side"].tolist() == [56, 28, 14, 7, 1]
    # stage3: its first unit adds 2 * 8 (stride 2, jump 8 -> 16), the seven others 2 * 16 each;
    # stage4: 2 * 16, then three units of 2 * 32. The global pool is one 7x7 window of jump 32.
    stage3 = 63 + 2 * 8 + 7 * 2 * 16
    stage4 = stage3 + 2 * 16 + 3 * 2 * 32
    assert t["receptive_field"].tolist() == [7, 63, stage3, stage4, stage4 + 6 * 32] == [7, 63, 303, 527, 719]
    assert t["jump"].tolist() == [4, 8, 16, 32, 224]
    assert t.loc["classifier", "start"] == 3 * 32  # centre of the window over positions 0..6
    # Every position of stage 4 sees the whole 224-pixel image: position 0 (centre 0) reaches
    # (527 - 1) / 2 = 263 >= 223, position 6 (centre 192) reaches back to 192 - 263 < 0. Stage 3 does not.
    assert t["sees_whole_input"].tolist() == [False, False, False, True, True]


def test_unit_table_and_layer_table():
    c = ShuffleNetConfig()
    units = analysis.receptive_field_table(c, by="unit")
    assert len(units) == 1 + 16 + 1 and units["unit"].dtype == "Int64"
    stage4 = units[units["stage"] == "stage4"].set_index("unit")
    assert stage4["receptive_field"].tolist() == [335, 399, 463, 527]
    # Unit 3 is the first whose every position sees the whole image: (463 - 1) / 2 = 231 >= 223.
    assert stage4["sees_whole_input"].tolist() == [False, False, True, True]
    layers = analysis.receptive_field_table(c, by="layer")
    assert layers["name"].tolist() == [spec.name for spec in layer_plan(c)]
    row = layers.set_index("name").loc["stage3_unit2_dwconv"]
    assert (row["kernel"], row["stride"], row["padding"], row["receptive_field"], row["jump"]) == (3, 1, 1, 111, 16)
    with pytest.raises(ValueError, match=r"'stage', 'unit' or 'layer'. Received: by='pixel'"):
        analysis.receptive_field_table(c, by="pixel")


def _dependencies(plan, input_size):
    """Independent of the recurrence: for every layer and output position, the interval of image
    pixels it really depends on (None for a padding pixel), by applying each layer's window to
    the intervals of the input positions it covers; padding depends on nothing."""
    spans = {"image": [(i, i) for i in range(input_size)]}
    for layer in plan:
        inputs = [spans[name] for name in layer.inputs]
        if layer.op == "fc":
            spans[layer.name] = inputs[0]
            continue
        side = len(inputs[0])
        if layer.op == "global_pool":
            k, s, p = side, side, 0
        else:
            k, s, p = max(layer.kernel, 1), layer.stride, layer.padding
        out = []
        for o in range((side + 2 * p - k) // s + 1):
            covered = [inp[q] for inp in inputs for q in range(o * s - p, o * s - p + k)
                       if 0 <= q < side and inp[q] is not None]
            out.append((min(a for a, _ in covered), max(b for _, b in covered)) if covered else None)
        spans[layer.name] = out
    return spans


CONFIGS = [
    ShuffleNetConfig(),
    ShuffleNetConfig(groups=1, blocks=(1, 2, 1), input_size=512),
    ShuffleNetConfig(groups=8, blocks=(2, 1, 3), input_size=96, shuffle=False),
    ShuffleNetConfig(groups=4, blocks=(1, 1, 2), input_size=32, scale=0.5),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"g{c.groups}_{c.blocks}_{c.input_size}")
def test_recurrence_matches_the_dependencies_computed_directly(config):
    # Output position o of a layer is centred on start + o * jump and, clipped to the image, sees
    # the pixels within (size - 1) / 2 of that centre: exactly what the direct computation finds.
    spans = _dependencies(layer_plan(config), config.input_size)
    last = config.input_size - 1
    unclipped = 0
    for name, field in receptive_fields(config).items():
        half = (field.size - 1) / 2
        for o, span in enumerate(spans[name]):
            if span is None:  # a padding pixel (its nominal window may still overlap the image's edge)
                assert name.endswith("pad"), name
                continue
            centre = field.start + o * field.jump
            lo, hi = max(0, math.ceil(centre - half)), min(last, math.floor(centre + half))
            assert span == (lo, hi), (name, o)
            unclipped += lo == centre - half and hi == centre + half
    assert unclipped > 100  # many windows lie wholly inside the image, where size and centre show unclipped


def test_folded_pads_give_the_same_fields():
    # A conv that pads by itself enters the recurrence through p: the fast training graph's plan agrees.
    config = ShuffleNetConfig(groups=2, blocks=(2, 2, 2))
    plan = layer_plan(config)
    folded = plan_receptive_fields(fold_pads(plan))
    full = receptive_fields(config)
    assert set(folded) == {spec.name for spec in plan if spec.op != "pad"}
    assert all(folded[name] == full[name] for name in folded)


def test_a_join_of_misaligned_paths_is_refused():
    a = LayerSpec("a", "maxpool", "stem", None, "a", ("image",), (8, 8, 1), (4, 4, 1), kernel=2, stride=2)
    b = LayerSpec("b", "conv3x3", "stem", None, "b", ("image",), (8, 8, 1), (8, 8, 1), kernel=3, padding=1)
    join = LayerSpec("j", "add", "stem", None, "j", ("a", "b"), (8, 8, 1), (8, 8, 1))
    with pytest.raises(ValueError, match=r"not aligned.*a: jump 2.*b: jump 1.*same strides and paddings"):
        plan_receptive_fields((a, b, join))


def test_cached_fields_are_not_shared():
    c = ShuffleNetConfig(groups=4)
    fields = receptive_fields(c)
    fields["stem_conv"] = ReceptiveField(0, 0, 0.0)
    assert receptive_fields(c)["stem_conv"] == (3, 2, 0.0)


def test_sees_whole_input_by_hand():
    # A window of 9 pixels centred on 0 reaches 4 to the right: enough for a 5-pixel image, not for 6.
    assert sees_whole_input(ReceptiveField(9, 2, 0.0), side=1, input_size=5)
    assert not sees_whole_input(ReceptiveField(9, 2, 0.0), side=1, input_size=6)
    # Two positions 2 apart: the second (centre 2) reaches back to -2, the first forward to 4.
    assert sees_whole_input(ReceptiveField(9, 2, 0.0), side=2, input_size=5)
    assert not sees_whole_input(ReceptiveField(9, 5, 0.0), side=2, input_size=5)  # centre 5 reaches back to 1


# --- the tables the Architecture view shows ---------------------------------------------------

def test_every_unit_of_the_paper_network_by_hand():
    # 224 input, g = 3, units 4/8/4. Stem: conv 3x3 / 2 -> 1 + 2 * 1 = 3 (jump 2); max pool 3x3 / 2
    # -> 3 + 2 * 2 = 7 (jump 4). Each unit's 3x3 depthwise conv adds 2 * (the jump it reads at); a
    # stride-2 unit reads at the old jump and doubles it.
    units = analysis.receptive_field_table(ShuffleNetConfig(), by="unit")
    stage2 = [7 + 2 * 4, *(7 + 2 * 4 + k * 2 * 8 for k in (1, 2, 3))]  # jump 8 after unit 1
    stage3 = [stage2[-1] + 2 * 8, *(stage2[-1] + 2 * 8 + k * 2 * 16 for k in range(1, 8))]  # jump 16
    stage4 = [stage3[-1] + 2 * 16, *(stage3[-1] + 2 * 16 + k * 2 * 32 for k in (1, 2, 3))]  # jump 32
    pool = stage4[-1] + (7 - 1) * 32  # the global pool: one 7x7 window at jump 32
    assert stage2 == [15, 31, 47, 63] and stage3 == [79, 111, 143, 175, 207, 239, 271, 303]
    assert stage4 == [335, 399, 463, 527] and pool == 719
    assert units["receptive_field"].tolist() == [7, *stage2, *stage3, *stage4, pool]
    assert units["rf_per_input"].tolist() == pytest.approx([size / 224 for size in units["receptive_field"]])
    # Stage 4, unit 3 is the first where even the corner positions see everything: 7x7 positions
    # centred on 0, 32, ..., 192; (463 - 1) / 2 = 231 reaches from 0 to 231 >= 223 and from 192
    # back to -39 <= 0. Unit 2's 399 reaches only 199 < 223, though 399 is wider than the picture.
    (first,) = units.index[units["first_whole_input"]]
    assert (units.loc[first, "stage"], units.loc[first, "unit"]) == ("stage4", 3)
    row = analysis.first_whole_input(units)
    assert (row["layer"], row["receptive_field"], row["output_side"]) == ("stage4_unit3_relu", 463, 7)
    assert units.loc[first - 1, "rf_per_input"] > 1 and not units.loc[first - 1, "sees_whole_input"]
    stages = analysis.receptive_field_table(ShuffleNetConfig())
    assert stages["first_whole_input"].tolist() == [False, False, False, True, False]
    assert stages.loc[3, "rf_per_input"] == 527 / 224


def test_a_small_input_with_few_units_by_hand():
    # 96 input, units 1/2/1. Stem 7 (24x24 positions, jump 4); stage 2 (one stride-2 unit) 7 + 2 * 4 = 15
    # (12x12, jump 8); stage 3: 15 + 2 * 8 = 31 (6x6, jump 16), then 31 + 2 * 16 = 63; stage 4: 63 + 2 * 16
    # = 95 (3x3, jump 32), one pixel short of the picture. Only the global pool, one 3x3 window at jump 32
    # (95 + 2 * 32 = 159, centred on 32: from 32 - 79 < 0 to 32 + 79 >= 95), sees all of it.
    c = ShuffleNetConfig(input_size=96, blocks=(1, 2, 1))
    units = analysis.receptive_field_table(c, by="unit")
    assert units["receptive_field"].tolist() == [7, 15, 31, 63, 95, 159]
    assert units["output_side"].tolist() == [24, 12, 6, 6, 3, 1]
    assert units["jump"].tolist() == [4, 8, 16, 16, 32, 96]
    assert units["rf_per_input"].iloc[4] == 95 / 96 < 1
    assert units["first_whole_input"].tolist() == [False] * 5 + [True]
    assert analysis.first_whole_input(units)["stage"] == "classifier"
    assert analysis.first_whole_input(analysis.receptive_field_table(c))["stage"] == "classifier"


def test_one_position_that_just_sees_everything():
    # 32 input, units 1/1/1: stage 4 is a single 1x1 position centred on pixel 0 with a field of
    # 7 + 2*4 + 2*8 + 2*16 = 63, which reaches (63 - 1) / 2 = 31 pixels: exactly the last pixel, 31.
    c = ShuffleNetConfig(input_size=32, blocks=(1, 1, 1), scale=0.5)
    stages = analysis.receptive_field_table(c).set_index("stage")
    assert stages.loc["stage4", ["receptive_field", "output_side", "start"]].tolist() == [63, 1, 0.0]
    assert stages["first_whole_input"].tolist() == [False, False, False, True, False]
    assert stages.loc["classifier", "receptive_field"] == 63  # a 1x1 global pool adds nothing
