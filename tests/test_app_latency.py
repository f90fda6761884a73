"""The Latency view through `AppTest`: nothing is measured until the button is pressed; the
measurement then runs as a server job and, once it has finished, the chart, the table and the
speedups appear, and the result is kept for the configuration (changing g reuses it).
A tiny network (32x32, one unit per stage), g = 1 and 3, TensorFlow only, 2 runs."""

from __future__ import annotations

import functools
import json

import apptest_support
import pytest
from apptest_support import no_exception

from explorer import cache
from explorer.views import latency
from shufflenet import ShuffleNetConfig, totals

make_app = functools.partial(apptest_support.make_app, timeout_s=180)
TINY = {"view": "latency", "size": "32", "blocks": "1,1,1", "scale": "0.5"}


@pytest.fixture
def small_sweep(monkeypatch):
    monkeypatch.setattr(latency, "GROUPS", (1, 3))
    monkeypatch.setattr(latency, "RUNTIMES", ("tensorflow",))
    monkeypatch.setattr(latency, "THREADS", ())
    monkeypatch.setattr(latency, "REPEATS", 2)


def test_latency_view_measures_on_click_and_keeps_the_result(small_sweep):
    at = make_app(**TINY)
    no_exception(at)
    assert at.title[0].value.endswith("Latency")
    assert any("Table 8" in m.value for m in at.markdown)
    assert any("Not measured yet" in i.value for i in at.info)
    assert not list(at.get("plotly_chart"))
    assert [b.label for b in at.get("download_button")] == ["Download .keras", "Download .tflite", "Download .onnx"]

    sweeps = cache.WORK_DONE["latency_sweep"]
    at.button(key="lat_measure").click().run()
    no_exception(at)
    # The measurement runs on the server, after the page: the page shows its progress meanwhile.
    job = cache.LATENCY.latest()
    assert job is not None and job.wait(300) and job.error is None, job and job.error
    at.run()
    no_exception(at)
    assert cache.WORK_DONE["latency_sweep"] == sweeps + 1
    by_macs, by_traffic = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    for spec in (by_macs, by_traffic):
        assert [t["name"] for t in spec["data"]] == ["TensorFlow", "TensorFlow · MobileNet 0.5 (Keras)"]
        assert [t["text"] for t in spec["data"]] == [["g=1", "g=3"], ["MobileNet 0.5 (Keras)"]]
    assert "traffic" in by_traffic["layout"]["xaxis"]["title"]["text"]
    measured = cache.measured_latency(cache.latency_key(
        ShuffleNetConfig(blocks=(1, 1, 1), scale=0.5, input_size=32), (1, 3), ("tensorflow",), (), 2, True))
    g3 = ShuffleNetConfig(groups=3, blocks=(1, 1, 1), scale=0.5, input_size=32)
    assert measured.set_index("model").loc[g3.label, "traffic_bytes"] == totals(g3)["traffic_bytes"]
    # Two values of g are too few for a correlation: the page says so rather than print one.
    assert any("too few points to tell (2)" in m.value for m in at.markdown)
    table = next(df.value for df in at.dataframe if "TensorFlow ms" in df.value.columns)
    assert table["model"].tolist() == ["ShuffleNet 0.5x (g=1)", "ShuffleNet 0.5x (g=3)", "MobileNet 0.5 (Keras)"]
    assert (table["TensorFlow ms"] > 0).all()
    labels = [m.label for m in at.metric]
    assert "Theoretical speedup of B over A (MACs)" in labels
    assert at.selectbox(key="lat_a_0.5").value == "ShuffleNet 0.5x (g=1)"
    assert at.selectbox(key="lat_b_0.5").value == "ShuffleNet 0.5x (g=3)"  # the current g
    speedups = next(df.value for df in at.dataframe if "actual / theoretical" in df.value.columns)
    assert speedups["setting"].tolist() == ["TensorFlow"]

    # Another g: the same sweep, not measured again; the chart marks the new g.
    at.selectbox(key="groups").set_value(1).run()
    no_exception(at)
    assert cache.WORK_DONE["latency_sweep"] == sweeps + 1
    assert len(list(at.get("plotly_chart"))) == 2
    assert at.button(key="lat_measure").label == "Measure again"
    at.selectbox(key="lat_b_0.5").set_value("MobileNet 0.5 (Keras)").run()
    no_exception(at)
    theoretical = next(m.value for m in at.metric if m.label.startswith("Theoretical"))
    assert theoretical.endswith("×") and float(theoretical[:-1]) < 1  # MobileNet has more MACs

    # A different width is a different network: not measured yet.
    at.slider(key="scale").set_value(1.0).run()
    assert any("Not measured yet" in i.value for i in at.info)


def test_fashion_mnist_leaves_mobilenet_out(small_sweep):
    at = make_app(view="latency", task="fashion-mnist", blocks="1,1,1", scale="0.5")
    no_exception(at)
    assert any("needs a 3-channel input" in c.value for c in at.caption)


@pytest.mark.slow
def test_the_onnx_download_runs_the_page_s_network():
    """What "Download .onnx" hands out is the app's model of this configuration, in onnxruntime."""
    import numpy as np
    import onnxruntime as ort

    from shufflenet import ShuffleNetConfig

    config = ShuffleNetConfig(blocks=(1, 1, 1), scale=0.5, input_size=32)
    session = ort.InferenceSession(cache.model_file(config, "onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    want = np.asarray(cache.model(config)(x, training=False))
    assert got.shape == want.shape and np.max(np.abs(got - want)) <= 1e-4
