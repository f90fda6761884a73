"""Latency lab: measured inference latency against MACs (paper Table 8's lesson: FLOPs are
not latency).

Three runtimes: TensorFlow (the Keras model inside one compiled `tf.function`), TFLite
(converted model, XNNPACK, 1 and 2 threads) and ONNX Runtime (that TFLite graph converted to
ONNX by tf2onnx, as the explorer's .onnx download is made; CPU provider, 1 and 2 threads).
Every measurement has warm-up runs, then repeated timed runs; we report the median and the
10th/90th percentiles. Models that are compared are timed round-robin in the same process,
so load on a shared machine moves them together and the ratios stay meaningful.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import warnings
from collections.abc import Callable, Iterable

import numpy as np

from .config import ALLOWED_GROUPS, ShuffleNetConfig
from .export import onnx_from_tflite as onnx_convert
from .export import tflite_convert

#: Paper Table 5: MobileNet 0.5 (149 MFLOPs) is the reference point for ShuffleNet 1x.
MOBILENET_LABEL = "MobileNet 0.5 (Keras)"
MOBILENET_PAPER_MFLOPS = 149

Progress = Callable[[float, str], None]

#: The runtimes a sweep can time, and their names for people.
RUNTIME_NAMES = {"tensorflow": "TensorFlow", "tflite": "TFLite", "onnxruntime": "ONNX Runtime"}
RUNTIMES = tuple(RUNTIME_NAMES)


@dataclasses.dataclass
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> Timing:
        q = np.percentile(samples_ms, [10, 90])
        return cls(round(statistics.median(samples_ms), 3), round(float(q[0]), 3), round(float(q[1]), 3),
                   len(samples_ms))


def _quiet_tf():
    from .settings import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    return tf


def tf_runner(model, batch: int = 1) -> Callable[[], float]:
    """A zero-argument function that runs `model` once on a fixed batch and returns ms."""
    tf = _quiet_tf()
    shape = (batch, *model.input_shape[1:])
    x = tf.random.uniform(shape, seed=0)
    fn = tf.function(lambda t: model(t, training=False))
    fn(x).numpy()  # trace

    def once() -> float:
        t = time.perf_counter()
        fn(x).numpy()
        return (time.perf_counter() - t) * 1000

    return once


def tflite_runner(flatbuffer: bytes, threads: int = 1, batch: int = 1) -> Callable[[], float]:
    tf = _quiet_tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
    inp = interpreter.get_input_details()[0]
    if batch != 1:
        interpreter.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).random(interpreter.get_input_details()[0]["shape"], dtype=np.float32)
    interpreter.set_tensor(inp["index"], x)

    def once() -> float:
        t = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - t) * 1000

    return once


def onnx_runner(model_bytes: bytes, threads: int = 1, batch: int = 1) -> Callable[[], float]:
    """A zero-argument function that runs an ONNX model once in ONNX Runtime (CPU, `threads`
    intra-op threads, one inter-op thread) on a fixed batch and returns ms."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [batch, *(int(d) for d in inp.shape[1:])]
    feed = {inp.name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    session.run(None, feed)

    def once() -> float:
        t = time.perf_counter()
        session.run(None, feed)
        return (time.perf_counter() - t) * 1000

    return once


def train_step_runner(model, batch: int = 32) -> Callable[[], float]:
    """One SGD step (forward, backward, update) of a compiled `tf.function`, in ms."""
    tf = _quiet_tf()
    import keras

    x = tf.random.uniform((batch, *model.input_shape[1:]), seed=0)
    y = tf.one_hot(tf.zeros(batch, tf.int32), model.output_shape[-1])
    opt = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.CategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    step(x, y).numpy()

    def once() -> float:
        t = time.perf_counter()
        step(x, y).numpy()
        return (time.perf_counter() - t) * 1000

    return once


def race(runners: dict[str, Callable[[], float]], repeats: int = 20, warmup: int = 3,
         progress: Progress | None = None) -> dict[str, Timing]:
    """Time several runners round-robin: warm-up rounds, then `repeats` timed rounds."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    samples: dict[str, list[float]] = {k: [] for k in runners}
    for i in range(repeats):
        for k, run in runners.items():
            samples[k].append(run())
        if progress:
            progress((i + 1) / repeats, f"timing round {i + 1}/{repeats}")
    return {k: Timing.from_samples(v) for k, v in samples.items()}


def mobilenet_reference(input_size: int = 224):
    """Keras's MobileNet(alpha=0.5), random weights (nothing downloaded)."""
    import keras

    return keras.applications.MobileNet(input_shape=(input_size, input_size, 3), alpha=0.5, weights=None)


def latency_sweep(config: ShuffleNetConfig, groups: Iterable[int] = ALLOWED_GROUPS, batch: int = 1,
                  runtimes: Iterable[str] = RUNTIMES[:2], threads: Iterable[int] = (1, 2),
                  repeats: int = 20, include_mobilenet: bool = True, optimized: bool = True,
                  progress: Progress | None = None):
    """Measure every g (other fields from `config`) and MobileNet 0.5 in the chosen runtimes
    (`RUNTIMES`; TFLite and ONNX Runtime with each number of `threads`).

    Returns a DataFrame: model, groups, macs (all, FC included), conv_macs, params, traffic_bytes
    (memory traffic, `complexity.traffic`), runtime, threads, batch, median_ms, p10_ms, p90_ms,
    runs. `optimized` times the BN-folded inference graph (`shufflenet.optimize`), which computes
    the same function: einsum group convs with the shuffle fused in for TensorFlow, native grouped
    convs for TFLite and ONNX Runtime.
    """
    import pandas as pd

    from .complexity import keras_totals, totals
    from .model import build_model
    from .optimize import inference_model

    groups, runtimes, threads = list(groups), list(runtimes), list(threads)
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        raise ValueError(f"Unknown runtime(s) {sorted(unknown)}: use some of {', '.join(map(repr, RUNTIMES))}.")
    converted = [r for r in runtimes if r != "tensorflow"]
    report = progress or (lambda f, m: None)
    models, info, tflite_sources = {}, {}, {}
    steps = len(groups) + int(include_mobilenet)
    for i, g in enumerate(groups):
        c = config.replace(groups=g)
        report(0.3 * i / steps, f"building g={g}")
        m = build_model(c)
        models[f"g={g}"] = inference_model(m, c) if optimized else m
        if converted:
            tflite_sources[f"g={g}"] = inference_model(m, c, pointwise="native") if optimized else m
        t = totals(c)
        info[f"g={g}"] = {"model": c.label, "groups": g, "macs": t["macs"], "conv_macs": t["conv_macs"],
                          "params": t["params"], "traffic_bytes": t["traffic_bytes"]}
    if include_mobilenet:
        report(0.3 * len(groups) / steps, "building MobileNet 0.5")
        mb = mobilenet_reference(config.input_size if config.channels == 3 else 224)
        models[MOBILENET_LABEL] = tflite_sources[MOBILENET_LABEL] = mb
        mb_totals = keras_totals(mb)
        macs = mb_totals["macs"]
        fc = int(np.prod(mb.get_layer("conv_preds").kernel.shape)) if "conv_preds" in [x.name for x in mb.layers] else 0
        info[MOBILENET_LABEL] = {"model": MOBILENET_LABEL, "groups": None, "macs": macs, "conv_macs": macs - fc,
                                 "params": int(sum(np.prod(w.shape) for w in mb.trainable_weights)),
                                 "traffic_bytes": mb_totals["traffic_bytes"]}

    runners: dict[tuple, Callable[[], float]] = {}
    for k, m in models.items():
        if "tensorflow" in runtimes:
            runners[(k, "tensorflow", 0)] = tf_runner(m, batch)
        if converted:
            report(0.3 + 0.3 * list(models).index(k) / len(models), f"converting {k} to TFLite")
            flat = tflite_convert(tflite_sources[k])
            if "tflite" in runtimes:
                for n in threads:
                    runners[(k, "tflite", n)] = tflite_runner(flat, n, batch)
            if "onnxruntime" in runtimes:
                report(0.3 + 0.3 * (list(models).index(k) + 0.5) / len(models), f"converting {k} to ONNX")
                onnx_model = onnx_convert(flat)
                for n in threads:
                    runners[(k, "onnxruntime", n)] = onnx_runner(onnx_model, n, batch)
    timings = race(runners, repeats=repeats,
                   progress=lambda f, msg: report(0.6 + 0.4 * f, msg))
    rows = []
    for (k, runtime, n), t in timings.items():
        rows.append({**info[k], "runtime": runtime, "threads": n if runtime != "tensorflow" else None, "batch": batch,
                     **dataclasses.asdict(t)})
    report(1.0, "done")
    return pd.DataFrame(rows)


#: The costs `cost_predictors` compares: column -> its name in words.
PREDICTORS = {"macs": "MACs", "traffic_bytes": "memory traffic"}


def cost_predictors(df):
    """Which cost predicts the measured latency of ShuffleNet across g better: per runtime setting,
    the Pearson correlation of the median latency with MACs and with memory traffic over the
    ShuffleNet rows (MobileNet left out: it is another network), and the better of the two
    (None where a correlation cannot be computed: under 3 rows or a constant column)."""
    import pandas as pd

    rows = []
    shuffle_rows = df[df["groups"].notna()]
    for label, (runtime, threads) in settings(shuffle_rows).items():
        part = shuffle_rows[(shuffle_rows["runtime"] == runtime)
                            & ((shuffle_rows["threads"] == threads) if threads is not None
                               else shuffle_rows["threads"].isna())]
        row = {"setting": label, "n": len(part)}
        for column in PREDICTORS:
            x, y = part[column].to_numpy(dtype=float), part["median_ms"].to_numpy(dtype=float)
            ok = len(part) >= 3 and x.std() > 0 and y.std() > 0
            row[f"r_{column}"] = float(np.corrcoef(x, y)[0, 1]) if ok else None
        both = [row[f"r_{c}"] for c in PREDICTORS]
        row["better"] = None if None in both else PREDICTORS[max(PREDICTORS, key=lambda c: row[f"r_{c}"])]
        rows.append(row)
    return pd.DataFrame(rows, columns=["setting", "n", *(f"r_{c}" for c in PREDICTORS), "better"])


def speedup(df, a: str, b: str, runtime: str = "tensorflow", threads: int | None = None) -> dict:
    """Actual vs theoretical (MACs) speedup of model `b` over model `a` in one runtime."""
    sel = df[df["runtime"] == runtime]
    if threads is not None and runtime != "tensorflow":
        sel = sel[sel["threads"] == threads]
    ra, rb = sel[sel["model"] == a].iloc[0], sel[sel["model"] == b].iloc[0]
    return {"theoretical": ra["macs"] / rb["macs"], "actual": ra["median_ms"] / rb["median_ms"]}


def setting_label(runtime: str, threads) -> str:
    """'TensorFlow', 'TFLite, 1 thread', 'ONNX Runtime, 2 threads' (threads is None/NaN for TensorFlow)."""
    if runtime == "tensorflow":
        return RUNTIME_NAMES[runtime]
    n = int(threads)
    return f"{RUNTIME_NAMES[runtime]}, {n} thread{'s' if n != 1 else ''}"


def settings(df) -> dict[str, tuple[str, int | None]]:
    """The runtime settings measured in a sweep: label -> (runtime, threads), in measured order."""
    out: dict[str, tuple[str, int | None]] = {}
    for runtime, threads in df[["runtime", "threads"]].itertuples(index=False):
        n = None if runtime == "tensorflow" else int(threads)
        out.setdefault(setting_label(runtime, n), (runtime, n))
    return out


def latency_table(df):
    """One row per model (MACs, params) and one median-latency column (ms) per runtime setting."""
    labels = [setting_label(r, t) for r, t in df[["runtime", "threads"]].itertuples(index=False)]
    wide = df.assign(setting=labels).pivot_table(index="model", columns="setting", values="median_ms", sort=False)
    wide.columns = [f"{c} ms" for c in wide.columns]
    info = df.drop_duplicates("model").set_index("model")[["groups", "macs", "conv_macs", "params"]]
    return info.join(wide).reset_index().astype({"groups": "Int64", "macs": "int64", "conv_macs": "int64",
                                                 "params": "int64"})


def speedup_table(df, a: str, b: str):
    """Actual vs theoretical speedup of model `b` over model `a` in every runtime setting, and
    the share of the theoretical speedup that is real (actual / theoretical)."""
    import pandas as pd

    rows = []
    for label, (runtime, threads) in settings(df).items():
        s = speedup(df, a, b, runtime=runtime, threads=threads)
        rows.append({"setting": label, "theoretical": round(float(s["theoretical"]), 3),
                     "actual": round(float(s["actual"]), 3),
                     "actual / theoretical": round(float(s["actual"] / s["theoretical"]), 3)})
    return pd.DataFrame(rows)


def _setting_rows(df, runtime: str, threads):
    """The rows of one runtime setting (threads None/NaN for TensorFlow)."""
    same = df["runtime"] == runtime
    return df[same & (df["threads"] == threads if threads is not None else df["threads"].isna())]


#: The runtime setting the explorer and `python -m shufflenet bench` run models in by default.
DEFAULT_SETTING = "TensorFlow"


def fastest_settings(df):
    """Which runtime setting runs each model fastest on this machine: per model (in measured
    order), the fastest setting and its median, the default setting (TensorFlow, else the first
    one measured) and its median, and how many times faster the fastest is than the default."""
    import pandas as pd

    measured = settings(df)
    default = DEFAULT_SETTING if DEFAULT_SETTING in measured else next(iter(measured), None)
    labels = [setting_label(r, t) for r, t in df[["runtime", "threads"]].itertuples(index=False)]
    wide = df.assign(setting=labels).pivot_table(index="model", columns="setting", values="median_ms", sort=False)
    rows = []
    for model, times in wide.iterrows():
        times = times.dropna()
        best = times.idxmin()
        groups = df.loc[df["model"] == model, "groups"].iloc[0]
        rows.append({"model": model, "groups": groups, "fastest": best, "fastest_ms": float(times[best]),
                     "default": default, "default_ms": float(times[default]),
                     "speedup": float(times[default] / times[best])})
    out = pd.DataFrame(rows, columns=["model", "groups", "fastest", "fastest_ms", "default", "default_ms", "speedup"])
    return out.astype({"groups": "Int64"})


#: The costs `group_ratios` sets beside the measured ratios: column -> its name in words.
COUNTED = {"macs": "MACs", "traffic_bytes": "memory traffic"}


def group_ratios(df):
    """How the last g measured compares with the first (g8 / g1 for the full sweep): for every
    runtime setting the ratio of the median latencies, and beside them the ratios of the MACs
    and of the memory traffic the library counts for the same two networks. Over 1: the last g
    is slower (or costlier). ShuffleNet rows only; empty with fewer than two values of g.

    Columns: quantity ("latency", "macs", "traffic_bytes"), what (the setting, or the cost in
    words), runtime, threads (None for counts and TensorFlow), first_groups, last_groups, first,
    last (ms, MACs or bytes) and ratio (last / first)."""
    import pandas as pd

    columns = ["quantity", "what", "runtime", "threads", "first_groups", "last_groups", "first", "last", "ratio"]
    shuffle_rows = df[df["groups"].notna()]
    groups = list(dict.fromkeys(int(g) for g in shuffle_rows["groups"]))
    if len(groups) < 2:
        return pd.DataFrame([], columns=columns)
    first_g, last_g = groups[0], groups[-1]
    rows = []

    def add(quantity, what, runtime, threads, first, last):
        rows.append({"quantity": quantity, "what": what, "runtime": runtime, "threads": threads,
                     "first_groups": first_g, "last_groups": last_g, "first": float(first), "last": float(last),
                     "ratio": float(last / first)})

    for label, (runtime, threads) in settings(shuffle_rows).items():
        part = _setting_rows(shuffle_rows, runtime, threads).set_index("groups")
        if first_g in part.index and last_g in part.index:
            add("latency", label, runtime, threads, part.loc[first_g, "median_ms"], part.loc[last_g, "median_ms"])
    counts = shuffle_rows.drop_duplicates("groups").set_index("groups")
    for column, words in COUNTED.items():
        if column in counts:
            add(column, words, None, None, counts.loc[first_g, column], counts.loc[last_g, column])
    out = pd.DataFrame(rows, columns=columns).astype({"first_groups": "int64", "last_groups": "int64"})
    # None, not NaN, where a row has no runtime or thread count (the counts; TensorFlow's threads).
    out["runtime"] = pd.Series([r["runtime"] for r in rows], dtype=object)
    out["threads"] = pd.Series([None if r["threads"] is None else int(r["threads"]) for r in rows], dtype=object)
    return out
