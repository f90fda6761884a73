"""`python -m shufflenet bench`: the JSON contract on a tiny network (32x32, one unit per stage,
2 timed runs, TensorFlow only), the table layout, and bad arguments."""

from __future__ import annotations

import json

import pytest

from shufflenet.cli import bench_text, main

TINY = ["--input-size", "32", "--blocks", "1", "1", "1", "--repeats", "2", "--groups-list", "1", "3",
        "--runtimes", "tensorflow", "--quiet"]


def test_bench_json_rows_and_speedups(capsys):
    assert main(["bench", *TINY, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["input_size"] == 32 and out["batch"] == 1 and out["repeats"] == 2
    models = [r["model"] for r in out["rows"]]
    assert models == ["ShuffleNet 1x (g=1)", "ShuffleNet 1x (g=3)", "MobileNet 0.5 (Keras)"]
    for row in out["rows"]:
        assert row["runtime"] == "tensorflow" and row["threads"] is None and row["runs"] == 2
        assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
        assert isinstance(row["macs"], int) and row["macs"] > row["conv_macs"] > 0
    assert [r["groups"] for r in out["rows"]] == [1, 3, None]
    pairs = {(s["baseline"], s["model"]): s for s in out["speedups"]}
    g1, g3, mb = models
    assert set(pairs) == {(g1, g3), (g1, mb), (mb, g1), (mb, g3)}
    rows = {r["model"]: r for r in out["rows"]}
    s = pairs[(g1, g3)]
    assert s["theoretical"] == pytest.approx(rows[g1]["macs"] / rows[g3]["macs"], abs=1e-3)
    assert s["actual"] == pytest.approx(rows[g1]["median_ms"] / rows[g3]["median_ms"], abs=1e-3)
    assert all(isinstance(r["traffic_bytes"], int) and r["traffic_bytes"] > 0 for r in out["rows"])
    assert out["predictors"] == [{"setting": "TensorFlow", "n": 2, "r_macs": None, "r_traffic_bytes": None,
                                  "better": None}]  # two values of g: no correlation


def test_bench_table_layout():
    result = {
        "batch": 1, "repeats": 5, "machine": {"cpus": 2, "load_average": [1.0, 1.0, 1.0]},
        "rows": [
            {"model": "ShuffleNet 1x (g=1)", "runtime": "tflite", "threads": 2, "macs": 143_000_000,
             "median_ms": 4.0, "p10_ms": 3.9, "p90_ms": 4.2},
            {"model": "ShuffleNet 1x (g=3)", "runtime": "tensorflow", "threads": None, "macs": 137_000_000,
             "median_ms": 5.0, "p10_ms": 4.9, "p90_ms": 5.5},
        ],
        "speedups": [{"runtime": "tflite", "threads": 2, "baseline": "ShuffleNet 1x (g=1)",
                      "model": "ShuffleNet 1x (g=3)", "theoretical": 1.04, "actual": 0.8}],
    }
    text = bench_text(result)
    assert "tflite (2 thr)" in text and "143.0 M" in text and "4.00" in text
    assert "1.04x" in text and "0.80x" in text


@pytest.mark.parametrize("argv", [["--groups-list", "5"], ["--runtimes", "onnx"], ["--repeats", "0"]])
def test_bench_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_bench_json_ratios_and_fastest(capsys):
    """g=3 over g=1 for the one setting measured, beside the counted MACs and traffic; the fastest
    setting per model (TensorFlow, the only one, so it is also the default)."""
    from shufflenet import ShuffleNetConfig, totals

    assert main(["bench", *TINY, "--format", "json", "--no-mobilenet"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["groups"]: r for r in out["rows"]}
    latency, macs, traffic = out["ratios"]
    assert latency["quantity"] == "latency" and latency["what"] == "TensorFlow" and latency["threads"] is None
    assert (latency["first_groups"], latency["last_groups"]) == (1, 3)
    assert latency["ratio"] == pytest.approx(rows[3]["median_ms"] / rows[1]["median_ms"])
    g1, g3 = (ShuffleNetConfig(input_size=32, blocks=(1, 1, 1), groups=g) for g in (1, 3))
    assert macs["ratio"] == pytest.approx(totals(g3)["macs"] / totals(g1)["macs"])
    assert traffic["what"] == "memory traffic" and traffic["runtime"] is None
    assert traffic["ratio"] == pytest.approx(totals(g3)["traffic_bytes"] / totals(g1)["traffic_bytes"])
    assert [(f["groups"], f["fastest"], f["default"], f["speedup"]) for f in out["fastest"]] == [
        (1, "TensorFlow", "TensorFlow", 1.0), (3, "TensorFlow", "TensorFlow", 1.0)]


def test_bench_table_lists_ratios_and_fastest():
    result = {
        "batch": 1, "repeats": 5, "machine": {"cpus": 2, "load_average": [1.0, 1.0, 1.0]}, "rows": [], "speedups": [],
        "ratios": [{"quantity": "latency", "what": "TFLite, 1 thread", "first_groups": 1, "last_groups": 8,
                    "first": 2.26, "last": 3.3, "ratio": 1.46},
                   {"quantity": "macs", "what": "MACs", "first_groups": 1, "last_groups": 8,
                    "first": 143_000_000, "last": 139_000_000, "ratio": 0.972}],
        "fastest": [{"model": "ShuffleNet 1x (g=8)", "fastest": "TFLite, 1 thread", "fastest_ms": 3.3,
                     "default": "TensorFlow", "default_ms": 6.16, "speedup": 1.867}],
    }
    result["rows"] = [{"model": "m", "runtime": "tensorflow", "threads": None, "macs": 1, "median_ms": 1.0,
                       "p10_ms": 1.0, "p90_ms": 1.0}]
    text = bench_text(result)
    assert "g=8 over g=1" in text and "1.46x" in text and "0.97x" in text and "143,000,000" in text
    assert "2.26 ms" in text and "1.87x" in text and "Fastest setting per model" in text


@pytest.mark.slow
def test_bench_times_onnx_runtime(capsys):
    """--runtimes onnxruntime: each TFLite graph converted to ONNX and timed, named like TFLite."""
    argv = [*TINY[:-3], "--runtimes", "tflite", "onnxruntime", "--tflite-threads", "1", "--no-mobilenet", "--quiet"]
    assert main(["bench", *argv, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["groups"], r["runtime"], r["threads"]) for r in out["rows"]] == [
        (1, "tflite", 1), (1, "onnxruntime", 1), (3, "tflite", 1), (3, "onnxruntime", 1)]
    assert all(r["median_ms"] > 0 for r in out["rows"])
    assert [r["what"] for r in out["ratios"]] == ["TFLite, 1 thread", "ONNX Runtime, 1 thread", "MACs",
                                                  "memory traffic"]
    assert {f["fastest"] for f in out["fastest"]} <= {"TFLite, 1 thread", "ONNX Runtime, 1 thread"}
    assert all(f["default"] == "TFLite, 1 thread" for f in out["fastest"])  # no TensorFlow: the first setting
