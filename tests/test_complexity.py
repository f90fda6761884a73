import numpy as np
import pandas as pd
import pytest

from shufflenet import ShuffleNetConfig, build_model, cost_table, stage_table, totals, unit_table
from shufflenet.complexity import keras_cost_table, model_bytes, op_family

# The paper's Table 1's complexity row, exact conv-only MACs; FC MACs; trainable params.
TABLE1_CONV_MACS = {1: 142_502_976, 2: 140_036_512, 3: 136_500_672, 4: 133_251_776, 8: 136_829_952}
TABLE1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}
FC_MACS = {1: 576_000, 2: 800_000, 3: 960_000, 4: 1_088_000, 8: 1_536_000}
PARAMS = {1: 1_531_936, 2: 1_733_848, 3: 1_865_728, 4: 1_968_344, 8: 2_434_768}


@pytest.mark.parametrize("g", [1, 2, 3, 4, 8])
def test_table1_exact(g):
    t = totals(ShuffleNetConfig(groups=g))
    assert t["conv_macs"] == TABLE1_CONV_MACS[g]
    assert round(t["conv_macs"] / 1e6) == TABLE1_MFLOPS[g]
    assert t["fc_macs"] == FC_MACS[g]
    assert t["params"] == PARAMS[g]
    assert t["macs"] == t["conv_macs"] + t["fc_macs"]


def test_table1_stage_shapes_and_channels():
    st = stage_table(ShuffleNetConfig(groups=8)).set_index("stage")
    assert st.loc["stem", "output_shape"] == (56, 56, 24)
    assert st.loc["stage2", "output_shape"] == (28, 28, 384)
    assert st.loc["stage3", "output_shape"] == (14, 14, 768)
    assert st.loc["stage4", "output_shape"] == (7, 7, 1536)
    assert st.loc["classifier", "output_shape"] == (1000,)
    assert st["units"].tolist() == [0, 4, 8, 4, 0]


def test_free_ops_cost_no_macs_and_bn_counts_gamma_beta():
    df = cost_table(ShuffleNetConfig())
    free = df[df["op"].isin(["batchnorm", "relu", "shuffle", "pad", "maxpool", "avgpool", "add", "concat",
                             "global_pool"])]
    assert (free["macs"] == 0).all()
    bn = df[df["op"] == "batchnorm"]
    assert (bn["params"] == 2 * bn["output_shape"].map(lambda s: s[-1])).all()


def test_tables_sum_to_totals():
    c = ShuffleNetConfig(groups=4, blocks=(3, 5, 2), scale=0.75, input_size=160)
    t = totals(c)
    for table in (cost_table(c), unit_table(c), stage_table(c)):
        assert int(table["macs"].sum()) == t["macs"]
        assert int(table["params"].sum()) == t["params"]
        assert int(table["traffic_bytes"].sum()) == t["traffic_bytes"]
    assert model_bytes(c) == 4 * (t["params"] + t["non_trainable"])


def test_op_families_cover_all_macs():
    df = cost_table(ShuffleNetConfig())
    fam = df.assign(family=df["op"].map(op_family)).groupby("family")["macs"].sum()
    assert fam["1x1 group conv"] > fam["3x3 depthwise conv"] > 0
    assert fam["fully connected"] == 960_000
    assert fam["stem conv"] == 112 * 112 * 27 * 24
    assert int(fam.sum()) == totals(ShuffleNetConfig())["macs"]


GRID = [
    ShuffleNetConfig(groups=g, scale=s, blocks=b, reduction=r, input_size=n, channels=ch, num_classes=k)
    for g, s, b, r, n, ch, k in [
        (1, 1.0, (4, 8, 4), 0.25, 224, 3, 1000),
        (2, 0.5, (1, 1, 1), 0.25, 64, 1, 10),
        (3, 1.0, (4, 8, 4), 0.25, 224, 3, 1000),
        (3, 1.5, (2, 3, 2), 0.4, 96, 3, 100),
        (4, 0.25, (3, 1, 2), 0.1, 32, 1, 2),
        (4, 2.0, (1, 2, 1), 1.0, 64, 3, 10),
        (8, 1.0, (4, 8, 4), 0.25, 224, 3, 1000),
        (8, 0.75, (2, 2, 5), 0.3, 128, 1, 10),
        (1, 3.0, (1, 1, 1), 0.05, 32, 3, 10),
    ]
]


@pytest.mark.parametrize("config", GRID, ids=lambda c: f"g{c.groups}_s{c.scale}_{c.input_size}")
def test_config_counter_agrees_with_keras_walk(config):
    model = build_model(config)
    analytic = cost_table(config).set_index("name").sort_index()
    walked = keras_cost_table(model).set_index("name").sort_index()
    assert {"traffic_bytes", "intensity"} <= set(walked.columns)  # memory traffic is compared too
    pd.testing.assert_frame_equal(analytic, walked, check_exact=True)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert totals(config)["params"] == trainable
    assert totals(config)["params"] + totals(config)["non_trainable"] == model.count_params()


def test_fc_without_bias_and_explicit_stem_are_counted():
    c = ShuffleNetConfig(groups=8, scale=1.5, stem_channels=24, fc_bias=False, input_size=64, num_classes=10)
    model = build_model(c)
    pd.testing.assert_frame_equal(cost_table(c).set_index("name").sort_index(),
                                  keras_cost_table(model).set_index("name").sort_index())
    assert totals(c)["params"] == totals(c.replace(fc_bias=True))["params"] - 10


# --- memory traffic and arithmetic intensity ------------------------------------------------

def _row(config, name):
    df = cost_table(config).set_index("name")
    return df.loc[name]


def test_memory_traffic_of_a_1x1_group_conv_by_hand():
    # Paper network (g = 3): stage2 unit2's first 1x1 group conv, 28x28x240 -> 28x28x60 in 3 groups.
    row = _row(ShuffleNetConfig(), "stage2_unit2_gconv1")
    inputs = 28 * 28 * 240  # 188,160 values read
    output = 28 * 28 * 60  # 47,040 values written
    weights = 240 * 60 // 3  # 4,800: each output channel reads the 80 channels of its group
    assert row["params"] == weights and row["non_trainable"] == 0
    assert row["traffic_bytes"] == 4 * (inputs + output + weights) == 4 * 240_000 == 960_000
    macs = 28 * 28 * 240 * 60 // 3  # 3,763,200
    assert row["macs"] == macs
    assert row["intensity"] == macs / 960_000 == 3.92


def test_memory_traffic_of_a_depthwise_conv_by_hand():
    c = ShuffleNetConfig()
    # Stride 1 (stage2 unit2): 28x28x60 -> 28x28x60, one 3x3 filter per channel, padding done by the conv.
    row = _row(c, "stage2_unit2_dwconv")
    values = 28 * 28 * 60  # 47,040 read and as many written
    assert row["traffic_bytes"] == 4 * (values + values + 9 * 60) == 4 * 94_620 == 378_480
    assert row["macs"] == 28 * 28 * 9 * 60 == 423_360
    assert row["intensity"] == 423_360 / 378_480  # 1.12 MACs per byte: 9 MACs per ~2 values moved
    # Stride 2 (stage2 unit1): it reads the padded 58x58x60 output of its pad layer, writes 28x28x60.
    row = _row(c, "stage2_unit1_dwconv")
    assert row["traffic_bytes"] == 4 * (58 * 58 * 60 + 28 * 28 * 60 + 9 * 60) == 4 * 249_420 == 997_680


def test_memory_traffic_of_a_whole_stride2_unit_by_hand():
    # Paper network (g = 3), stage3 unit1: 28x28x240 -> 14x14x480, bottleneck 120, branch 480 - 240 = 240.
    c = ShuffleNetConfig()
    values = {  # layer: inputs + output + weights (params + BN statistics), in float32 values
        "gconv1": 28 * 28 * 240 + 28 * 28 * 120 + 240 * 120 // 3,  # 188,160 + 94,080 + 9,600 = 291,840
        "bn1": 2 * 28 * 28 * 120 + 4 * 120,  # gamma, beta, mean, variance: 188,640
        "relu1": 2 * 28 * 28 * 120,  # 188,160
        "shuffle": 2 * 28 * 28 * 120,  # 188,160
        "dwpad": 28 * 28 * 120 + 30 * 30 * 120,  # 94,080 + 108,000 = 202,080
        "dwconv": 30 * 30 * 120 + 14 * 14 * 120 + 9 * 120,  # 108,000 + 23,520 + 1,080 = 132,600
        "bn2": 2 * 14 * 14 * 120 + 4 * 120,  # 47,520
        "gconv2": 14 * 14 * 120 + 14 * 14 * 240 + 120 * 240 // 3,  # 23,520 + 47,040 + 9,600 = 80,160
        "bn3": 2 * 14 * 14 * 240 + 4 * 240,  # 95,040
        "shortcut_pad": 28 * 28 * 240 + 30 * 30 * 240,  # 188,160 + 216,000 = 404,160
        "shortcut_pool": 30 * 30 * 240 + 14 * 14 * 240,  # 216,000 + 47,040 = 263,040
        "concat": (14 * 14 * 240 + 14 * 14 * 240) + 14 * 14 * 480,  # both inputs + output: 188,160
        "relu": 2 * 14 * 14 * 480,  # 188,160
    }
    assert sum(values.values()) == 2_457_720
    df = cost_table(c)
    unit = df[(df["stage"] == "stage3") & (df["unit"] == 1)].set_index("part")
    assert unit["traffic_bytes"].to_dict() == {part: 4 * v for part, v in values.items()}
    macs = 28 * 28 * 240 * 120 // 3 + 14 * 14 * 9 * 120 + 14 * 14 * 120 * 240 // 3  # 7,526,400 + 211,680 + 1,881,600
    row = unit_table(c).set_index(["stage", "unit"]).loc[("stage3", 1)]
    assert row["traffic_bytes"] == 4 * 2_457_720 == 9_830_880
    assert row["macs"] == macs == 9_619_680
    assert row["intensity"] == 9_619_680 / 9_830_880


def test_intensity_is_macs_per_byte_and_zero_without_macs():
    df = cost_table(ShuffleNetConfig(groups=8, scale=0.5))
    free = df["macs"] == 0
    assert free.any() and (df.loc[free, "intensity"] == 0.0).all()
    assert (df.loc[~free, "intensity"] == df.loc[~free, "macs"] / df.loc[~free, "traffic_bytes"]).all()
    assert (df["traffic_bytes"] > 0).all()  # every layer moves memory, even those without MACs
    st = stage_table(ShuffleNetConfig())
    assert (st["intensity"] == st["macs"] / st["traffic_bytes"]).all()


def test_existing_columns_are_unchanged_and_the_new_ones_come_last():
    df = cost_table(ShuffleNetConfig())
    assert list(df.columns[-2:]) == ["traffic_bytes", "intensity"]
    assert df["traffic_bytes"].dtype == "int64" and df["intensity"].dtype == "float64"
    assert list(unit_table(ShuffleNetConfig()).columns[:7]) == [
        "stage", "unit", "params", "macs", "activations", "output_shape", "layers"]
    assert list(stage_table(ShuffleNetConfig()).columns[:8]) == [
        "stage", "output_shape", "units", "params", "macs", "activations", "layers", "channels"]


def test_more_groups_move_more_memory_for_about_the_same_macs():
    # The point of the columns: at the paper's widths, larger g means wider layers, so more bytes moved
    # per MAC, although Table 1's MACs stay within 7 % of each other.
    t = {g: totals(ShuffleNetConfig(groups=g)) for g in (1, 2, 3, 4, 8)}
    traffic = [t[g]["traffic_bytes"] for g in sorted(t)]
    intensity = [t[g]["macs"] / t[g]["traffic_bytes"] for g in sorted(t)]
    assert traffic == sorted(traffic) and len(set(traffic)) == 5
    assert intensity == sorted(intensity, reverse=True)
    assert t[8]["traffic_bytes"] > 2 * t[1]["traffic_bytes"]


@pytest.mark.slow
def test_one_mac_counter_serves_the_mobilenet_baseline():
    """`keras_macs` counts any Keras CNN by `keras_cost_table`'s rules: the MobileNet(alpha=0.5)
    baseline at 224 comes out at the MobileNet paper's 149 M multiply-adds, and a ShuffleNet
    model at exactly its cost table's total."""
    from shufflenet.benchmark import mobilenet_reference
    from shufflenet.complexity import keras_macs

    assert round(keras_macs(mobilenet_reference(224)) / 1e6) == 149
    model = build_model(ShuffleNetConfig(groups=3, blocks=(1, 2, 1), scale=0.5, input_size=64, num_classes=10))
    assert keras_macs(model) == int(keras_cost_table(model)["macs"].sum())
    with pytest.raises(ValueError, match="does not know layer"):
        keras_cost_table(mobilenet_reference(96))  # the strict counter is for ShuffleNet models only
