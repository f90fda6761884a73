"""The Architecture view through `AppTest`: the diagrams follow the network, the heat-map metric
recolours the whole-network diagram and the layer graph (with a legend and exact values), the
layout toggle turns them left to right, latency without a measurement says how to get one, and
the deferred DOT / SVG / PNG / PDF downloads carry all of it under `export.file_name`'s names.

With Graphviz's `dot` the view shows pictures laid out on the server (their SVG is read back
here); the `no_dot` fixture makes the app fall back to browser-side `st.graphviz_chart`, whose
DOT source the tests read."""

from __future__ import annotations

import base64
import re

import pytest
from apptest_support import charts, make_app, no_exception
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from shufflenet import ShuffleNetConfig, cost_table, diagrams

HAVE_DOT = diagrams.dot_available()


def shown(at: AppTest) -> list[str]:
    """Every diagram on the page, in order: the SVG of a picture, or the DOT of a graphviz chart."""
    pictures = [img.value[0] for img in at.image]
    if pictures:
        assert not charts(at, "graphviz_chart")
        prefix = "data:image/svg+xml;base64,"
        assert all(p.startswith(prefix) for p in pictures)
        return [base64.b64decode(p[len(prefix):]).decode("utf-8") for p in pictures]
    return [c.proto.spec for c in charts(at, "graphviz_chart")]


def fills(dot: str) -> dict[str, str]:
    """Node name -> fill colour, from DOT source."""
    return dict(re.findall(r"^\s*(\w+) \[[^\]]*?fillcolor=\"(#[0-9a-f]{6})\"", dot, re.M | re.S))


def label(dot: str, node: str) -> str:
    m = re.search(rf'^\s*{node} \[label="(.*?)"', dot, re.M | re.S)
    assert m, f"no node {node!r}"
    return m.group(1)


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """file name -> the deferred download's callable, for every download button of the last run."""
    seen: dict = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        seen[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


# --- the diagrams follow the network --------------------------------------------------------

def test_architecture_diagrams_follow_groups():
    at = make_app(view="architecture")
    no_exception(at)
    before = shown(at)
    assert len(before) == 4  # macro, stride-2 unit, stride-1 unit, layers of a stage
    assert "g = 3" in before[0] and "240" in before[0]
    at.selectbox(key="groups").set_value(8).run()
    after = shown(at)
    assert "g = 8" in after[0] and "384" in after[0]
    assert all(a != b for a, b in zip(before, after))
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download DOT") == 4
    from shufflenet.diagrams import dot_available

    assert labels.count("Download SVG") == (4 if dot_available() else 0)


@pytest.mark.skipif(not HAVE_DOT, reason="needs Graphviz's dot")
def test_diagrams_are_pictures_laid_out_on_the_server():
    # Laying the diagrams out in the browser took seconds per change of g: with `dot` they are pictures.
    at = make_app(view="architecture")
    no_exception(at)
    assert len(at.image) == 4 and not charts(at, "graphviz_chart")
    svg = shown(at)
    assert all(s.lstrip().startswith(("<?xml", "<svg")) for s in svg)
    assert "<script" not in " ".join(svg).lower()  # shown as <img>, which runs no script anyway
    assert next(img.proto.imgs[0].alt for img in at.image).startswith("The network's stem")


def test_diagrams_without_dot_are_laid_out_by_the_browser(no_dot):
    at = make_app(view="architecture")
    no_exception(at)
    assert len(charts(at, "graphviz_chart")) == 4 and not at.image
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download DOT"] * 4
    assert any("`apt-get install graphviz`" in c.value for c in at.caption)


def test_svg_export_renders_the_same_diagram():
    from explorer import cache
    from shufflenet.diagrams import DiagramRenderError, dot_available

    config = ShuffleNetConfig(groups=8)
    if not dot_available():
        with pytest.raises(DiagramRenderError, match="apt-get install graphviz"):
            cache.diagram_svg(config, "macro")
        return
    svg = cache.diagram_svg(config, "micro", 3, 2)  # plain call: it runs outside a script run
    assert "<svg" in svg and "g = 8" in svg


def test_architecture_single_unit_stage_has_no_stride1_diagram():
    at = make_app(view="architecture", blocks="4,1,4")
    at.selectbox(key="arch_stage").set_value(3).run()
    no_exception(at)
    assert len(shown(at)) == 3
    assert any("single unit" in i.value for i in at.info)


def test_no_shuffle_unit_says_it_is_the_ablation(no_dot):
    at = make_app(view="architecture", groups="3", shuffle="0")
    no_exception(at)
    macro, stride2, stride1, _ = shown(at)
    for unit in (stride2, stride1):
        assert "Channel shuffle, g" not in unit and "channel shuffle off (ablation" in unit
    assert "no shuffle (ablation)" in macro


# --- heat maps ------------------------------------------------------------------------------

def test_colour_by_changes_the_node_colours_in_the_dot(no_dot):
    at = make_app(view="architecture")
    no_exception(at)
    assert at.selectbox(key="arch_metric").value == "default"
    assert at.selectbox(key="arch_metric").options == ["Default (stage and op)", "MACs", "Parameters",
                                                      "Activation memory", "Memory traffic", "Latency"]
    default = shown(at)
    assert fills(default[0])["stage3"] == diagrams.COLORS["stage3"] and "legend" not in default[0]
    at.selectbox(key="arch_metric").set_value("macs").run()
    no_exception(at)
    macs = shown(at)
    at.selectbox(key="arch_metric").set_value("params").run()
    params = shown(at)
    for i in (0, 3):  # the whole network and the layer graph change colour...
        assert fills(macs[i]) != fills(default[i]) and fills(params[i]) != fills(macs[i])
        assert "legend [label=<" in macs[i] and "legend [label=<" in params[i]
    assert fills(macs[0])["stage3"] == diagrams.VIRIDIS[-1]  # stage 3 has the most MACs
    assert macs[1:3] == default[1:3] == params[1:3]  # ...the units keep the paper's colours
    assert "Colour: MACs per stage" in macs[0] and "Colour: params per layer" in params[3]
    assert any("Heat map of params" in c.value for c in at.caption)


@pytest.mark.parametrize("metric", ["macs", "params", "activation_bytes", "traffic_bytes"])
def test_node_values_equal_the_cost_table(no_dot, metric):
    at = make_app(view="architecture", groups="8")
    at.selectbox(key="arch_metric").set_value(metric).run()
    no_exception(at)
    assert not at.warning
    macro, *_, full = shown(at)
    table = cost_table(ShuffleNetConfig(groups=8))
    column = "activations" if metric == "activation_bytes" else metric
    times = 4 if metric == "activation_bytes" else 1
    m = diagrams.METRICS[metric]
    for name in ("stage2_unit1_gconv1", "stage2_unit2_dwconv", "stage2_unit2_add"):
        value = int(table.set_index("name").loc[name, column]) * times
        assert label(full, name).split("\n")[-1] == diagrams.format_value(value, m)
    stage3 = int(table.loc[table["stage"] == "stage3", column].sum()) * times
    assert diagrams.format_value(stage3, m) in label(macro, "stage3")


@pytest.mark.skipif(not HAVE_DOT, reason="needs Graphviz's dot")
def test_heat_map_pictures_carry_the_colours():
    at = make_app(view="architecture")
    at.selectbox(key="arch_metric").set_value("macs").run()
    no_exception(at)
    macro, *_ = shown(at)
    assert f'fill="{diagrams.VIRIDIS[-1]}"' in macro and "Colour: MACs per stage" in macro
    assert "63,786,240 MACs" in macro  # stage 3, exact


def test_left_to_right_sets_rankdir(no_dot):
    at = make_app(view="architecture")
    assert all(re.search(r"\brankdir=TB\b", d) for d in shown(at))
    at.toggle(key="arch_lr").set_value(True).run()
    no_exception(at)
    macro, stride2, stride1, full = shown(at)
    assert re.search(r"\brankdir=LR\b", macro) and re.search(r"\brankdir=LR\b", full)
    assert re.search(r"\brankdir=TB\b", stride2) and re.search(r"\brankdir=TB\b", stride1)


def test_latency_without_a_measurement_says_how_to_get_one(no_dot):
    from explorer import cache

    at = make_app(view="architecture", groups="4", blocks="2,3,2")
    assert cache.layer_latency(ShuffleNetConfig(groups=4, blocks=(2, 3, 2))) is None
    at.selectbox(key="arch_metric").set_value("latency_ms").run()
    no_exception(at)
    (info,) = [i.value for i in at.info]
    assert "No per-layer latency has been measured" in info and "Measure per-layer latency" in info
    assert at.button(key="arch_measure_latency").label == "Measure per-layer latency"
    macro, *_, full = shown(at)
    assert " ms" not in macro + full and "legend" not in macro  # default colours, never made-up zeros
    assert fills(macro)["stage3"] == diagrams.COLORS["stage3"]


def test_latency_measurement_colours_the_diagrams(no_dot):
    from explorer import cache

    config = ShuffleNetConfig(groups=2, blocks=(1, 2, 1), scale=0.5, input_size=32, channels=1, num_classes=10)
    at = make_app(view="architecture", task="fashion-mnist", groups="2", blocks="1,2,1")
    at.selectbox(key="arch_metric").set_value("latency_ms").run()
    builds = cache.WORK_DONE["layer_latency"]
    at.button(key="arch_measure_latency").click().run()
    no_exception(at)
    assert cache.WORK_DONE["layer_latency"] == builds + 1
    times = dict(cache.layer_latency(config))
    assert set(times) == set(cost_table(config)["name"]) and all(t > 0 for t in times.values())
    assert not at.info and any("timed alone" in c.value for c in at.caption)
    macro, *_, full = shown(at)
    assert "Colour: latency per stage" in macro and "Colour: latency per layer" in full
    assert label(full, "stage2_unit1_gconv1").endswith(f"{times['stage2_unit1_gconv1']:,.3f} ms")
    assert at.button(key="arch_measure_latency").label == "Measure again"


def test_a_metric_the_cost_table_lacks_keeps_the_default_colours(no_dot, monkeypatch):
    # A cost table without `traffic_bytes` (an older library) must not break the view.
    monkeypatch.setattr(diagrams, "cost_table", lambda config: cost_table(config).drop(columns="traffic_bytes"))
    at = make_app(view="architecture")
    at.selectbox(key="arch_metric").set_value("traffic_bytes").run()
    no_exception(at)
    (warning,) = [w.value for w in at.warning]
    assert "default colours" in warning and "traffic_bytes" in warning
    assert "legend" not in shown(at)[0]


# --- the layer graph's units and the downloads ----------------------------------------------

def test_units_range_of_the_layer_graph(no_dot):
    at = make_app(view="architecture")
    at.selectbox(key="arch_full_stage").set_value("stage3").run()
    no_exception(at)
    assert at.slider(key="arch_units_stage3_8").value == (1, 2)
    assert shown(at)[3].count("subgraph cluster_") == 2
    at.slider(key="arch_units_stage3_8").set_value((3, 8)).run()
    full = shown(at)[3]
    assert full.count("subgraph cluster_") == 6 and "stage3_unit2_relu [label=stage3_unit2_relu shape=plaintext" in full


@pytest.mark.skipif(not HAVE_DOT, reason="needs Graphviz's dot")
def test_downloads_are_deferred_named_and_coloured(downloads):
    at = make_app(view="architecture")
    at.selectbox(key="arch_metric").set_value("macs").run()
    at.toggle(key="arch_lr").set_value(True).run()
    at.selectbox(key="arch_full_stage").set_value("stage3").run()
    downloads.clear()
    at.slider(key="arch_units_stage3_8").set_value((1, 8)).run()
    no_exception(at)
    assert all(b.proto.ignore_rerun and b.proto.HasField("deferred_file_id") for b in at.get("download_button"))
    names = set(downloads)
    for ext in ("dot", "svg", "png", "pdf"):
        assert {f"shufflenet-1x-g3-macro-macs-lr.{ext}", f"shufflenet-1x-g3-stage3-stride2.{ext}",
                f"shufflenet-1x-g3-stage3-stride1.{ext}", f"shufflenet-1x-g3-stage3-layers-macs-lr.{ext}"} <= names
    dot = downloads["shufflenet-1x-g3-stage3-layers-macs-lr.dot"]()
    assert "rankdir=LR" in dot and "legend [label=<" in dot and diagrams.VIRIDIS[-1] in dot
    assert "stage3_unit8_relu" in dot
    assert downloads["shufflenet-1x-g3-macro-macs-lr.png"]().startswith(b"\x89PNG\r\n\x1a\n")
    assert downloads["shufflenet-1x-g3-stage3-layers-macs-lr.pdf"]().startswith(b"%PDF-")
    svg = downloads["shufflenet-1x-g3-macro-macs-lr.svg"]().decode()
    assert diagrams.VIRIDIS[-1] in svg and "Colour: MACs" in svg and "per stage" in svg  # two lines, left to right
    # Default colouring, top to bottom: no suffixes.
    at.selectbox(key="arch_metric").set_value("default").run()
    at.toggle(key="arch_lr").set_value(False).run()
    assert "shufflenet-1x-g3-stage3-layers.pdf" in downloads and "shufflenet-1x-g3-macro.svg" in downloads
