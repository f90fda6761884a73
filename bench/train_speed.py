"""Training speed on Fashion-MNIST: images per second of training epochs, the earlier path
(`engine="keras-fit"`) against the fast one (`engine="fast"`), measured in the same run, and
the fraction of the machine's own matmul ceiling each reaches. Prints JSON.

    python bench/train_speed.py                 # g = 1, 3, 8 at 0.5x, inputs 32 and 64: both paths
    python bench/train_speed.py --levers        # each lever on its own (batch, XLA, threads, ...)
    python bench/train_speed.py --demo          # "train this configuration" through a real server

Every measurement runs in its own process (oneDNN and thread settings are fixed when TensorFlow
starts), the paths alternate round-robin so that load on a shared machine moves them together,
and each figure is the median of `--repeats` runs. A run trains two epochs on `--images`
images and times the second: tracing and building are left out; `setup_s` reports them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: What "today's path" was: `model.fit` on float32 inputs, oneDNN off (as the Makefile runs it).
OLD = {"engine": "keras-fit", "onednn": False}
#: The fast path as `python -m shufflenet train` and the app's training run it.
NEW = {"engine": "fast", "onednn": True}
TARGET_SPEEDUP = 3.0
TARGET_G8_OVER_G1 = 1.3


# --- one measurement (in a child process) --------------------------------------------------------

def _ceiling(n: int = 2048, rounds: int = 8) -> float:
    """MACs per second of a large float32 matmul in TensorFlow on this machine."""
    import tensorflow as tf

    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        f(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return n ** 3 / best


def _worker(spec: dict) -> dict:
    """Train two epochs of `spec` and time the second; or measure the matmul ceiling."""
    import tensorflow as tf

    if spec.get("threads"):
        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(spec.get("inter", spec["threads"]))
    if spec["kind"] == "ceiling":
        return {"macs_per_s": _ceiling()}
    from shufflenet import ShuffleNetConfig, training

    config = ShuffleNetConfig(groups=spec["groups"], scale=spec["scale"], input_size=spec["size"], channels=1,
                              num_classes=10)
    if spec.get("variant"):
        return _lever(spec, config)
    epochs: list = []
    t = time.perf_counter()
    training.train(config, 2, limit=spec["images"], batch_size=spec["batch"], eval_limit=10, record_subset=False,
                   on_epoch=epochs.append, engine=spec["engine"], group_conv=spec.get("group_conv"))
    second = epochs[1].seconds - epochs[0].seconds
    return {"images_per_s": spec["images"] / second, "setup_s": epochs[0].seconds - second,
            "total_s": time.perf_counter() - t}


def _lever(spec: dict, config) -> dict:
    """A variant of the fast path that `train` does not expose: float32 data, tf.data with
    prefetch, or an XLA-compiled step. Two epochs, the second timed."""
    import keras
    import numpy as np
    import tensorflow as tf

    from shufflenet import data, training
    from shufflenet.model import build_model, copy_weights, training_graph

    images, labels = data.load_fashion_mnist().train
    images, labels = images[:spec["images"]], labels[:spec["images"]].astype(np.int32)
    graph = training_graph(config, group_conv=spec.get("group_conv") or training.default_group_conv())
    copy_weights(build_model(config), graph)
    inputs = training.uint8_inputs(images, config)
    variant, batch = spec["variant"], spec["batch"]
    if variant == "float32":
        inputs = inputs.astype(np.float32) / np.float32(255)
    step = training.make_step(graph, keras.optimizers.Adam(1e-3), dtype=str(inputs.dtype),
                              jit_compile=variant == "xla")
    seed = tf.constant([0, 0], tf.int32)

    def epoch() -> float:
        t = time.perf_counter()
        if variant == "prefetch":
            ds = tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(len(labels)).batch(batch)
            for x, y in ds.prefetch(2):
                loss, _ = step(x, y, seed)
        else:
            x_all, y_all = tf.constant(inputs), tf.constant(labels)
            order = np.random.default_rng(0).permutation(len(labels)).astype(np.int32)
            for i in range(0, len(labels), batch):
                index = tf.constant(order[i:i + batch])
                loss, _ = step(tf.gather(x_all, index), tf.gather(y_all, index), seed)
        float(loss)
        return time.perf_counter() - t

    first = epoch()
    second = epoch()
    return {"images_per_s": len(labels) / second, "setup_s": first - second}


def _run_child(spec: dict, timeout: float) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1" if spec.get("onednn") else "0"}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(lines[-1])


def _median_runs(specs: list[dict], repeats: int, timeout: float, log) -> list[dict]:
    """Run every spec `repeats` times, round-robin; each gets the median and all samples."""
    samples: list[list[dict]] = [[] for _ in specs]
    for r in range(repeats):
        for i, spec in enumerate(specs):
            out = _run_child(spec, timeout)
            samples[i].append(out)
            log(f"[{r + 1}/{repeats}] {_label(spec)}: {out}")
    results = []
    for spec, runs in zip(specs, samples):
        ok = [s for s in runs if "error" not in s]
        row = {**spec, "runs": len(ok), "errors": [s["error"] for s in runs if "error" in s]}
        for key in ("images_per_s", "setup_s", "macs_per_s"):
            values = [s[key] for s in ok if key in s]
            if values:
                row[key] = statistics.median(values)
                row[key + "_samples"] = [round(v, 2) for v in values]
        results.append(row)
    return results


def _label(spec: dict) -> str:
    if spec["kind"] == "ceiling":
        return "matmul ceiling"
    parts = [f"g={spec['groups']}", f"{spec['scale']:g}x", f"{spec['size']}px", spec.get("engine", "fast"),
             f"batch {spec['batch']}", f"oneDNN {'on' if spec.get('onednn') else 'off'}"]
    for key in ("variant", "group_conv", "threads", "inter"):
        if spec.get(key):
            parts.append(f"{key} {spec[key]}")
    return ", ".join(parts)


def _training_macs(spec: dict) -> int:
    """Multiply-adds of one training image: forward, and twice that backward (inputs and weights)."""
    from shufflenet import ShuffleNetConfig, totals

    config = ShuffleNetConfig(groups=spec["groups"], scale=spec["scale"], input_size=spec["size"], channels=1,
                              num_classes=10)
    return 3 * totals(config)["macs"]


# --- the comparisons -----------------------------------------------------------------------------

def speed(args, log) -> dict:
    specs = [{"kind": "ceiling", "threads": args.threads}]
    for size in args.sizes:
        for g in args.groups:
            for path in (OLD, NEW):
                specs.append({"kind": "train", "groups": g, "scale": args.scale, "size": size, "batch": args.batch,
                              "images": args.images if size <= 32 else args.images // 2, "threads": args.threads,
                              **path})
    rows = _median_runs(specs, args.repeats, args.timeout, log)
    ceiling = rows[0].get("macs_per_s")
    for row in rows[1:]:
        if "images_per_s" in row and ceiling:
            row["ceiling_fraction"] = round(row["images_per_s"] * _training_macs(row) / ceiling, 4)
    out = {"ceiling_macs_per_s": ceiling, "rows": rows[1:], "speedups": [], "g8_over_g1": []}
    by = {(r["size"], r["groups"], r["engine"]): r.get("images_per_s") for r in rows[1:]}
    for size in args.sizes:
        for g in args.groups:
            old, new = by.get((size, g, OLD["engine"])), by.get((size, g, NEW["engine"]))
            if old and new:
                out["speedups"].append({"size": size, "groups": g, "old_images_per_s": round(old, 1),
                                        "new_images_per_s": round(new, 1), "speedup": round(new / old, 3),
                                        "target": TARGET_SPEEDUP if g in (3, 8) else None,
                                        "met": (new / old >= TARGET_SPEEDUP) if g in (3, 8) else None})
        for engine in (OLD["engine"], NEW["engine"]):
            g1, g8 = by.get((size, 1, engine)), by.get((size, 8, engine))
            if g1 and g8:
                ratio = g1 / g8  # training time g8 / g1 = speed g1 / speed g8
                out["g8_over_g1"].append({"size": size, "engine": engine, "time_ratio": round(ratio, 3),
                                          "target": TARGET_G8_OVER_G1, "met": ratio <= TARGET_G8_OVER_G1})
    return out


def levers(args, log) -> dict:
    """Each lever changed alone from the fast path at g = 3 and g = 8, 0.5x, 32 px."""
    base = {"kind": "train", "scale": args.scale, "size": 32, "batch": args.batch, "images": args.images,
            "threads": args.threads, **NEW}
    variants = {
        "fast path (oneDNN, grouped conv)": {},
        "fast path, oneDNN off (one matmul per group)": {"onednn": False},
        "fast path, one matmul per group (oneDNN on)": {"group_conv": "split"},
        "batch 128": {"batch": 128},
        "batch 512": {"batch": 512},
        "XLA (jit_compile)": {"variant": "xla"},
        "float32 data in memory (no uint8 cast)": {"variant": "float32"},
        "tf.data with prefetch": {"variant": "prefetch"},
        "1 thread": {"threads": 1},
        "2 intra-op, 1 inter-op threads": {"inter": 1},
        "earlier path (keras fit)": dict(OLD),
    }
    specs, names = [], []
    for g in (3, 8):
        for name, change in variants.items():
            specs.append({**base, "groups": g, **change})
            names.append(name)
    rows = _median_runs(specs, args.repeats, args.timeout, log)
    for row, name in zip(rows, names):
        row["lever"] = name
    return {"rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--levers", action="store_true", help="measure each lever on its own")
    p.add_argument("--demo", action="store_true", help="time 'train this configuration' through a real server")
    p.add_argument("--groups", type=int, nargs="+", default=[1, 3, 8])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--images", type=int, default=6144, help="training images per epoch at 32 px (half at 64)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = time.time()
    if args.demo:
        sys.path.insert(0, str(ROOT / "bench"))
        from train_demo import demo

        result = {"demo": demo(log=log)}
    elif args.levers:
        result = {"levers": levers(args, log)}
    else:
        result = {"speed": speed(args, log)}
    result["machine"] = {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
                         "seconds": round(time.time() - started, 1)}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
