import dataclasses
import math

import pytest

from shufflenet import ShuffleNetConfig
from shufflenet.config import ALLOWED_GROUPS, FIELDS, SPECS, STAGE2_BASE_WIDTH


def test_defaults_are_the_papers():
    c = ShuffleNetConfig()
    assert (c.groups, c.blocks, c.reduction, c.scale, c.input_size, c.channels, c.num_classes) == (
        3, (4, 8, 4), 0.25, 1.0, 224, 3, 1000)


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("groups", 5, "one of 1, 2, 3, 4, 8"),
    ("groups", 0, "Received: groups=0"),
    ("groups", "3", "Received: groups='3'"),
    ("groups", True, "groups=True"),
    ("blocks", (4, 8), "three whole numbers"),
    ("blocks", "484", "three whole numbers"),
    ("blocks", (4, 0, 4), "blocks[stage3]"),
    ("blocks", (4, 8, 17), "from 1 to 16"),
    ("blocks", (4, 8.5, 4), "whole number"),
    ("reduction", 0.01, "from 0.05 to 1.0"),
    ("reduction", float("nan"), "reduction=nan"),
    ("reduction", "x", "must be a number"),
    ("scale", 3.5, "from 0.25 to 3.0"),
    ("scale", math.inf, "scale=inf"),
    ("input_size", 100, "multiple of 32"),
    ("input_size", 100_000, "from 32 to 512"),
    ("input_size", 16, "from 32 to 512"),
    ("channels", 2, "1 (grayscale) or 3"),
    ("num_classes", 1, "from 2 to 100000"),
    ("num_classes", 10**9, "from 2 to 100000"),
])
def test_invalid_values_name_field_allowed_and_received(field, value, needle):
    with pytest.raises(ValueError) as info:
        ShuffleNetConfig(**{field: value})
    message = str(info.value)
    assert needle in message
    assert field.split("[")[0] in message


def test_integral_floats_are_accepted_and_normalised():
    c = ShuffleNetConfig(groups=8.0, blocks=[2.0, 3, 4], input_size=64.0, num_classes=10.0)
    assert c.groups == 8 and isinstance(c.groups, int)
    assert c.blocks == (2, 3, 4) and c.input_size == 64 and c.num_classes == 10


def test_frozen_and_hashable():
    c = ShuffleNetConfig()
    with pytest.raises(AttributeError):
        c.groups = 8
    assert hash(c) == hash(ShuffleNetConfig(blocks=[4, 8, 4]))


def test_dict_round_trip_and_unknown_fields():
    c = ShuffleNetConfig(groups=8, blocks=(2, 3, 1), reduction=0.3, scale=0.5, input_size=64, channels=1,
                         num_classes=10)
    assert ShuffleNetConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match=r"Unknown configuration field.*width"):
        ShuffleNetConfig.from_dict({"width": 2})
    with pytest.raises(ValueError, match="mapping"):
        ShuffleNetConfig.from_dict([1, 2])


@pytest.mark.parametrize("g", [1, 2, 3, 4, 8])
def test_table1_widths_at_1x(g):
    c = ShuffleNetConfig(groups=g)
    w2 = STAGE2_BASE_WIDTH[g]
    assert c.stem_width == 24
    assert c.stage_widths == (w2, 2 * w2, 4 * w2)
    assert {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}[g] == w2


def test_megvii_half_width_lists():
    assert ShuffleNetConfig(groups=3, scale=0.5).stem_width == 12
    assert ShuffleNetConfig(groups=3, scale=0.5).stage_widths == (120, 240, 480)
    assert ShuffleNetConfig(groups=8, scale=0.5).stem_width == 16
    assert ShuffleNetConfig(groups=8, scale=0.5).stage_widths == (192, 384, 768)
    assert ShuffleNetConfig(groups=3, scale=1.5).stage_widths == (360, 720, 1440)
    assert ShuffleNetConfig(groups=3, scale=2.0).stage_widths == (480, 960, 1920)
    assert ShuffleNetConfig(groups=3, scale=2.0).stem_width == 48


@pytest.mark.parametrize("g", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("s", [0.25, 0.5, 0.75, 1.0, 1.3, 2.0, 3.0])
def test_widths_divide_into_groups(g, s):
    c = ShuffleNetConfig(groups=g, scale=s)
    assert c.stem_width % g == 0
    for w in c.stage_widths:
        assert w % (4 * g) == 0
        assert c.bottleneck_channels(w) % g == 0


def test_bottleneck_rule_is_a_quarter_of_unit_output_and_rounds_to_groups():
    c = ShuffleNetConfig(groups=3)
    assert c.bottleneck_channels(240) == 60  # not (240 - 24) / 4 = 54
    assert ShuffleNetConfig(groups=8, reduction=0.3).bottleneck_channels(384) == 112  # 115.2 -> 112
    assert ShuffleNetConfig(groups=8, reduction=0.05).bottleneck_channels(24) == 8  # at least g


def test_stage2_first_pointwise_is_not_grouped():
    c = ShuffleNetConfig(groups=8)
    assert c.first_pointwise_groups(2, 1) == 1
    assert c.first_pointwise_groups(2, 2) == 8
    assert c.first_pointwise_groups(3, 1) == 8


def test_checkpoint_compatibility_fields():
    c = ShuffleNetConfig(groups=3, scale=1.5, stem_channels=24, fc_bias=False, shuffle_layout="transposed")
    assert c.stem_width == 24 and c.stage_widths == (360, 720, 1440)
    assert ShuffleNetConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="multiple of groups=8"):
        ShuffleNetConfig(groups=8, stem_channels=12)
    with pytest.raises(ValueError, match="fc_bias"):
        ShuffleNetConfig(fc_bias="no")
    with pytest.raises(ValueError, match="paper, transposed"):
        ShuffleNetConfig(shuffle_layout="megvii")


# --- the declaration of the fields a person sets ---------------------------------------------

def test_fields_declare_every_user_facing_field_once():
    assert list(FIELDS) == ["groups", "blocks", "reduction", "scale", "input_size", "channels", "num_classes",
                            "shuffle"]
    paper = ShuffleNetConfig()
    for name, spec in FIELDS.items():
        assert spec.name == name and spec.default == getattr(paper, name)
        assert spec.label and spec.help.endswith(".")
    assert FIELDS["groups"].choices == ALLOWED_GROUPS
    assert FIELDS["shuffle"].kind is bool and FIELDS["shuffle"].label == "Channel shuffle"
    with pytest.raises(TypeError):
        FIELDS["groups"] = FIELDS["scale"]  # read-only: every surface sees the same limits


@pytest.mark.parametrize("name", ["blocks", "reduction", "scale", "input_size", "num_classes"])
def test_validation_takes_its_limits_from_the_declaration(name):
    spec = FIELDS[name]
    kind = (lambda v: [v] * 3) if spec.count > 1 else (lambda v: v)
    for inside in (spec.low, spec.high):
        ShuffleNetConfig(**{name: kind(inside)})
    for outside in (spec.low - spec.step, spec.high + spec.step):
        with pytest.raises(ValueError, match=f"from {spec.low} to {spec.high}"):
            ShuffleNetConfig(**{name: kind(outside)})


def test_the_declared_step_is_a_grid_of_the_controls_except_for_the_input_size():
    assert ShuffleNetConfig(scale=1.3).scale == 1.3  # off the 0.25 grid of the slider, still a network
    with pytest.raises(ValueError, match="multiple of 32"):
        ShuffleNetConfig(input_size=FIELDS["input_size"].low + FIELDS["input_size"].step // 2)


def test_allowed_values_in_words():
    assert FIELDS["groups"].allowed == "one of 1, 2, 3, 4, 8"
    assert FIELDS["channels"].allowed == "1 (grayscale) or 3 (RGB)"
    assert FIELDS["blocks"].allowed == "3 whole numbers, each from 1 to 16"
    assert FIELDS["input_size"].allowed == "a multiple of 32 from 32 to 512"
    assert FIELDS["num_classes"].allowed == "a whole number from 2 to 100000"


def test_shuffle_switch():
    c = ShuffleNetConfig(groups=8, scale=0.5, shuffle=False)
    assert c.label == "ShuffleNet 0.5x (g=8, no shuffle)"
    assert c.stage_widths == ShuffleNetConfig(groups=8, scale=0.5).stage_widths  # the same network
    assert ShuffleNetConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match=r"`shuffle` must be true or false. Received: shuffle=0"):
        ShuffleNetConfig(shuffle=0)


def test_every_field_declares_what_it_may_hold_and_is_checked_by_it():
    assert list(SPECS) == [f.name for f in dataclasses.fields(ShuffleNetConfig)]
    for name, spec in SPECS.items():
        declared = spec.kind is bool or bool(spec.choices) or (spec.low is not None and spec.high is not None)
        assert declared and spec.name == name, name
    assert [name for name, spec in SPECS.items() if not spec.settable] == ["stem_channels", "fc_bias",
                                                                           "shuffle_layout"]
    stem = SPECS["stem_channels"]
    top = stem.high - stem.high % ShuffleNetConfig().groups  # the largest multiple of the paper's g
    wide = ShuffleNetConfig(scale=3.0)  # stage 2 wider than the top of the range
    assert wide.replace(stem_channels=float(top)).stem_channels == top
    with pytest.raises(ValueError, match=rf"`stem_channels` must be from {stem.low} to {stem.high}\. "
                                         r"Received: stem_channels=1000"):
        ShuffleNetConfig(stem_channels=1000)
    with pytest.raises(ValueError, match=r"`stem_channels` must be a whole number from 4 to 512\. "
                                         r"Received: stem_channels='24' \(type str\)"):
        ShuffleNetConfig(stem_channels="24")
    with pytest.raises(ValueError, match=r"`shuffle_layout` must be one of paper, transposed\. "
                                         r"Received: shuffle_layout=1 \(type int\)"):
        ShuffleNetConfig(shuffle_layout=1)


def test_a_stem_as_wide_as_stage_2_is_refused_with_the_width():
    with pytest.raises(ValueError, match=r"`stem_channels` must be less than stage 2's width \(36 at g=1, 0.25x\)"):
        ShuffleNetConfig(groups=1, scale=0.25, stem_channels=48)
    assert ShuffleNetConfig(groups=1, scale=0.25, stem_channels=24).stem_width == 24
