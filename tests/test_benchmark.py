"""The latency lab's tables (pure pandas, on a hand-made sweep; the timing itself is exercised by
tests/test_cli_bench.py and tests/test_app_latency.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from shufflenet import benchmark


def _row(model, groups, macs, runtime, threads, ms):
    return {"model": model, "groups": groups, "macs": macs, "conv_macs": macs - 1, "params": 10, "runtime": runtime,
            "threads": threads, "batch": 1, "median_ms": ms, "p10_ms": ms * 0.9, "p90_ms": ms * 1.1, "runs": 3}


@pytest.fixture
def sweep():
    return pd.DataFrame([
        _row("g=1", 1, 100, "tensorflow", None, 2.0), _row("g=1", 1, 100, "tflite", 1, 1.0),
        _row("g=1", 1, 100, "tflite", 2, 0.6),
        _row("g=3", 3, 50, "tensorflow", None, 1.6), _row("g=3", 3, 50, "tflite", 1, 0.8),
        _row("g=3", 3, 50, "tflite", 2, 0.5),
        _row(benchmark.MOBILENET_LABEL, None, 150, "tensorflow", None, 1.0),
        _row(benchmark.MOBILENET_LABEL, None, 150, "tflite", 1, 0.4),
        _row(benchmark.MOBILENET_LABEL, None, 150, "tflite", 2, 0.3),
    ])


def test_settings_in_measured_order(sweep):
    assert benchmark.settings(sweep) == {"TensorFlow": ("tensorflow", None), "TFLite, 1 thread": ("tflite", 1),
                                         "TFLite, 2 threads": ("tflite", 2)}


def test_latency_table_is_one_row_per_model(sweep):
    table = benchmark.latency_table(sweep)
    assert table["model"].tolist() == ["g=1", "g=3", benchmark.MOBILENET_LABEL]
    assert table["groups"].tolist()[:2] == [1, 3] and pd.isna(table["groups"].iloc[2])
    assert table.set_index("model").loc["g=3", "TFLite, 2 threads ms"] == 0.5
    assert list(table.columns) == ["model", "groups", "macs", "conv_macs", "params", "TensorFlow ms",
                                   "TFLite, 1 thread ms", "TFLite, 2 threads ms"]


def test_speedup_table_actual_vs_theoretical(sweep):
    table = benchmark.speedup_table(sweep, "g=1", "g=3").set_index("setting")
    assert table["theoretical"].tolist() == [2.0, 2.0, 2.0]
    assert table.loc["TensorFlow", "actual"] == pytest.approx(1.25)
    assert table.loc["TFLite, 1 thread", "actual / theoretical"] == pytest.approx(0.625)


def test_cost_predictors_say_which_cost_follows_the_times():
    """Latency made to follow memory traffic exactly: traffic correlates at 1, MACs less, and
    traffic is named the better predictor; MobileNet (no g) is left out; two points are too few."""
    rows = []
    for g, macs, traffic in ((1, 140, 100), (2, 138, 130), (3, 136, 150), (4, 133, 180), (8, 137, 260)):
        rows.append({**_row(f"g={g}", g, macs, "tensorflow", None, 0.01 * traffic), "traffic_bytes": traffic})
    rows.append({**_row(benchmark.MOBILENET_LABEL, None, 150, "tensorflow", None, 99.0), "traffic_bytes": 1})
    table = benchmark.cost_predictors(pd.DataFrame(rows))
    (row,) = table.to_dict("records")
    assert row["setting"] == "TensorFlow" and row["n"] == 5
    assert row["r_traffic_bytes"] == pytest.approx(1.0)
    by_hand = pd.Series([140, 138, 136, 133, 137]).corr(pd.Series([1.0, 1.3, 1.5, 1.8, 2.6]))
    assert row["r_macs"] == pytest.approx(by_hand) and row["r_macs"] < 0.5
    assert row["better"] == "memory traffic"
    few = benchmark.cost_predictors(pd.DataFrame(rows[:2]))
    assert few["better"].tolist() == [None] and few["r_macs"].isna().all()


def test_fastest_setting_per_model(sweep):
    table = benchmark.fastest_settings(sweep).set_index("model")
    assert table.index.tolist() == ["g=1", "g=3", benchmark.MOBILENET_LABEL]
    assert table["fastest"].tolist() == ["TFLite, 2 threads"] * 3
    assert table["fastest_ms"].tolist() == [0.6, 0.5, 0.3]
    assert (table["default"] == "TensorFlow").all() and table["default_ms"].tolist() == [2.0, 1.6, 1.0]
    assert table["speedup"].tolist() == pytest.approx([2.0 / 0.6, 1.6 / 0.5, 1.0 / 0.3])
    assert table["groups"].tolist()[:2] == [1, 3] and pd.isna(table["groups"].iloc[2])


def test_the_fastest_can_differ_per_g_and_the_default_falls_back_to_the_first_setting(sweep):
    # g = 3 made fastest in TFLite with one thread (two threads slower than one, as on a loaded machine).
    sweep.loc[(sweep["model"] == "g=3") & (sweep["threads"] == 2), "median_ms"] = 0.9
    assert benchmark.fastest_settings(sweep).set_index("model").loc["g=3", "fastest"] == "TFLite, 1 thread"
    tflite_only = benchmark.fastest_settings(sweep[sweep["runtime"] == "tflite"]).set_index("model")
    assert (tflite_only["default"] == "TFLite, 1 thread").all()
    assert tflite_only.loc["g=1", "speedup"] == pytest.approx(1.0 / 0.6)


def test_group_ratios_last_g_over_first_beside_macs_and_traffic():
    # A made-up sweep over g = 1, 3, 8 with memory traffic: each ratio is the g = 8 row over the g = 1 row.
    rows = []
    for g, macs, traffic, tf_ms, lite_ms in ((1, 140, 100, 4.0, 2.0), (3, 136, 150, 5.0, 2.5), (8, 137, 240, 6.0, 3.3)):
        rows += [{**_row(f"g={g}", g, macs, "tensorflow", None, tf_ms), "traffic_bytes": traffic},
                 {**_row(f"g={g}", g, macs, "tflite", 1, lite_ms), "traffic_bytes": traffic}]
    rows.append({**_row(benchmark.MOBILENET_LABEL, None, 150, "tensorflow", None, 0.1), "traffic_bytes": 1})
    table = benchmark.group_ratios(pd.DataFrame(rows)).set_index("what")
    assert table.index.tolist() == ["TensorFlow", "TFLite, 1 thread", "MACs", "memory traffic"]
    assert table["quantity"].tolist() == ["latency", "latency", "macs", "traffic_bytes"]
    assert (table["first_groups"] == 1).all() and (table["last_groups"] == 8).all()
    assert table.loc["TensorFlow", "ratio"] == pytest.approx(6.0 / 4.0)
    assert table.loc["TFLite, 1 thread", ["first", "last", "ratio"]].tolist() == pytest.approx([2.0, 3.3, 1.65])
    assert table.loc["MACs", "ratio"] == pytest.approx(137 / 140)
    assert table.loc["memory traffic", "ratio"] == pytest.approx(2.4)
    assert table.loc["TFLite, 1 thread", "threads"] == 1 and table.loc["MACs", "runtime"] is None


def test_group_ratios_need_two_values_of_g(sweep):
    assert benchmark.group_ratios(sweep[sweep["groups"] == 1]).empty
    # The hand-made sweep has no memory traffic column: only the latencies and the MACs.
    table = benchmark.group_ratios(sweep)
    assert table["what"].tolist() == ["TensorFlow", "TFLite, 1 thread", "TFLite, 2 threads", "MACs"]
    assert table["ratio"].tolist() == pytest.approx([0.8, 0.8, 0.5 / 0.6, 0.5])


def test_an_unknown_runtime_is_refused_before_anything_is_built():
    from shufflenet import ShuffleNetConfig

    with pytest.raises(ValueError, match=r"Unknown runtime\(s\) \['onnx'\]: use some of 'tensorflow', 'tflite', "
                                         r"'onnxruntime'"):
        benchmark.latency_sweep(ShuffleNetConfig(), runtimes=["tflite", "onnx"])


def test_onnx_runtime_settings_are_named_and_compared_like_tflite(sweep):
    onnx = sweep[sweep["runtime"] == "tflite"].assign(runtime="onnxruntime",
                                                      median_ms=lambda d: d["median_ms"] * 2)
    both = pd.concat([sweep, onnx], ignore_index=True)
    assert list(benchmark.settings(both))[-2:] == ["ONNX Runtime, 1 thread", "ONNX Runtime, 2 threads"]
    s = benchmark.speedup(both, "g=1", "g=3", runtime="onnxruntime", threads=2)
    assert s["actual"] == pytest.approx(1.2 / 1.0)
    ratios = benchmark.group_ratios(both).set_index("what")
    assert ratios.loc["ONNX Runtime, 2 threads", "ratio"] == pytest.approx(1.0 / 1.2)
    assert ratios.loc["ONNX Runtime, 1 thread", "runtime"] == "onnxruntime"
