import pytest

from shufflenet.naming import LayerName, layer_name, parse_layer_name


@pytest.mark.parametrize(("args", "name", "parsed"), [
    (("stem", "conv"), "stem_conv", LayerName("stem", None, "conv")),
    ((3, "gconv1", 2), "stage3_unit2_gconv1", LayerName("stage3", 2, "gconv1")),
    ((3, "shortcut_pool", 1), "stage3_unit1_shortcut_pool", LayerName("stage3", 1, "shortcut_pool")),
    (("classifier", "fc"), "classifier_fc", LayerName("classifier", None, "fc")),
    ((4, "relu", 12), "stage4_unit12_relu", LayerName("stage4", 12, "relu")),
    (("head", "conv"), "head_conv", LayerName("head", None, "conv")),  # the other families' last 1x1 conv
])
def test_round_trip(args, name, parsed):
    assert layer_name(*args) == name
    assert parse_layer_name(name) == parsed


@pytest.mark.parametrize("bad", ["conv", "stage3_gconv1", "stage3/unit1", "neck_fc", ""])
def test_parse_rejects_foreign_names(bad):
    with pytest.raises(ValueError, match="Not a ShuffleNet layer name"):
        parse_layer_name(bad)


def test_make_rejects_unknown_stage_and_missing_unit():
    with pytest.raises(ValueError, match="Unknown stage"):
        layer_name("neck", "fc")
    with pytest.raises(ValueError, match="needs its unit"):
        layer_name(3, "gconv1")
