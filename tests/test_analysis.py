"""shufflenet.analysis: Table 1 for any configuration, sweeps, comparisons, cost breakdowns and
the channel-shuffle argument of paper Fig. 1."""

from __future__ import annotations

import numpy as np
import pytest

from shufflenet import ShuffleNetConfig, analysis, cost_table, totals
from shufflenet.config import ALLOWED_GROUPS

TABLE1_CONV_MACS = {1: 142_502_976, 2: 140_036_512, 3: 136_500_672, 4: 133_251_776, 8: 136_829_952}
TABLE1_STAGE2 = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
PARAMS_1X = {1: 1_531_936, 2: 1_733_848, 3: 1_865_728, 4: 1_968_344, 8: 2_434_768}


def test_key_figures_of_the_paper_network():
    f = analysis.key_figures(ShuffleNetConfig())
    assert f["conv_macs"] == 136_500_672
    assert f["fc_macs"] == 960_000 and f["macs"] == 137_460_672
    assert f["params"] == 1_865_728
    assert f["model_bytes"] == 4 * (f["params"] + f["non_trainable"])
    assert f["activation_bytes"] == 4 * f["activations"]
    assert f["layers"] == len(cost_table(ShuffleNetConfig()))


def test_sweep_reproduces_table1_and_the_parameter_counts():
    sweep = analysis.sweep_groups(ShuffleNetConfig())
    assert sweep["groups"].tolist() == list(ALLOWED_GROUPS)
    assert dict(zip(sweep["groups"], sweep["conv_macs"])) == TABLE1_CONV_MACS
    assert dict(zip(sweep["groups"], sweep["stage2"])) == TABLE1_STAGE2
    assert (sweep["stage3"] == 2 * sweep["stage2"]).all() and (sweep["stage4"] == 4 * sweep["stage2"]).all()
    assert dict(zip(sweep["groups"], sweep["params"])) == PARAMS_1X
    assert (sweep["fc_macs"] == sweep["stage4"] * 1000).all()


def test_sweep_does_not_depend_on_the_current_groups():
    a = analysis.sweep_groups(ShuffleNetConfig(groups=1, scale=0.5))
    b = analysis.sweep_groups(ShuffleNetConfig(groups=8, scale=0.5))
    assert a.equals(b)


def test_sweep_with_an_explicit_stem_width():
    sweep = analysis.sweep_groups(ShuffleNetConfig(groups=3, scale=1.5, stem_channels=36)).set_index("groups")
    assert sweep.loc[3, "stem"] == 36 and sweep.loc[4, "stem"] == 36  # 36 splits into 3 and 4 groups
    assert sweep.loc[8, "stem"] == ShuffleNetConfig(groups=8, scale=1.5).stem_width  # 36 does not: the rule


def test_table1_by_groups_marks_the_current_row_and_matches_the_paper():
    t = analysis.table1_by_groups(ShuffleNetConfig(groups=4))
    assert t.loc[t["current"], "groups"].tolist() == [4]
    rounded = (t["conv_macs"] / 1e6).round().astype(int).tolist()
    assert rounded == t["paper MFLOPs (1x, 224)"].tolist() == [143, 140, 137, 133, 137]


def test_table1_layout_follows_the_configuration():
    t = analysis.table1_layout(ShuffleNetConfig(groups=8, blocks=(1, 8, 2), input_size=96))
    rows = t.set_index("layer")
    channels = rows["output channels (g = 8)"]
    assert channels["Stage2"] == 384 and channels["Stage4"] == 1536 and channels["FC"] == 1000
    assert rows.loc["Conv1", "output size"] == "48×48" and rows.loc["Stage4", "output size"] == "3×3"
    assert rows.loc["Stage2", "repeat"] == "1" and rows.loc["Stage3", "repeat"] == "1 / 7"
    assert rows.loc["Stage4", "stride"] == "2 / 1"


def test_layer_costs_measures_and_filters():
    c = ShuffleNetConfig()
    macs = analysis.layer_costs(c)
    flops = analysis.layer_costs(c, measure="FLOPs")
    assert (flops["FLOPs"] == 2 * macs["MACs"]).all()
    assert macs["MACs"].sum() == totals(c)["macs"]
    assert analysis.layer_costs(c, include_fc=False)["MACs"].sum() == totals(c)["conv_macs"]
    dw = analysis.layer_costs(c, stages=["stage3"], ops=["dwconv3x3"])
    assert len(dw) == 8 and set(dw["family"]) == {"3x3 depthwise conv"}
    fam = analysis.layer_costs(c, families=["1x1 conv"])
    assert fam["name"].tolist() == ["stage2_unit1_gconv1"]  # the ungrouped first conv (Sec. 3.3)
    with pytest.raises(ValueError, match="measure"):
        analysis.layer_costs(c, measure="watts")


@pytest.mark.parametrize("by", ["stage", "family"])
def test_costs_by_sums_to_the_totals(by):
    c = ShuffleNetConfig(groups=2, scale=0.5)
    t = analysis.costs_by(c, by=by)
    assert t["MACs"].sum() == totals(c)["macs"]
    assert t["params"].sum() == totals(c)["params"]
    assert t["MACs %"].sum() == pytest.approx(100, abs=0.05)
    no_fc = analysis.costs_by(c, by=by, include_fc=False)
    assert no_fc["MACs"].sum() == totals(c)["conv_macs"]


def test_costs_by_family_names_the_chart_families():
    t = analysis.costs_by(ShuffleNetConfig(), by="family").set_index("family")
    assert {"stem conv", "1x1 group conv", "1x1 conv", "3x3 depthwise conv", "fully connected"} <= set(t.index)
    assert t["MACs"].idxmax() == "1x1 group conv"
    with pytest.raises(ValueError, match=r"'stage', 'family', 'op'. Received: by='colour'"):
        analysis.costs_by(ShuffleNetConfig(), by="colour")


def test_stage_summary():
    s = analysis.stage_summary(ShuffleNetConfig(), "FLOPs", include_fc=False).set_index("stage")
    assert s.loc["classifier", "FLOPs"] == 0
    assert s["FLOPs"].sum() == 2 * 136_500_672
    assert s.loc["stage3", "units"] == 8 and s.loc["stage3", "channels"] == 480


def test_layer_costs_carry_memory_traffic_and_intensity_in_macs_per_byte():
    c = ShuffleNetConfig()
    table = cost_table(c)
    for measure in ("MACs", "FLOPs"):  # intensity is MACs per byte whatever the measure
        df = analysis.layer_costs(c, measure=measure)
        assert list(df.columns[-2:]) == ["traffic_bytes", "intensity"]
        assert df["traffic_bytes"].tolist() == table["traffic_bytes"].tolist()
        assert df["intensity"].tolist() == table["intensity"].tolist()
    assert analysis.layer_costs(c)["traffic_bytes"].sum() == totals(c)["traffic_bytes"]


@pytest.mark.parametrize("by", ["stage", "family", "op"])
def test_costs_by_sums_memory_traffic_and_divides_for_intensity(by):
    c = ShuffleNetConfig(groups=8, scale=0.5)
    t = analysis.costs_by(c, by=by, measure="FLOPs")
    assert t["traffic_bytes"].sum() == totals(c)["traffic_bytes"]
    assert t["traffic_bytes %"].sum() == pytest.approx(100, abs=0.05)
    macs = t["FLOPs"] // 2
    assert (t["intensity"] == (macs / t["traffic_bytes"]).where(macs > 0, 0.0)).all()
    assert len(t) == t[by].nunique()


def test_traffic_by_op_shows_what_moves_memory_without_macs():
    c = ShuffleNetConfig()
    ops = analysis.costs_by(c, by="op").set_index("op")
    assert list(ops.index) == analysis.layer_ops(c)  # every op, in model order, none dropped
    # The paper network's 4 + 8 + 4 units have 3 + 7 + 3 = 13 additions, each reading two 28x28x240,
    # 14x14x480 or 7x7x960 tensors and writing one: 3 values per element of the unit's output.
    adds = 3 * (3 * 28 * 28 * 240 + 7 * 14 * 14 * 480 + 3 * 7 * 7 * 960)
    assert ops.loc["add", "traffic_bytes"] == 4 * adds == 16_369_920
    assert ops.loc["add", "MACs"] == 0 and ops.loc["add", "intensity"] == 0.0
    families = analysis.costs_by(c, by="family")
    assert families["family"].iloc[-1] == "other (no MACs)"  # last, with the traffic of every op without MACs
    free = ops.drop(index=["conv3x3", "conv1x1", "gconv1x1", "dwconv3x3", "fc", "batchnorm"])
    assert families.set_index("family").loc["other (no MACs)", "traffic_bytes"] == free["traffic_bytes"].sum()


def test_stage_summary_has_memory_traffic():
    c = ShuffleNetConfig()
    s = analysis.stage_summary(c).set_index("stage")
    assert list(s.columns[-3:]) == ["traffic_bytes", "traffic_bytes %", "intensity"]
    assert s["traffic_bytes"].sum() == totals(c)["traffic_bytes"]
    assert s.loc["stage3", "intensity"] == s.loc["stage3", "MACs"] / s.loc["stage3", "traffic_bytes"]
    # Without the FC layer the classifier is the global pool alone: 7x7x960 read, 960 written.
    no_fc = analysis.stage_summary(c, include_fc=False).set_index("stage")
    assert no_fc.loc["classifier", "traffic_bytes"] == 4 * (7 * 7 * 960 + 960) == 192_000
    assert no_fc.loc["classifier", "intensity"] == 0.0
    # FC: 960 in, 1000 out, 960 x 1000 weights and 1000 biases.
    assert s.loc["classifier", "traffic_bytes"] == 192_000 + 4 * (960 + 1000 + 961_000)
    f = analysis.key_figures(c)
    assert f["traffic_bytes"] == totals(c)["traffic_bytes"]
    assert f["intensity"] == f["macs"] / f["traffic_bytes"]


def test_compare_stages_and_totals():
    a, b = ShuffleNetConfig(groups=3), ShuffleNetConfig(groups=1)
    s = analysis.compare_stages(a, b).set_index("stage")
    assert list(s.index) == ["stem", "stage2", "stage3", "stage4", "classifier", "total"]
    assert s.loc["stage2", "channels A"] == 240 and s.loc["stage2", "channels B"] == 144
    assert s.loc["total", "MACs A"] == 137_460_672 and s.loc["total", "MACs B"] == 143_078_976
    assert (s["Δ MACs"] == s["MACs B"] - s["MACs A"]).all()
    assert s.loc["stem", "MACs B/A"] == 1.0
    t = analysis.compare_totals(a, b).set_index("figure")
    assert t.loc["parameters", "Δ (B - A)"] == 1_531_936 - 1_865_728
    same = analysis.compare_totals(a, a)
    assert (same["Δ (B - A)"] == 0).all() and (same["B/A"] == 1.0).all()


# --- channel shuffle -----------------------------------------------------------------------

def test_shuffle_edges_follow_the_paper_formula():
    g, c = 3, 12
    n = c // g
    e = analysis.shuffle_edges(c, g)
    for k in range(n):
        for j in range(g):
            assert e.loc[k * g + j, "input"] == j * n + k
    assert sorted(e["input"]) == list(range(c))  # a permutation
    assert (e["input_group"] == e["input"] // n).all() and (e["output_group"] == e["output"] // n).all()
    # every next group takes channels from every previous group
    assert (e.groupby("output_group")["input_group"].nunique() == g).all()
    with pytest.raises(ValueError, match="divisible"):
        analysis.shuffle_edges(10, 3)


def test_group_conv_connectivity_is_block_diagonal():
    m = analysis.group_conv_connectivity(6, 4, 2)
    assert m.shape == (4, 6)
    assert m[:2, :3].all() and m[2:, 3:].all() and not m[:2, 3:].any() and not m[2:, :3].any()
    assert analysis.group_conv_connectivity(5, 5, 1).all()
    with pytest.raises(ValueError, match="multiple of groups"):
        analysis.group_conv_connectivity(6, 5, 2)
    with pytest.raises(ValueError, match="groups"):
        analysis.group_conv_connectivity(6, 6, 0)


@pytest.mark.parametrize("g", [2, 3, 4, 8])
def test_fig1_without_shuffle_groups_stay_isolated(g):
    c = g * g * 2
    f = analysis.information_flow(c, g, shuffle=False)
    n = c // g
    assert np.array_equal(f.channels, analysis.group_conv_connectivity(c, c, g))
    assert (f.inputs_seen == n).all()
    assert np.array_equal(f.groups, np.eye(g, dtype=int) * n)
    assert not f.mixes


@pytest.mark.parametrize("g", [2, 3, 4, 8])
def test_fig1_with_shuffle_every_output_sees_every_input(g):
    c = g * g * 2
    f = analysis.information_flow(c, g, shuffle=True)
    assert f.channels.all()
    assert (f.groups == c // g // g).all() and f.mixes
    assert f.shuffled


def test_fig1_needs_at_least_g_channels_per_group():
    f = analysis.information_flow(6, 3, shuffle=True)  # n = 2 < g = 3
    assert not f.mixes
    assert (f.inputs_seen == 4).all()


def test_fig1_matches_a_direct_computation():
    # An independent check: push one-hot inputs through conv -> shuffle -> conv as sets.
    from shufflenet.layers import shuffle_permutation

    c, g = 12, 4
    n = c // g
    perm = shuffle_permutation(c, g)
    f = analysis.information_flow(c, g)
    for i in range(c):
        mid = {m for m in range(c) if m // n == i // n}  # first group conv
        shuffled = {k for k in range(c) if perm[k] in mid}
        out = {o for o in range(c) if any(k // n == o // n for k in shuffled)}  # second group conv
        assert set(np.flatnonzero(f.channels[:, i])) == out


def test_flow_table_and_colouring():
    t = analysis.flow_table(16, 4).set_index("case")
    assert t.loc["without shuffle", "inputs seen per output (max)"] == 4
    assert t.loc["with shuffle", "inputs seen per output (min)"] == 16
    assert t.loc["with shuffle", "every group mixed"] and not t.loc["without shuffle", "every group mixed"]
    colours = analysis.information_flow(6, 2, shuffle=False).by_input_group()
    assert colours[0].tolist() == [1, 1, 1, 0, 0, 0] and colours[5].tolist() == [0, 0, 0, 2, 2, 2]


def test_shuffle_widths():
    assert analysis.shuffle_width_choices(3)[:3] == [3, 6, 9] and analysis.shuffle_width_choices(3)[-1] == 96
    for g in ALLOWED_GROUPS:
        w = analysis.default_shuffle_width(g)
        assert w % g == 0 and w >= g * g and w in analysis.shuffle_width_choices(g)
        assert analysis.information_flow(w, g).mixes or g == 1


def test_analysis_needs_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, shufflenet.analysis as a, shufflenet as s; a.sweep_groups(s.ShuffleNetConfig()); "
            "a.compare_stages(s.ShuffleNetConfig(), s.ShuffleNetConfig(groups=8)); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
