import re

import pytest

from shufflenet import ShuffleNetConfig, diagrams
from shufflenet.diagrams import full_diagram, layer_edges, macro_diagram, micro_diagram


def test_macro_shows_shapes_units_and_macs():
    src = macro_diagram(ShuffleNetConfig(groups=8)).source
    assert "28×28×384" in src and "14×14×768" in src and "7×7×1536" in src
    assert "1 unit stride 2 + 7 units stride 1" in src
    assert "35.00 M MACs" in src  # stage 2 of g=8: 34,997,760


def test_micro_stride2_has_real_channels_and_groups():
    src = micro_diagram(ShuffleNetConfig(groups=3), stage=2, stride=2).source
    assert "24 → 60" in src  # ungrouped first 1x1 of stage 2 (Sec. 3.3), bottleneck 240 / 4
    assert "not grouped" in src
    assert "60 → 216" in src and "g = 3" in src
    assert "24 + 216 = 240" in src
    assert "AVG Pool" in src


def test_micro_stride1_uses_add_and_shuffle():
    src = micro_diagram(ShuffleNetConfig(groups=8), stage=3, stride=1).source
    assert "768 → 192" in src and "192 → 768" in src
    assert "Channel shuffle, g = 8" in src and "Add" in src


def test_micro_g1_has_no_shuffle():
    assert "shuffle" not in micro_diagram(ShuffleNetConfig(groups=1), stage=3, stride=1).source.lower()


def test_micro_errors_are_helpful():
    with pytest.raises(ValueError, match="no stride-1 unit"):
        micro_diagram(ShuffleNetConfig(blocks=(1, 1, 1)), stage=3, stride=1)
    with pytest.raises(ValueError, match="must be one of 2, 3, 4"):
        micro_diagram(ShuffleNetConfig(), stage=5)


def test_full_graph_has_every_layer_and_edge():
    c = ShuffleNetConfig(groups=3, blocks=(2, 2, 2), input_size=64)
    src = full_diagram(c).source
    from shufflenet import cost_table

    for name in cost_table(c)["name"]:
        assert re.search(rf"\b{name}\b", src)
    assert src.count("subgraph cluster_") == 1 + 6 + 1
    # shortcut edges exist for stride 1 (identity into add) and stride 2 (pooled into concat)
    edges = set(layer_edges(c))
    assert ("stage2_unit2_relu", "stage3_unit1_shortcut_pad") in edges
    assert ("stage3_unit1_relu", "stage3_unit2_add") in edges
    assert ("stage3_unit1_shortcut_pool", "stage3_unit1_concat") in edges


def test_layer_edges_match_keras_graph():
    from shufflenet import build_model

    c = ShuffleNetConfig(groups=2, blocks=(2, 1, 2), input_size=32)
    m = build_model(c)
    keras_edges = set()
    for layer in m.layers[1:]:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        for t in inputs:
            keras_edges.add((t._keras_history.operation.name, layer.name))
    assert keras_edges == set(layer_edges(c))


def test_full_graph_one_stage():
    src = full_diagram(ShuffleNetConfig(), stage=4).source
    assert "stage4_unit4_relu" in src and "stage3_unit2_gconv1" not in src
    with pytest.raises(ValueError, match="`stage` must be one of"):
        full_diagram(ShuffleNetConfig(), stage=7)


def test_svg_export_or_clear_message(monkeypatch):
    g = macro_diagram(ShuffleNetConfig())
    if diagrams.dot_available():
        assert diagrams.to_svg(g).lstrip().startswith(("<?xml", "<svg"))
    monkeypatch.setattr(diagrams.shutil, "which", lambda name: None)
    with pytest.raises(diagrams.DiagramRenderError, match="apt-get install graphviz"):
        diagrams.to_svg(g)


# --- drawn from the layer plan --------------------------------------------------------------

def node_attrs(src: str, name: str) -> dict[str, str]:
    """The attributes of node `name` in DOT source (quoted values unquoted)."""
    m = re.search(rf"^\s*{re.escape(name)} \[(.*?)\]$", src, re.M | re.S)
    assert m, f"no node {name!r}"
    attrs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|\S+)', m.group(1), re.S)
    return {k: v[1:-1] if v.startswith('"') else v for k, v in attrs}


def dot_nodes(src: str) -> set[str]:
    return set(re.findall(r"^\s*(\w+) \[", src, re.M)) - {"node", "edge", "graph"}


def test_micro_nodes_are_the_units_layers():
    from shufflenet.plan import fold_pads, unit_layers

    c = ShuffleNetConfig(groups=4, blocks=(2, 3, 2))
    for stride, unit in ((2, 1), (1, 2)):
        src = micro_diagram(c, stage=3, stride=stride).source
        layers = fold_pads(unit_layers(c, 3, unit))
        bn_relu = {spec.name for spec in layers if spec.part == "relu1"}  # drawn with bn1 as "BN + ReLU"
        want = ({spec.name for spec in layers} - bn_relu) | {"in", "out"}
        assert dot_nodes(src) == want
        assert node_attrs(src, f"stage3_unit{unit}_bn1")["label"] == "BN + ReLU"
        assert not any("pad" in name for name in dot_nodes(src))  # merged into the conv / pool that reads it
    # The unit's output ReLU follows the add, not a BN: it stays a node of its own.
    assert node_attrs(micro_diagram(c, 3, 1).source, "stage3_unit2_relu")["label"] == "ReLU"


def test_micro_without_shuffle_says_it_is_the_ablation():
    src = micro_diagram(ShuffleNetConfig(groups=3, shuffle=False), stage=3, stride=1).source
    assert "Channel shuffle, g" not in src and "_shuffle" not in src
    assert "channel shuffle off (ablation" in src
    assert "no shuffle" in src  # on the edge where the shuffle would be
    with_shuffle = micro_diagram(ShuffleNetConfig(groups=3), stage=3, stride=1).source
    assert "Channel shuffle, g = 3" in with_shuffle and "ablation" not in with_shuffle


def test_no_shuffle_full_graph_and_macro():
    c = ShuffleNetConfig(groups=3, shuffle=False, blocks=(1, 2, 1), input_size=64)
    assert "shuffle" not in full_diagram(c).source
    assert "no shuffle (ablation)" in macro_diagram(c).source


def test_full_graph_units_range():
    c = ShuffleNetConfig()
    src = full_diagram(c, stage=3, units=(2, 3)).source
    assert src.count("subgraph cluster_") == 2
    assert "stage3_unit3_relu" in src and "stage3_unit4_gconv1 " not in src and "stage3_unit1_gconv1 " not in src
    assert node_attrs(src, "stage3_unit1_relu") == {"label": "stage3_unit1_relu", "shape": "plaintext", "style": ""}
    assert full_diagram(c, stage=3, units=4).source.count("subgraph cluster_") == 1
    for bad in ((0, 2), (3, 2), (1, 9), "x"):
        with pytest.raises(ValueError, match=r"within 1..8"):
            full_diagram(c, stage=3, units=bad)
    with pytest.raises(ValueError, match="give `stage`"):
        full_diagram(c, units=(1, 2))


# --- heat maps ------------------------------------------------------------------------------

def _rgb_luminance(color: str) -> float:
    return sum(w * v for w, v in zip((0.2126, 0.7152, 0.0722), diagrams._rgb(color)))


def test_viridis_is_sequential():
    assert diagrams.viridis(0) == "#440154" and diagrams.viridis(1) == "#fde725"
    lum = [_rgb_luminance(diagrams.viridis(i / 20)) for i in range(21)]
    assert lum == sorted(lum) and len(set(lum)) == 21  # light grows with the value: readable without hue
    assert diagrams.text_color("#440154") == "#ffffff" and diagrams.text_color("#fde725") == "#000000"


COST_COLUMN = {"macs": "macs", "params": "params", "traffic_bytes": "traffic_bytes"}


@pytest.mark.parametrize("metric", ["macs", "params", "activation_bytes", "traffic_bytes"])
def test_full_graph_nodes_show_the_cost_tables_value(metric):
    from shufflenet import cost_table

    c = ShuffleNetConfig(groups=8)
    table = cost_table(c).set_index("name")
    src = full_diagram(c, stage=2, metric=metric).source
    m = diagrams.METRICS[metric]
    stage2 = table[table["stage"] == "stage2"]
    assert len(stage2) > 40
    for name, row in stage2.iterrows():
        value = int(row["activations"]) * 4 if metric == "activation_bytes" else int(row[COST_COLUMN[metric]])
        label = node_attrs(src, name)["label"]
        assert label.split("\n")[-1] == diagrams.format_value(value, m), name
        if value:
            assert node_attrs(src, name)["fillcolor"] not in (diagrams.ZERO_COLOR, diagrams.MISSING_COLOR)
        else:
            assert node_attrs(src, name)["fillcolor"] == diagrams.ZERO_COLOR
    assert "legend" in dot_nodes(src) and f"Colour: {m.label}" in node_attrs(src, "legend")["label"]


def test_heat_colours_follow_the_values():
    c = ShuffleNetConfig()
    src = full_diagram(c, stage=3, units=2, metric="macs").source
    gconv1 = node_attrs(src, "stage3_unit2_gconv1")["fillcolor"]  # 3,763,200 MACs, the most
    dwconv = node_attrs(src, "stage3_unit2_dwconv")["fillcolor"]  # 211,680 MACs, the least
    assert gconv1 == diagrams.VIRIDIS[-1] and dwconv == diagrams.VIRIDIS[0]
    default = full_diagram(c, stage=3, units=2).source
    assert node_attrs(default, "stage3_unit2_gconv1")["fillcolor"] == diagrams.COLORS["gconv"]
    assert "legend" not in dot_nodes(default)


def test_macro_heat_values_are_stage_sums():
    from shufflenet import cost_table

    c = ShuffleNetConfig(groups=3)
    table = cost_table(c)
    src = macro_diagram(c, metric="traffic_bytes").source
    for part in ("stem", "stage2", "stage3", "stage4", "classifier"):
        total = int(table.loc[table["stage"] == part, "traffic_bytes"].sum())
        assert diagrams.format_value(total, diagrams.METRICS["traffic_bytes"]) in node_attrs(src, part)["label"]
    macs = macro_diagram(c, metric="macs").source
    assert "63,786,240 MACs" in node_attrs(macs, "stage3")["label"]  # exact, where the default says 63.79 M
    assert node_attrs(macs, "stage3")["fillcolor"] == diagrams.VIRIDIS[-1]
    assert node_attrs(macs, "input")["fillcolor"] == diagrams.COLORS["input"]  # no cost: not on the scale
    assert node_attrs(macro_diagram(c).source, "stage3")["fillcolor"] == diagrams.COLORS["stage3"]


def test_legend_says_log_scale_when_values_span_orders_of_magnitude():
    c = ShuffleNetConfig()
    params = node_attrs(macro_diagram(c, metric="params").source, "legend")["label"]  # 696 .. 961,000
    assert "log scale" in params and "3.1" in params and "low 696 params" in params and "high 961,000 params" in params
    macs = node_attrs(macro_diagram(c, metric="macs").source, "legend")["label"]  # 960,000 .. 63,786,240: 66x
    assert "linear scale" in macs and "log scale" not in macs
    assert "low → high" in macs and "MACs per stage" in macs
    full = node_attrs(full_diagram(c, stage=3, units=2, metric="macs").source, "legend")["label"]
    assert "white: 0 MACs" in full  # BN, ReLU, shuffle, add


def test_latency_heat_map():
    c = ShuffleNetConfig(groups=2, blocks=(1, 1, 1), input_size=32)
    names = [r["name"] for r in diagrams.layer_records(c)]
    times = {name: 0.01 * (i + 1) for i, name in enumerate(names)}
    src = full_diagram(c, stage=2, metric="latency_ms", latency=times).source
    assert node_attrs(src, "stage2_unit1_gconv1")["label"].endswith(f"\n{times['stage2_unit1_gconv1']:.3f} ms")
    macro = macro_diagram(c, metric="latency_ms", latency=times).source
    stage2 = sum(v for k, v in times.items() if k.startswith("stage2"))
    assert f"{stage2:,.3f} ms" in node_attrs(macro, "stage2")["label"]
    # A layer without a measurement is grey and says so; never a zero.
    partial = {k: v for k, v in times.items() if k != "stage2_unit1_dwconv"}
    src = full_diagram(c, stage=2, metric="latency_ms", latency=partial).source
    dw = node_attrs(src, "stage2_unit1_dwconv")
    assert dw["fillcolor"] == diagrams.MISSING_COLOR and "not measured" in dw["label"] and "0.000" not in dw["label"]
    assert "not measured" in node_attrs(macro_diagram(c, metric="latency_ms", latency=partial).source,
                                        "stage2")["label"]
    assert "not measured" in node_attrs(src, "legend")["label"]


@pytest.mark.parametrize(("latency", "message"), [
    (None, "needs measured times"),
    ({"stage9_unit1_conv": 1.0}, "does not have"),
    ({"stem_conv": -1.0}, "finite milliseconds"),
    ({"stem_conv": float("nan")}, "finite milliseconds"),
    ({"stem_conv": "fast"}, "finite milliseconds"),
    (42, "must map layer names"),
])
def test_latency_errors_are_helpful(latency, message):
    with pytest.raises(ValueError, match=message):
        macro_diagram(ShuffleNetConfig(), metric="latency_ms", latency=latency)


def test_bad_metric_and_rankdir():
    with pytest.raises(ValueError, match="`metric` must be 'default' or one of macs, params"):
        macro_diagram(ShuffleNetConfig(), metric="flops")
    with pytest.raises(ValueError, match=r"'TB' .* or 'LR'"):
        full_diagram(ShuffleNetConfig(), stage=2, rankdir="BT")


# --- layout and files -----------------------------------------------------------------------

def test_left_to_right_layout():
    c = ShuffleNetConfig()
    for graph in (macro_diagram(c, rankdir="LR"), micro_diagram(c, 3, 1, rankdir="LR"),
                  full_diagram(c, stage=3, units=(1, 2), metric="params", rankdir="LR")):
        assert re.search(r"\brankdir=LR\b", graph.source)
    assert re.search(r"\brankdir=TB\b", macro_diagram(c).source)
    full = full_diagram(c, stage=3, units=(1, 2), rankdir="LR").source
    # Each unit is a row: the edges between units do not set ranks.
    assert re.search(r"stage3_unit1_relu -> stage3_unit2_gconv1 \[constraint=false\]", full)
    assert re.search(r"stage3_unit2_gconv1 -> stage3_unit2_bn1\n", full)
    assert "<BR/>" in node_attrs(macro_diagram(c, metric="macs", rankdir="LR").source, "legend")["label"]


@pytest.mark.skipif(not diagrams.dot_available(), reason="needs Graphviz's dot")
@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_png_pdf_svg_files(fmt):
    data = diagrams.render(macro_diagram(ShuffleNetConfig(), metric="macs", rankdir="LR"), fmt)
    if fmt == "svg":
        text = data.decode()
        assert "<svg" in text and diagrams.viridis(1) in text  # the colouring travels with the file
    else:
        assert data.startswith(diagrams.MAGIC[fmt])
    assert diagrams.render(macro_diagram(ShuffleNetConfig()).source, fmt)[:5] == data[:5]  # DOT text works too


def test_png_pdf_need_dot(monkeypatch):
    monkeypatch.setattr(diagrams.shutil, "which", lambda name: None)
    for fmt in ("png", "pdf"):
        with pytest.raises(diagrams.DiagramRenderError, match=f"{fmt.upper()} export needs Graphviz's `dot`.*apt-get"):
            diagrams.render(macro_diagram(ShuffleNetConfig()), fmt)
    with pytest.raises(ValueError, match="`fmt` must be one of svg, png, pdf"):
        diagrams.render(macro_diagram(ShuffleNetConfig()), "gif")
