"""The other families (ShuffleNet v2, MobileNet v1, MobileNet v2) against their papers, the
authors' released tables and Keras's own MobileNets, and walked by the generic machinery."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from shufflenet import ShuffleNetConfig, diagrams
from shufflenet.cli import main
from shufflenet.complexity import cost_table, keras_cost_table, keras_totals, stage_table, totals
from shufflenet.families import (
    FAMILIES,
    MobileNetV1Config,
    MobileNetV2Config,
    ShuffleNetV2Config,
    family_config,
    family_of,
)
from shufflenet.families.mobilenet_v2 import BOTTLENECKS, make_divisible
from shufflenet.naming import parse_layer_name
from shufflenet.plan import OPS, layer_plan
from shufflenet.receptive import receptive_fields

OTHERS = [name for name in FAMILIES if name != "shufflenet-v1"]


def _weights_without_bn(config) -> int:
    """Trainable parameters of the convolutions and the FC layer, the BN scales and shifts left out."""
    df = cost_table(config)
    return int(df.loc[df.op != "batchnorm", "params"].sum())


# --- the published figures ------------------------------------------------------------------

# Howard et al. 2017, Table 6 (width multiplier, 224 px; its 1.0 row is Table 8's "1.0 MobileNet-224"):
# alpha -> (million Mult-Adds, million parameters). The Mult-Adds include the FC layer (the paper's
# Table 2 gives the FC 0.18 % of them); both are rounded to the digits printed.
MOBILENET_V1_TABLE6 = {1.0: (569, 4.2), 0.75: (325, 2.6), 0.5: (149, 1.3), 0.25: (41, 0.5)}


@pytest.mark.parametrize("alpha", list(MOBILENET_V1_TABLE6))
def test_mobilenet_v1_matches_paper_tables_6_and_8(alpha):
    t = totals(MobileNetV1Config(scale=alpha))
    macs, params = MOBILENET_V1_TABLE6[alpha]
    assert round(t["macs"] / 1e6) == macs
    assert round(t["params"] / 1e6, 1) == params


# Howard et al. 2017, Table 7 (resolution, alpha 1.0): side -> million Mult-Adds. These rows are
# 569 M x (side/224)^2 rounded, the FC scaled too; the exact counts are within 1 M of them and round
# to them at 192 and 128 px (160 px: 290.68 M, 291 in the authors' TF-slim model table).
@pytest.mark.parametrize(("side", "macs"), [(192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolutions_are_near_paper_table_7(side, macs):
    exact = totals(MobileNetV1Config(input_size=side))["macs"] / 1e6
    assert abs(exact - macs) < 1
    if side != 160:
        assert round(exact) == macs


def test_mobilenet_v2_matches_paper_table_4():
    """Sandler et al. 2018, Table 4: MobileNetV2 300 M MAdds, 3.4 M parameters. Both are the
    exact counts truncated (the FC included in the MAdds, the BN scales and shifts left out of the
    parameters), as the authors' own model table below prints them: 300.77 M and 3.47 M."""
    config = MobileNetV2Config()
    t = totals(config)
    assert math.floor(t["macs"] / 1e6) == 300
    assert math.floor(_weights_without_bn(config) / 1e5) / 10 == 3.4
    assert round(t["params"] / 1e6, 1) == 3.5  # with the BN scales and shifts


# The authors' TF-slim model table (tensorflow/models, research/slim/nets/mobilenet/README.md), for
# 1001 classes (ImageNet plus background): (alpha, side) -> (MACs in M, truncated; params in M, two
# decimals, BN scales and shifts left out).
SLIM_MOBILENET_V2 = {
    (1.4, 224): (582, 6.06), (1.3, 224): (509, 5.34), (1.0, 224): (300, 3.47), (1.0, 192): (221, 3.47),
    (1.0, 160): (154, 3.47), (1.0, 128): (99, 3.47), (1.0, 96): (56, 3.47), (0.75, 224): (209, 2.61),
    (0.75, 192): (153, 2.61), (0.75, 160): (107, 2.61), (0.75, 128): (69, 2.61), (0.75, 96): (39, 2.61),
    (0.5, 224): (97, 1.95), (0.5, 192): (71, 1.95), (0.5, 160): (50, 1.95), (0.5, 128): (32, 1.95),
    (0.5, 96): (18, 1.95), (0.35, 224): (59, 1.66), (0.35, 192): (43, 1.66), (0.35, 160): (30, 1.66),
    (0.35, 128): (20, 1.66), (0.35, 96): (11, 1.66),
}


@pytest.mark.parametrize(("alpha", "side"), list(SLIM_MOBILENET_V2))
def test_mobilenet_v2_matches_the_authors_model_table(alpha, side):
    config = MobileNetV2Config(scale=alpha, input_size=side, num_classes=1001)
    macs, params = SLIM_MOBILENET_V2[(alpha, side)]
    assert math.floor(totals(config)["macs"] / 1e6) == macs
    assert round(_weights_without_bn(config) / 1e6, 2) == params


# Ma et al. 2018, Table 5: width -> (FLOPs in M, FC included; weights in M), FLOPs meaning
# multiply-adds, rounded to the digits printed. The weights are the trainable parameters.
SHUFFLENET_V2_TABLE5 = {0.5: (41, 1.4), 1.0: (146, 2.3), 1.5: (299, 3.5), 2.0: (591, 7.4)}


@pytest.mark.parametrize("scale", list(SHUFFLENET_V2_TABLE5))
def test_shufflenet_v2_matches_paper_table_5(scale):
    t = totals(ShuffleNetV2Config(scale=scale))
    flops, weights = SHUFFLENET_V2_TABLE5[scale]
    assert round(t["params"] / 1e6, 1) == weights
    if scale == 0.5:
        # The one figure that does not round to the paper's: 40.48 M against 41 M (the paper's own
        # counting convention is not stated; counting the global pool's 50,176 additions too would
        # give 40.53 M). Held within 1 M, and to its exact value so a change shows.
        assert abs(t["macs"] / 1e6 - flops) < 1
        assert t["macs"] == 40_476_448
    else:
        assert round(t["macs"] / 1e6) == flops


def test_shufflenet_v2_widths_are_table_5():
    for scale, widths in {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024),
                          2.0: (244, 488, 976, 2048)}.items():
        st = stage_table(ShuffleNetV2Config(scale=scale)).set_index("stage")
        assert [int(st.loc[p].channels) for p in ("stage2", "stage3", "stage4", "head")] == list(widths)
        assert [int(st.loc[p].units) for p in ("stage2", "stage3", "stage4")] == [4, 8, 4]
        assert st.loc["stem"].output_shape == (56, 56, 24)


def test_mobilenet_v2_stages_are_the_rows_of_table_2():
    st = stage_table(MobileNetV2Config()).set_index("stage")
    for stage, (_t, c, n, _s) in enumerate(BOTTLENECKS, start=1):
        assert int(st.loc[f"stage{stage}"].units) == n
        assert st.loc[f"stage{stage}"].output_shape[-1] == c
    assert [st.loc[f"stage{k}"].output_shape[0] for k in range(1, 8)] == [112, 56, 28, 14, 14, 7, 7]
    assert st.loc["head"].output_shape == (7, 7, 1280)


def test_make_divisible_is_the_reference_rounding():
    assert make_divisible(16 * 0.35) == 8  # never below the divisor
    assert make_divisible(24 * 0.75) == 24  # 16 would lose more than 10 % of 18
    assert make_divisible(32 * 1.4) == 48  # 44.8 rounds to the nearest multiple of 8
    assert make_divisible(96 * 0.35) == 32
    widths = [stage_table(MobileNetV2Config(scale=a)).set_index("stage").loc["head"].output_shape[-1]
              for a in (0.35, 1.0, 1.4)]
    assert widths == [1280, 1280, 1792]  # the last conv is only ever widened (paper Sec. 6.1)


# --- configurations ---------------------------------------------------------------------------

def test_bad_family_configurations_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"`family` must be one of shufflenet-v1, shufflenet-v2, mobilenet-v1"):
        family_config("resnet")
    with pytest.raises(ValueError, match=r"must be one of 0.5, 1, 1.5, 2 .*Received: scale=0.75"):
        family_config("shufflenet-v2", 0.75)
    with pytest.raises(ValueError, match="multiple of 32"):
        MobileNetV1Config(input_size=100)
    with pytest.raises(ValueError, match="channels"):
        MobileNetV2Config(channels=2)
    with pytest.raises(ValueError, match="scale"):
        MobileNetV1Config(scale=True)


def test_family_configs_are_values_and_v1_is_unchanged():
    a, b = family_config("mobilenet-v2", 1.0), MobileNetV2Config(scale=1)
    assert a == b and hash(a) == hash(b) and layer_plan(a) is layer_plan(b)
    assert MobileNetV1Config() != MobileNetV2Config()  # same fields, other networks
    assert a.to_dict() == {"family": "mobilenet-v2", "scale": 1.0, "input_size": 224, "channels": 3,
                           "num_classes": 1000}
    assert family_of(a) == "mobilenet-v2" and family_of(ShuffleNetConfig()) == "shufflenet-v1"
    assert family_config("shufflenet-v1", 0.5, groups=8) == ShuffleNetConfig(scale=0.5, groups=8)
    assert "family" not in ShuffleNetConfig().to_dict()  # v1's manifests and URLs stay as they were


# --- the generic machinery walks every plan -----------------------------------------------------

@pytest.mark.parametrize("family", OTHERS)
def test_plans_are_well_formed(family):
    config = family_config(family)
    plan = layer_plan(config)
    seen = {"image"}
    for spec in plan:
        assert spec.op in OPS
        assert set(spec.inputs) <= seen, spec.name  # reads only layers before it
        parsed = parse_layer_name(spec.name)
        assert (parsed.stage, parsed.unit, parsed.part) == (spec.stage, spec.unit, spec.part)
        seen.add(spec.name)
    assert len(seen) == len(plan) + 1  # names are unique
    assert plan[-1].op == "fc" and plan[-1].output_shape == (1000,)


def test_shufflenet_v2_unit_splits_concatenates_and_shuffles():
    plan = {s.name: s for s in layer_plan(ShuffleNetV2Config())}
    left, right = plan["stage3_unit2_split_left"], plan["stage3_unit2_split_right"]
    assert (left.offset, left.filters, right.offset, right.filters) == (0, 116, 116, 116)
    assert plan["stage3_unit2_concat"].inputs == ("stage3_unit2_split_left", "stage3_unit2_conv2_relu")
    assert plan["stage3_unit2_shuffle"].groups == 2
    # stride 2: the left branch keeps the input's channels, the right one writes the rest
    assert plan["stage2_unit1_left_conv"].filters == 24 and plan["stage2_unit1_conv2"].filters == 92
    assert plan["stage2_unit1_conv1"].filters == 58  # the bottleneck: half the unit's output


def test_mobilenet_v2_adds_only_where_stride_and_width_allow():
    plan = layer_plan(MobileNetV2Config())
    adds = {(s.stage, s.unit) for s in plan if s.op == "add"}
    expected = {(f"stage{k}", u) for k, (_t, _c, n, _s) in enumerate(BOTTLENECKS, start=1) for u in range(2, n + 1)}
    assert adds == expected
    assert not any(s.part == "expand" for s in plan if s.stage == "stage1")  # t = 1: no expansion conv
    assert not any(s.op.startswith("relu") for s in plan if s.part.startswith("project"))  # linear bottleneck


@pytest.mark.parametrize("family", OTHERS)
def test_receptive_fields_and_diagrams(family):
    config = family_config(family)
    fields = receptive_fields(config)
    assert list(fields) == [s.name for s in layer_plan(config)]
    assert fields["classifier_pool"].size > config.input_size
    macro = diagrams.macro_diagram(config).source
    for part in stage_table(config)["stage"]:
        assert f"\t{part} [" in macro
    full = diagrams.full_diagram(config).source
    assert all(f"\t\t{s.name} [" in full for s in layer_plan(config))
    assert "legend" in diagrams.macro_diagram(config, metric="traffic_bytes").source
    micro = diagrams.micro_diagram(config, stage=3, stride=2).source
    assert "stride 2" in micro
    with pytest.raises(ValueError, match="`stage` must be one of"):
        diagrams.full_diagram(config, stage=9)


def test_shufflenet_v2_micro_diagram_draws_the_split():
    src = diagrams.micro_diagram(ShuffleNetV2Config(), stage=3, stride=1).source
    assert "Channel split" in src and "Concat" in src and "Channel shuffle, g = 2" in src


# --- the command line -------------------------------------------------------------------------

@pytest.mark.parametrize("family", OTHERS)
def test_summary_json_of_every_family(family, capsys):
    assert main(["summary", "--family", family, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = totals(family_config(family))
    assert out["family"] == family
    assert out["totals"] == {"conv_macs": t["conv_macs"], "fc_macs": t["fc_macs"], "macs": t["macs"],
                             "params": t["params"]}
    assert out["totals"]["macs"] == out["totals"]["conv_macs"] + out["totals"]["fc_macs"]
    assert sum(s["macs"] for s in out["stages"]) == t["macs"]


def test_summary_scale_and_text(capsys):
    assert main(["summary", "--family", "shufflenet-v2", "--scale", "2"]) == 0
    out = capsys.readouterr().out
    assert "ShuffleNet v2 2x" in out and "7x7x2048" in out and f"{totals(ShuffleNetV2Config(scale=2))['macs']:,}" in out


def test_summary_default_family_is_v1(capsys):
    main(["summary", "--format", "json"])
    default = capsys.readouterr().out
    main(["summary", "--family", "shufflenet-v1", "--format", "json"])
    assert capsys.readouterr().out == default
    assert "family" not in json.loads(default)


@pytest.mark.parametrize(("argv", "needle"), [
    (["--family", "resnet"], "choose from 'shufflenet-v1', 'shufflenet-v2', 'mobilenet-v1', 'mobilenet-v2'"),
    (["--family", "mobilenet-v1", "--scale", "0.3"], "must be one of 0.25, 0.5, 0.75, 1"),
    (["--family", "mobilenet-v2", "--groups", "8"], "--groups applies to shufflenet-v1 only"),
    (["--family", "shufflenet-v2", "--no-shuffle"], "--no-shuffle applies to shufflenet-v1 only"),
])
def test_summary_bad_family_arguments(argv, needle, capsys):
    try:
        code = main(["summary", *argv])
    except SystemExit as exc:  # argparse's own errors (a choice not allowed) exit while parsing
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


# --- the built Keras models ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("family", OTHERS)
def test_built_model_agrees_with_the_plan(family):
    from shufflenet.model import build_model

    config = family_config(family, input_size=96, num_classes=10)
    model = build_model(config)
    pd.testing.assert_frame_equal(cost_table(config).set_index("name").sort_index(),
                                  keras_cost_table(model).set_index("name").sort_index(), check_exact=True)
    t = totals(config)
    assert model.count_params() == t["params"] + t["non_trainable"]
    assert model.name == config.model_name
    out = model(np.random.default_rng(0).random((2, 96, 96, 3), dtype=np.float32))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "application"), [("mobilenet-v1", "MobileNet"), ("mobilenet-v2", "MobileNetV2")])
def test_mobilenets_equal_keras_applications(family, application):
    """Keras's own MobileNets (random weights, nothing downloaded) have exactly the plan's weights
    (BN statistics included, as `count_params` counts them) and the plan's multiply-adds."""
    import keras

    from shufflenet.model import build_model

    config = family_config(family, 1.0)
    reference = getattr(keras.applications, application)(weights=None, alpha=1.0)
    t = totals(config)
    assert reference.count_params() == t["params"] + t["non_trainable"]
    assert build_model(config).count_params() == reference.count_params()
    assert keras_totals(reference)["macs"] == t["macs"]


@pytest.mark.slow
def test_shufflenet_v2_saves_and_reloads_in_safe_mode(tmp_path):
    import keras

    from shufflenet.model import build_model

    config = ShuffleNetV2Config(scale=0.5, input_size=64, num_classes=10)
    model = build_model(config)
    path = tmp_path / "v2.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-7)


# --- two networks of any families side by side ------------------------------------------------

def test_compare_networks_of_two_families():
    from shufflenet.analysis import key_figures
    from shufflenet.families.side_by_side import FIGURES, compare_networks, like, ratios

    a = ShuffleNetConfig(groups=8, input_size=64, num_classes=10)
    b = like(a, "shufflenet-v2", 1.0)
    assert (b.input_size, b.num_classes) == (64, 10)
    df = compare_networks(a, b).set_index("network")
    for name, config in (("A", a), ("B", b)):
        assert {k: df.loc[name, k] for k in FIGURES} == {k: key_figures(config)[k] for k in FIGURES}
    assert df.loc["B", "family"] == "shufflenet-v2" and df.loc["A", "family"] == "shufflenet-v1"
    r = ratios(a, b).loc[0]
    assert r["macs"] == pytest.approx(key_figures(b)["macs"] / key_figures(a)["macs"])
    assert df.loc["A", "intensity"] == pytest.approx(df.loc["A", "macs"] / df.loc["A", "traffic_bytes"])
    with pytest.raises(ValueError, match="must be one of"):
        like(a, "mobilenet-v2", 0.6)


@pytest.mark.slow
@pytest.mark.parametrize("family", OTHERS)
def test_folded_inference_graph_and_tflite_export(family):
    """The BN-folded graph computes what the model computes (ShuffleNet v2's shuffles after the
    concat stay shuffles, `plan.fuse_shuffle`), so the TFLite export's self-check passes."""
    from shufflenet import export
    from shufflenet.model import build_model
    from shufflenet.optimize import inference_model

    config = family_config(family, 0.5 if family != "mobilenet-v2" else 0.35, input_size=64, num_classes=10)
    model = build_model(config)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # statistics other than the initial ones, so the folding shows
        if type(layer).__name__ == "BatchNormalization":
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.1, shape), rng.normal(0, 0.1, shape),
                               rng.uniform(0.5, 1.5, shape)])
    x = rng.random((2, 64, 64, 3), dtype=np.float32)
    want = np.asarray(model(x, training=False))
    for pointwise in ("einsum", "native"):
        np.testing.assert_allclose(np.asarray(inference_model(model, config, pointwise)(x)), want, rtol=1e-4,
                                   atol=1e-6)
    assert export.tflite_bytes(model, config)[4:8] == b"TFL3"
