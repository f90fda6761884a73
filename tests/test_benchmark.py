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
