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
    # The measured g = 3 over g = 1, beside the counted ratios; TensorFlow, the only setting, is the fastest.
    ratios = apptest_support.table_with(at, "ratio").set_index("what")
    times = measured.set_index("groups")["median_ms"]
    assert ratios.loc["TensorFlow", "ratio"] == pytest.approx(times[3] / times[1])
    g1 = ShuffleNetConfig(groups=1, blocks=(1, 1, 1), scale=0.5, input_size=32)
    assert ratios.loc["MACs", "ratio"] == pytest.approx(totals(g3)["macs"] / totals(g1)["macs"])
    assert (apptest_support.table_with(at, "fastest")["fastest"] == "TensorFlow").all()

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


def _fake_sweep(config: ShuffleNetConfig):
    """A measurement as `benchmark.latency_sweep` returns it, without timing anything: the counted
    costs of every g, and made-up medians in which TFLite with one thread wins for g = 1, 2, 3 and
    with two threads for g = 4 and 8."""
    import pandas as pd

    from shufflenet.benchmark import MOBILENET_LABEL

    ms = {1: (4.0, 2.0, 2.5), 2: (4.5, 2.4, 2.6), 3: (5.0, 2.6, 2.7), 4: (5.5, 3.0, 2.8), 8: (6.0, 3.6, 3.3),
          None: (3.0, 1.5, 1.2)}
    rows = []
    for g, times in ms.items():
        if g is None:
            info = {"model": MOBILENET_LABEL, "groups": None, "macs": 10**7, "conv_macs": 9 * 10**6, "params": 10**5,
                    "traffic_bytes": 10**6}
        else:
            c = config.replace(groups=g)
            t = totals(c)
            info = {"model": c.label, "groups": g, "macs": t["macs"], "conv_macs": t["conv_macs"],
                    "params": t["params"], "traffic_bytes": t["traffic_bytes"]}
        for (runtime, threads), median in zip((("tensorflow", None), ("tflite", 1), ("tflite", 2)), times):
            rows.append({**info, "runtime": runtime, "threads": threads, "batch": 1, "median_ms": median,
                         "p10_ms": median * 0.9, "p90_ms": median * 1.1, "runs": latency.REPEATS})
    return pd.DataFrame(rows)


def test_the_view_marks_the_fastest_runtime_and_the_last_g_over_the_first():
    config = ShuffleNetConfig(blocks=(1, 1, 1), scale=0.5, input_size=32)
    key = cache.latency_key(config, latency.GROUPS, latency.RUNTIMES, latency.THREADS, latency.REPEATS, True)
    cache.LATENCY.results.put(key, _fake_sweep(config))
    try:
        at = make_app(**TINY)
        no_exception(at)
        assert not any("Not measured yet" in i.value for i in at.info)
        fastest = apptest_support.table_with(at, "fastest").set_index("model")
        labels = [config.replace(groups=g).label for g in (1, 2, 3, 4, 8)]
        assert fastest.loc[labels, "fastest"].tolist() == ["TFLite, 1 thread"] * 3 + ["TFLite, 2 threads"] * 2
        assert (fastest["default"] == "TensorFlow").all()
        assert fastest.loc[labels[-1], "speedup"] == pytest.approx(6.0 / 3.3)
        assert fastest.loc["MobileNet 0.5 (Keras)", "fastest"] == "TFLite, 2 threads"
        ratios = apptest_support.table_with(at, "ratio").set_index("what")
        assert ratios.index.tolist() == ["TensorFlow", "TFLite, 1 thread", "TFLite, 2 threads", "MACs",
                                         "memory traffic"]
        assert ratios["ratio"].iloc[:3].tolist() == pytest.approx([6.0 / 4.0, 3.6 / 2.0, 3.3 / 2.5])
        g1, g8 = totals(config.replace(groups=1)), totals(config.replace(groups=8))
        assert ratios.loc["MACs", "ratio"] == pytest.approx(g8["macs"] / g1["macs"])
        assert ratios.loc["memory traffic", "ratio"] == pytest.approx(g8["traffic_bytes"] / g1["traffic_bytes"])
        assert any("g = 8 over g = 1" in m.value for m in at.markdown)
    finally:
        cache.LATENCY.results.pop(key)
