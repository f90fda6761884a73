"""The model performance targets, each a ratio of timings taken round-robin in one run.

    python bench/perf_targets.py [--repeats 25] [--quick]

Prints one JSON object (also bench/results/perf_targets.json) with, per target, the measured
figures, the ratio, the limit and whether it is met. The app's own latency (slider -> updated
view, in Chromium) is measured by bench/ui_latency.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import tensorflow as tf
from report import write_result

from shufflenet import ShuffleNetConfig, analysis, benchmark, build_model, diagrams
from shufflenet import complexity as cx
from shufflenet.optimize import inference_model


def _native_model(config):
    """The same network with Keras's native Conv2D(groups=g) as the group conv (for context)."""
    from shufflenet import model as model_module

    original = model_module.GroupConv1x1
    model_module.GroupConv1x1 = lambda filters, groups=1, **kw: keras.layers.Conv2D(
        filters, 1, groups=groups, use_bias=False, **kw)
    try:
        return build_model(config)
    finally:
        model_module.GroupConv1x1 = original


def target(name, num, den, timings, limit, note=""):
    ratio = timings[num].median_ms / timings[den].median_ms
    return {"target": name, "numerator": num, "denominator": den,
            "numerator_ms": timings[num].median_ms, "denominator_ms": timings[den].median_ms,
            "ratio": round(ratio, 3), "limit": limit, "met": ratio <= limit, "note": note}


def tensorflow_batch1(repeats):
    runners = {}
    for g in (1, 3, 8):
        c = ShuffleNetConfig(groups=g)
        m = build_model(c)
        runners[f"g={g} inference graph"] = benchmark.tf_runner(inference_model(m, c))
        runners[f"g={g} plain Keras model"] = benchmark.tf_runner(m)
    for g in (1, 8):
        runners[f"g={g} native Conv2D(groups)"] = benchmark.tf_runner(_native_model(ShuffleNetConfig(groups=g)))
    runners["MobileNet 0.5"] = benchmark.tf_runner(benchmark.mobilenet_reference())
    t = benchmark.race(runners, repeats=repeats)
    return t, [
        target("TF batch-1 latency g=8 / g=1", "g=8 inference graph", "g=1 inference graph", t, 1.2),
        target("TF batch-1 latency g=8 / g=1 (plain Keras model, BN not folded)", "g=8 plain Keras model",
               "g=1 plain Keras model", t, 1.2, "context"),
        target("TF batch-1 latency g=8 / g=1 (native grouped conv)", "g=8 native Conv2D(groups)",
               "g=1 native Conv2D(groups)", t, 1.2, "context: what Keras's own group conv gives"),
        target("TF batch-1 latency 1x g=3 / MobileNet 0.5", "g=3 inference graph", "MobileNet 0.5", t, 1.0),
        target("TF batch-1 latency 1x g=3 plain Keras model / MobileNet 0.5", "g=3 plain Keras model",
               "MobileNet 0.5", t, 1.0, "context"),
    ]


def training_step(repeats, input_size, batch):
    runners = {}
    for g in (1, 3):
        c = ShuffleNetConfig(groups=g, input_size=input_size)
        runners[f"g={g} train step"] = benchmark.train_step_runner(build_model(c), batch)
    runners["g=3 native train step"] = benchmark.train_step_runner(
        _native_model(ShuffleNetConfig(groups=3, input_size=input_size)), batch)
    t = benchmark.race(runners, repeats=repeats, warmup=2)
    case = f"{input_size}x{input_size}, batch {batch}"
    return t, [
        target(f"training step 1x g=3 / g=1 ({case})", "g=3 train step", "g=1 train step", t, 1.3),
        target(f"training step 1x g=3 native / g=1 ({case})", "g=3 native train step", "g=1 train step", t, 1.3,
               "context: Keras's native grouped conv"),
    ]


def tflite(repeats):
    runners = {}
    c = ShuffleNetConfig(groups=3)
    m = build_model(c)
    sources = {"g=3 native-conv graph": inference_model(m, c, pointwise="native"),
               "g=3 einsum graph": inference_model(m, c),
               "MobileNet 0.5": benchmark.mobilenet_reference()}
    for name, model in sources.items():
        flat = benchmark.tflite_convert(model)
        for threads in (1, 2):
            runners[f"{name}, {threads} thread(s)"] = benchmark.tflite_runner(flat, threads)
    t = benchmark.race(runners, repeats=repeats)
    return t, [
        target("TFLite 1x g=3 / MobileNet 0.5, 2 threads", "g=3 native-conv graph, 2 thread(s)",
               "MobileNet 0.5, 2 thread(s)", t, 1.5),
        target("TFLite 1x g=3 / MobileNet 0.5, 1 thread", "g=3 native-conv graph, 1 thread(s)",
               "MobileNet 0.5, 1 thread(s)", t, 1.5, "context"),
        target("TFLite 1x g=3 einsum graph / MobileNet 0.5, 2 threads", "g=3 einsum graph, 2 thread(s)",
               "MobileNet 0.5, 2 thread(s)", t, 1.5, "context: batched matmul + transposes"),
    ]


def pure_figures(repeats):
    """Cost table, diagrams and the g sweep for one configuration, from scratch (caches cleared)."""
    samples = []
    for i in range(repeats):
        config = ShuffleNetConfig(groups=(1, 2, 3, 4, 8)[i % 5], blocks=(4, 8, 4 + i % 3))
        cx.clear_caches()
        t = time.perf_counter()
        cx.cost_table(config), cx.stage_table(config), cx.unit_table(config)
        diagrams.macro_diagram(config).source, diagrams.micro_diagram(config, 3, 1).source
        diagrams.micro_diagram(config, 3, 2).source, diagrams.full_diagram(config, 3).source
        analysis.sweep_groups(config)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    median = samples[len(samples) // 2]
    return {"target": "cost tables + diagrams + g sweep for one configuration, no model", "median_ms":
            round(median, 2), "max_ms": round(samples[-1], 2), "limit_ms": 50, "met": median <= 50}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=25)
    p.add_argument("--train-input", type=int, default=64)
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="5 repeats, for a smoke test")
    args = p.parse_args(argv)
    n = 5 if args.quick else args.repeats
    results, timings = [], {}
    for name, fn in [("tensorflow", lambda: tensorflow_batch1(n)),
                     ("training", lambda: training_step(max(3, n // 3), args.train_input, args.train_batch)),
                     ("tflite", lambda: tflite(n))]:
        t, r = fn()
        timings[name] = {k: v.__dict__ for k, v in t.items()}
        results += r
    results.append(pure_figures(max(n, 10)))
    out = {"benchmark": "perf_targets",
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "tensorflow": tf.__version__, "keras": keras.__version__,
                       "load_average": os.getloadavg()},
           "repeats": n, "targets": results, "timings": timings,
           "all_met": all(r["met"] for r in results if not r.get("note"))}
    write_result("perf_targets", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
