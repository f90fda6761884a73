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
