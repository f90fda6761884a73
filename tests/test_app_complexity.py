"""The Complexity view through `AppTest`: memory traffic and arithmetic intensity in its tables, its
charts and its CSV download, following the controls."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
from apptest_support import make_app, no_exception, table_with

from shufflenet import ShuffleNetConfig, analysis, cost_table, totals

CHART_KEYS = ["cx_stage_cost", "cx_stage_params", "cx_family_cost", "cx_family_params",
              "cx_stage_traffic", "cx_stage_intensity", "cx_op_traffic", "cx_op_intensity"]


def _values(array) -> list:
    """A Plotly array from figure JSON: a plain list, or a typed array as base64."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


def figures(at) -> dict[str, dict]:
    """Figure JSON of every Plotly chart, by widget key (the element id ends with it)."""
    out = {}
    for chart in at.get("plotly_chart"):
        key = chart.proto.id.rsplit("-", 1)[-1]
        out[key] = json.loads(chart.proto.spec)
    return out


def bars(figure) -> dict:
    trace = figure["data"][0]
    return dict(zip(_values(trace["x"]), _values(trace["y"])))


@pytest.fixture(scope="module")
def paper_view():
    at = make_app(view="complexity")
    no_exception(at)
    return at


def test_the_view_shows_traffic_and_intensity_charts(paper_view):
    figs = figures(paper_view)
    assert list(figs) == CHART_KEYS
    c = ShuffleNetConfig()
    by_stage = analysis.costs_by(c, "stage").set_index("stage")
    assert bars(figs["cx_stage_traffic"]) == by_stage["traffic_bytes"].to_dict()
    assert bars(figs["cx_stage_intensity"]) == pytest.approx(by_stage["intensity"].to_dict())
    by_op = analysis.costs_by(c, "op").set_index("op")
    assert bars(figs["cx_op_traffic"]) == by_op["traffic_bytes"].to_dict()
    assert bars(figs["cx_op_traffic"])["add"] == 16_369_920  # hand-computed in test_analysis
    traffic = figs["cx_stage_traffic"]
    assert traffic["layout"]["title"]["text"] == "Memory traffic by stage"
    assert traffic["layout"]["yaxis"]["ticksuffix"] == "B"  # kB / MB / GB on the axis
    assert "bytes" in traffic["data"][0]["hovertemplate"]
    assert figs["cx_op_intensity"]["layout"]["yaxis"]["title"]["text"] == "MACs per byte"


def test_the_tables_have_readable_memory_columns(paper_view):
    stages = table_with(paper_view, "units")
    assert int(stages["traffic_bytes"].sum()) == totals(ShuffleNetConfig())["traffic_bytes"]
    assert stages["traffic_bytes %"].sum() == pytest.approx(100, abs=0.05)
    (shown,) = [df for df in paper_view.dataframe if "units" in df.value.columns]
    columns = json.loads(shown.proto.columns)
    assert columns["traffic_bytes"]["label"] == "memory traffic (bytes)"
    assert columns["traffic_bytes"]["type_config"]["format"] == "localized"
    assert columns["intensity"]["label"] == "MACs/byte"
    layers = table_with(paper_view, "name")
    expected = cost_table(ShuffleNetConfig())
    assert layers["traffic_bytes"].tolist() == expected["traffic_bytes"].tolist()
    assert layers["intensity"].tolist() == expected["intensity"].tolist()
    text = " ".join(m.value for m in paper_view.markdown)
    assert "114.64 MB" in text and "1.20 MACs per byte" in text  # 114,636,032 bytes; 137,460,672 / it


def test_flops_leave_traffic_alone_and_the_fc_toggle_removes_its_traffic():
    at = make_app(view="complexity")
    at.toggle(key="cx_flops").set_value(True).run()
    no_exception(at)
    stages = table_with(at, "units").set_index("stage")
    assert int(stages["traffic_bytes"].sum()) == totals(ShuffleNetConfig())["traffic_bytes"]
    assert stages["intensity"].tolist() == analysis.stage_summary(ShuffleNetConfig())["intensity"].tolist()
    at.toggle(key="cx_include_fc").set_value(False).run()
    no_exception(at)
    stages = table_with(at, "units").set_index("stage")
    assert stages.loc["classifier", "traffic_bytes"] == 4 * (7 * 7 * 960 + 960)  # the global pool alone
    assert bars(figures(at)["cx_stage_traffic"])["classifier"] == 192_000


def test_more_groups_show_more_traffic():
    at = make_app(view="complexity", groups="8")
    no_exception(at)
    g8 = int(table_with(at, "units")["traffic_bytes"].sum())
    assert g8 == totals(ShuffleNetConfig(groups=8))["traffic_bytes"] > totals(ShuffleNetConfig())["traffic_bytes"]


def test_the_csv_download_has_the_memory_columns(monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    saved = []
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        if mimetype == "text/csv":
            saved.append(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    at = make_app(view="complexity")
    at.multiselect(key="cx_ops").set_value(["dwconv3x3"]).run()
    no_exception(at)
    data = saved[-1]
    csv = pd.read_csv(io.StringIO(data.decode() if isinstance(data, bytes) else data))
    assert list(csv.columns[-2:]) == ["traffic_bytes", "intensity"]
    assert len(csv) == 16
    row = csv.set_index("name").loc["stage2_unit2_dwconv"]
    assert row["traffic_bytes"] == 4 * (28 * 28 * 60 * 2 + 9 * 60) == 378_480
    assert row["intensity"] == pytest.approx(423_360 / 378_480, rel=1e-12)


def test_cached_wrappers_return_the_library_tables_and_figures():
    from explorer import cache

    c = ShuffleNetConfig(groups=4, blocks=(2, 3, 2))
    pd.testing.assert_frame_equal(cache.receptive_field_table(c, "unit"), analysis.receptive_field_table(c, "unit"))
    # stem 7; stage2 7 + 2*4 = 15, + 2*8 = 31; stage3 31 + 2*8 = 47, + 2 * 2*16 = 111;
    # stage4 111 + 2*16 = 143, + 2*32 = 207; the 7x7 global pool 207 + 6*32 = 399.
    assert cache.receptive_field_table(c)["receptive_field"].tolist() == [7, 31, 111, 207, 399]
    figure = cache.traffic_figure(c, "op", True)
    assert figure is cache.traffic_figure(c, "op", True)  # shared, not rebuilt on a rerun
    by_op = analysis.costs_by(c, "op").set_index("op")
    assert dict(zip(figure.data[0].x, figure.data[0].y)) == by_op["traffic_bytes"].to_dict()
    assert figure.data[0].customdata[0][0] == "zero padding"  # the op's name in words for the hover
    intensity = cache.intensity_figure(c, "stage", False)
    assert list(intensity.data[0].y) == analysis.costs_by(c, "stage", include_fc=False)["intensity"].tolist()
