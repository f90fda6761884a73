import numpy as np
import pandas as pd
import pytest

from shufflenet import ShuffleNetConfig, build_model, cost_table, stage_table, totals, unit_table
from shufflenet.complexity import keras_cost_table, model_bytes, op_family

# REFERENCE.md: paper Table 1's complexity row, exact conv-only MACs; FC MACs; trainable params.
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
    pd.testing.assert_frame_equal(analytic, walked)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert totals(config)["params"] == trainable
    assert totals(config)["params"] + totals(config)["non_trainable"] == model.count_params()


def test_fc_without_bias_and_explicit_stem_are_counted():
    c = ShuffleNetConfig(groups=8, scale=1.5, stem_channels=24, fc_bias=False, input_size=64, num_classes=10)
    model = build_model(c)
    pd.testing.assert_frame_equal(cost_table(c).set_index("name").sort_index(),
                                  keras_cost_table(model).set_index("name").sort_index())
    assert totals(c)["params"] == totals(c.replace(fc_bias=True))["params"] - 10
