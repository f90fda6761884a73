"""Grouped 1x1 convolution on CPU: Keras's native Conv2D(groups=g) vs alternatives, and the
whole model's batch-1 latency for g = 1, 2, 3, 4, 8 with the chosen implementation.

Prints one JSON object (also written to bench/results/group_conv.json). All timings of one
comparison are interleaved round by round in the same run, and the targets are ratios, so a
noisy shared machine moves numerator and denominator together.

    python bench/group_conv.py [--rounds 15] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np
import tensorflow as tf

from shufflenet import ShuffleNetConfig, build_model
from shufflenet import model as model_module
from shufflenet.layers import GroupConv1x1


class SplitGroupConv(keras.layers.Layer):
    """Alternative 2: split channels, one ordinary 1x1 conv per group, concatenate."""

    def __init__(self, filters, groups=1, **kw):
        super().__init__(**kw)
        self.groups = groups
        self.convs = [keras.layers.Conv2D(filters // groups, 1, use_bias=False) for _ in range(groups)]

    def call(self, x):
        if self.groups == 1:
            return self.convs[0](x)
        parts = keras.ops.split(x, self.groups, axis=-1)
        return keras.ops.concatenate([c(p) for c, p in zip(self.convs, parts)], axis=-1)


def native(filters, groups=1, **kw):
    """Alternative 1: Keras's own grouped convolution."""
    return keras.layers.Conv2D(filters, 1, groups=groups, use_bias=False, **kw)


IMPLS = {"ours (GroupConv1x1)": GroupConv1x1, "native Conv2D(groups)": native, "split+concat": SplitGroupConv}


def _timer(fn, *args):
    fn(*args)  # trace + warm-up
    fn(*args)

    def once():
        t = time.perf_counter()
        out = fn(*args)
        (out[0] if isinstance(out, (list, tuple)) else out).numpy()
        return (time.perf_counter() - t) * 1000

    return once


def interleaved(timers: dict, rounds: int) -> dict:
    samples = {k: [] for k in timers}
    for _ in range(rounds):
        for k, once in timers.items():
            samples[k].append(once())
    return {k: {"median_ms": round(statistics.median(v), 3),
                "iqr_ms": round(float(np.subtract(*np.percentile(v, [75, 25]))), 3)} for k, v in samples.items()}


def layer_benchmark(rounds: int, batch: int) -> dict:
    """Forward+backward of one 1x1 conv (8x8x240 -> 240, g=3; and g=1 plain for scale)."""
    x = tf.random.normal((batch, 8, 8, 240))
    timers = {}
    for name, make in [*IMPLS.items(), ("plain conv g=1", None)]:
        layer = keras.layers.Conv2D(240, 1, use_bias=False) if make is None else make(240, groups=3)
        layer.build(x.shape) if make is not SplitGroupConv else layer(x)

        @tf.function
        def step(x, layer=layer):
            with tf.GradientTape() as tape:
                y = layer(x, training=True)  # ours: the training path (one MatMul per group)
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, layer.trainable_weights)

        timers[name] = _timer(step, x)
    # correctness: all grouped variants compute the same function
    ref = GroupConv1x1(240, groups=3)
    ref.build(x.shape)
    nat = native(240, groups=3)
    nat.build(x.shape)
    nat.set_weights([np.concatenate(list(np.asarray(ref.kernel)), -1)[None, None]])
    err = float(np.max(np.abs(np.asarray(ref(x)) - np.asarray(nat(x)))))
    return {"case": f"1x1 conv fwd+bwd, batch {batch}, 8x8x240 -> 240, g=3", "max_abs_diff_vs_native": err,
            "results": interleaved(timers, rounds)}


def _model_timer(config, impl):
    original = model_module.GroupConv1x1
    model_module.GroupConv1x1 = impl
    try:
        m = build_model(config)
    finally:
        model_module.GroupConv1x1 = original
    fn = tf.function(lambda x: m(x, training=False), jit_compile=False)
    x = tf.random.uniform((1, config.input_size, config.input_size, 3))
    return _timer(fn, x)


def model_benchmark(rounds: int, groups=(1, 2, 3, 4, 8)) -> dict:
    timers = {}
    for g in groups:
        timers[f"g={g}"] = _model_timer(ShuffleNetConfig(groups=g), GroupConv1x1)
    for g in (1, 8):
        timers[f"g={g} native"] = _model_timer(ShuffleNetConfig(groups=g), native)
    res = interleaved(timers, rounds)
    med = {k: v["median_ms"] for k, v in res.items()}
    return {
        "case": "whole 1x model, batch 1, 224x224x3, inside tf.function",
        "results": res,
        "ratio_g8_over_g1": round(med["g=8"] / med["g=1"], 3),
        "ratio_g8_over_g1_native": round(med["g=8 native"] / med["g=1 native"], 3),
        "target_ratio_g8_over_g1": 1.2,
        "target_met": med["g=8"] / med["g=1"] <= 1.2,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch", type=int, default=64, help="batch of the single-layer benchmark")
    p.add_argument("--quick", action="store_true", help="3 rounds, for a smoke test")
    args = p.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    tf.config.threading.set_inter_op_parallelism_threads(1)
    result = {
        "benchmark": "group_conv",
        "machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__, "keras": keras.__version__},
        "rounds": rounds,
        "layer": layer_benchmark(rounds, args.batch),
        "model": model_benchmark(rounds),
    }
    out = Path(__file__).parent / "results" / "group_conv.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
