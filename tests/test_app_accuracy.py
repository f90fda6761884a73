"""The Accuracy view: measured error against MACs beside the paper's, from the results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_support import make_app, no_exception
from streamlit.testing.v1 import AppTest

from explorer.views import accuracy
from shufflenet import checkpoints, experiment


def _fake_results(folder: Path) -> dict:
    runs = {}
    for g in (1, 3, 8):
        for seed in range(3):
            for scale, shuffle in ((0.25, True), (0.5, True), (0.25, False)):
                if not shuffle and g == 1:
                    continue
                r = experiment.Run(g, scale, shuffle, seed)
                runs[r.name] = {"groups": g, "scale": scale, "shuffle": shuffle, "seed": seed, "name": r.name,
                                "test_error": 0.10 + 0.01 * seed + (0.02 if not shuffle else 0) - 0.001 * g,
                                "macs": 1_000_000 * g, "params": 100_000, "training_seconds": 100.0}
    return experiment.write_results(folder, runs, experiment.RECIPE, "all")


def _app(monkeypatch, folder) -> AppTest:
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", folder)
    return make_app(view="accuracy")


def test_accuracy_view_plots_measured_and_paper_points(monkeypatch, tmp_path):
    summary = _fake_results(tmp_path)
    at = _app(monkeypatch, tmp_path)
    no_exception(at)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 2
    measured, published = charts
    assert "Fashion-MNIST" in measured["layout"]["title"]["text"] and "ImageNet" in published["layout"]["title"]["text"]
    names = {t["name"] for t in measured["data"]}
    assert names == {"0.25x", "0.5x", "0.25x, no shuffle"}
    no_shuffle = next(t for t in measured["data"] if t["name"] == "0.25x, no shuffle")
    assert no_shuffle["marker"]["symbol"] == "x" and "error_y" in no_shuffle
    assert len(published["data"]) == 6  # three widths, with and without shuffle
    table = at.dataframe[0].value
    assert len(table) == len(summary["cells"]) == 8
    assert any("Removing the shuffle at 0.25x, g = 3" in m.value for m in at.markdown)

    # By default the x axis is g, as the paper's tables: positions 0..4 for g = 1, 2, 3, 4, 8; the
    # no-shuffle crosses sit just right of their g. The MACs axis puts every point at its MACs.
    assert measured["layout"]["xaxis"]["ticktext"] == ["1", "2", "3", "4", "8"]
    assert next(t for t in measured["data"] if t["name"] == "0.25x")["x"] == [0, 2, 4]
    assert all(0 < x - round(x) < 0.5 for x in no_shuffle["x"])
    at.segmented_control(key="acc_axis").set_value("macs").run()
    no_exception(at)
    assert at.query_params["axis"] == "macs"
    measured = json.loads(at.get("plotly_chart")[0].proto.spec)
    x = next(t for t in measured["data"] if t["name"] == "0.25x")["x"]
    assert measured["layout"]["xaxis"]["title"]["text"].startswith("MACs")
    assert "ticktext" not in measured["layout"]["xaxis"] and x != [0, 2, 4]


def test_bad_results_file_is_a_message_not_an_exception(monkeypatch, tmp_path):
    (tmp_path / experiment.RESULTS_NAME).write_text('{"format": "shufflenet-results", "runs": 3}')
    at = _app(monkeypatch, tmp_path)
    no_exception(at)
    assert any("cannot be read" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 1  # the paper's half still shows


def test_no_results_file_says_how_to_make_one(monkeypatch, tmp_path):
    at = _app(monkeypatch, tmp_path)
    no_exception(at)
    assert any("python -m shufflenet experiment" in i.value for i in at.info)


@pytest.mark.parametrize(("event", "expected"), [
    ({"selection": {"points": [{"customdata": [8, 0.25, False]}]}}, (8, 0.25, False)),
    ({"selection": {"points": [{"customdata": [3, 0.5, True]}]}}, (3, 0.5, True)),
    ({"selection": {"points": []}}, None),
    ({"selection": {"points": [{"customdata": [5, 0.5, True]}]}}, None),  # not a valid g
    (None, None),
])
def test_a_clicked_point_is_that_network_on_its_task(event, expected):
    config = accuracy.config_for_point(event, "fashion-mnist")
    if expected is None:
        assert config is None
    else:
        assert (config.groups, config.scale, config.shuffle) == expected
        assert (config.input_size, config.channels, config.num_classes) == (32, 1, 10)
    imagenet = accuracy.config_for_point({"selection": {"points": [{"customdata": [3, 1.0, True]}]}}, "imagenet")
    assert (imagenet.input_size, imagenet.num_classes, imagenet.scale) == (224, 1000, 1.0)
