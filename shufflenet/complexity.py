"""Cost accounting as pure functions of the configuration: one row per Keras layer, read off
the layer plan (`plan.layer_plan`).

"MACs" are multiply-accumulates, what the paper calls FLOPs. Paper Table 1's complexity row
counts the stem conv and every 1x1 / 3x3 conv, and leaves out the FC layer (reported
separately here as `fc_macs`), BN, ReLU, pooling, add, concat and shuffle. Parameters are the
trainable ones (conv kernels, BN gamma/beta, FC weights and bias); BN moving statistics are
counted apart as `non_trainable`.

Memory traffic is what a layer moves to and from memory, the cost that MACs leave out and the
reason grouped and depthwise convolutions are often slower than their MACs promise. Each layer
is counted as reading all of its inputs and its weights once and writing its output once, at
float32 and batch 1: the least that an implementation running one layer at a time, with
nothing kept in cache between layers, has to move::

    traffic_bytes = 4 * (sum of the elements of every input (add / concat: both)
                         + elements of the output
                         + params + non_trainable)      # weights and BN statistics
    intensity     = macs / traffic_bytes                # MACs per byte; 0 where macs == 0

A layer with a low intensity waits for memory, whatever its MACs: a 1x1 conv from C to C
channels in g groups does C*C/g MACs per pixel but still reads and writes 2*C values per pixel,
so its intensity falls as g grows; a 3x3 depthwise conv does 9 MACs per value it writes and
reads at least one value for each, so at most 4.5 MACs per value moved (1.125 per byte). (Not
to be confused with "MACs", the multiply-accumulates: memory traffic is always called that.)

`keras_cost_table(model)` is a second, independent counter that walks a built model; the
tests check that both agree exactly, memory traffic included.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from .config import ShuffleNetConfig
from .naming import parse_layer_name
from .plan import layer_plan
from .settings import SETTINGS

COLUMNS = [
    "name", "stage", "unit", "part", "op", "groups", "input_shape", "output_shape",
    "params", "non_trainable", "macs", "activations", "traffic_bytes", "intensity",
]

#: Bytes per value (activations and weights) in memory traffic: float32.
BYTES_PER_VALUE = 4


def format_bytes(n: float) -> str:
    """A size in decimal units, as the pages write them: 7560832 -> '7.56 MB'."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{int(n)} B"


#: Coarse op families used by charts ("where do the MACs go?").
OP_FAMILY = {
    "conv3x3": "stem conv",
    "gconv1x1": "1x1 group conv",
    "conv1x1": "1x1 conv",
    "dwconv3x3": "3x3 depthwise conv",
    "fc": "fully connected",
    "batchnorm": "batch norm",
}
#: The family of every op without MACs (pad, ReLU, pooling, shuffle, add, concat).
FREE_FAMILY = "other (no MACs)"


def traffic(input_elements: int, output_elements: int, weights: int, macs: int) -> tuple[int, float]:
    """(traffic_bytes, intensity) of one layer; see the module docstring. Both counters call it,
    so they can only differ in the elements and weights they count."""
    nbytes = BYTES_PER_VALUE * (input_elements + output_elements + weights)
    return nbytes, (macs / nbytes if macs else 0.0)


def _plan_records(config: ShuffleNetConfig) -> list[dict]:
    """The layer plan's rows with the cost-table columns (no name parsing: the plan knows them).
    A layer's inputs are the outputs of the layers it names (or the image)."""
    elements = {"image": config.input_size * config.input_size * config.channels}
    records = []
    for spec in layer_plan(config):
        out = spec.activations
        elements[spec.name] = out
        nbytes, intensity = traffic(sum(elements[n] for n in spec.inputs), out,
                                    spec.params + spec.non_trainable, spec.macs)
        records.append({"name": spec.name, "stage": spec.stage, "unit": spec.unit, "part": spec.part, "op": spec.op,
                        "groups": spec.groups, "input_shape": spec.input_shape, "output_shape": spec.output_shape,
                        "params": spec.params, "non_trainable": spec.non_trainable, "macs": spec.macs,
                        "activations": out, "traffic_bytes": nbytes, "intensity": intensity})
    return records


def _records(rows) -> list[dict]:
    """Rows counted from a built model, as dicts with every column (stage/unit/part parsed from the
    stable layer names)."""
    out = []
    for r in rows:
        parsed = parse_layer_name(r["name"])
        out.append({**r, "stage": parsed.stage, "unit": parsed.unit, "part": parsed.part,
                    "activations": _prod(r["output_shape"])})
    return out


_INT_COLUMNS = ("groups", "params", "non_trainable", "macs", "activations", "traffic_bytes")


def _frame(records: list[dict]) -> pd.DataFrame:
    # Each column built with its final dtype: converting afterwards took most of a cold cost_table.
    data = {col: [r[col] for r in records] for col in COLUMNS}
    for col in _INT_COLUMNS:
        data[col] = np.array(data[col], dtype=np.int64)
    data["intensity"] = np.array(data["intensity"], dtype=np.float64)
    data["unit"] = pd.array(data["unit"], dtype="Int64")
    return pd.DataFrame(data, columns=COLUMNS)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@lru_cache(maxsize=SETTINGS.config_cache_entries)
def _config_records(config: ShuffleNetConfig) -> tuple[dict, ...]:
    # Pure Python and cached: totals and aggregates need no DataFrame (issue: <= 50 ms for all
    # figures of one configuration, and sweeps over g compute five configurations).
    return tuple(_plan_records(config))


def layer_records(config: ShuffleNetConfig) -> tuple[dict, ...]:
    """The rows of `cost_table` as plain dicts (cached; treat them as read-only)."""
    return _config_records(config)


@lru_cache(maxsize=SETTINGS.cost_table_entries)
def _cost_table_cached(config: ShuffleNetConfig) -> pd.DataFrame:
    return _frame(list(_config_records(config)))


def cost_table(config: ShuffleNetConfig) -> pd.DataFrame:
    """One row per layer of `build_model(config)`, in model order.

    Columns: name, stage, unit, part, op, groups, input_shape, output_shape (H, W, C),
    params (trainable), non_trainable, macs, activations (output elements), traffic_bytes
    (memory traffic at float32: inputs + output + weights, see the module docstring) and
    intensity (macs / traffic_bytes, 0 for layers without MACs).
    """
    return _cost_table_cached(config).copy()


def op_family(op: str) -> str:
    return OP_FAMILY.get(op, FREE_FAMILY)


_SUMMED = ("params", "macs", "activations", "traffic_bytes")


def _intensity(macs: int, traffic_bytes: int) -> float:
    """MACs per byte of a group of layers: all their MACs over all their memory traffic."""
    return macs / traffic_bytes if macs and traffic_bytes else 0.0


def _aggregate(config: ShuffleNetConfig, key) -> list[dict]:
    groups: dict = {}
    for r in _config_records(config):
        k = key(r)
        g = groups.get(k)
        if g is None:
            g = groups[k] = {"stage": r["stage"], "unit": r["unit"], **dict.fromkeys(_SUMMED, 0), "layers": 0}
        for col in _SUMMED:
            g[col] += r[col]
        g["layers"] += 1
        g["output_shape"] = r["output_shape"]
    return list(groups.values())


def unit_table(config: ShuffleNetConfig) -> pd.DataFrame:
    """Per-unit sums (stem and classifier count as one 'unit' each, with unit <NA>); intensity is
    the unit's MACs over its memory traffic."""
    rows = _aggregate(config, lambda r: (r["stage"], r["unit"]))
    for r in rows:
        r["intensity"] = _intensity(r["macs"], r["traffic_bytes"])
    df = pd.DataFrame(rows, columns=["stage", "unit", *_SUMMED, "output_shape", "layers", "intensity"])
    df["unit"] = pd.array([r["unit"] for r in rows], dtype="Int64")
    return df[["stage", "unit", "params", "macs", "activations", "output_shape", "layers", "traffic_bytes",
               "intensity"]]


def stage_table(config: ShuffleNetConfig) -> pd.DataFrame:
    """Per-stage sums, stem, stage2..4 and classifier: the rows of the paper's Table 1 (other
    families: their stem, stages, head and classifier); intensity is the stage's MACs over its
    memory traffic."""
    rows = _aggregate(config, lambda r: r["stage"])
    units: dict[str, int] = {}  # counted off the plan, so every family's stages have theirs
    for r in _config_records(config):
        if r["unit"] is not None:
            units[r["stage"]] = max(units.get(r["stage"], 0), r["unit"])
    for r in rows:
        r["units"] = units.get(r["stage"], 0)
        r["channels"] = r["output_shape"][-1]
        r["intensity"] = _intensity(r["macs"], r["traffic_bytes"])
    cols = ["stage", "output_shape", "units", "params", "macs", "activations", "layers", "channels", "traffic_bytes",
            "intensity"]
    return pd.DataFrame([{c: r[c] for c in cols} for r in rows], columns=cols)


@lru_cache(maxsize=SETTINGS.config_cache_entries)
def _totals(config: ShuffleNetConfig) -> tuple:
    recs = _config_records(config)
    fc = sum(r["macs"] for r in recs if r["op"] == "fc")
    total = sum(r["macs"] for r in recs)
    return (("conv_macs", total - fc), ("fc_macs", fc), ("macs", total),
            ("params", sum(r["params"] for r in recs)), ("non_trainable", sum(r["non_trainable"] for r in recs)),
            ("activations", sum(r["activations"] for r in recs)), ("layers", len(recs)),
            ("traffic_bytes", sum(r["traffic_bytes"] for r in recs)))


def totals(config: ShuffleNetConfig) -> dict[str, int]:
    """conv_macs (paper Table 1's figure), fc_macs, macs (both), params, non_trainable,
    activations (sum of all layer outputs), layers (Keras layers without the input),
    traffic_bytes (memory traffic of all layers, see the module docstring)."""
    return dict(_totals(config))


def model_bytes(config: ShuffleNetConfig, bytes_per_weight: int = 4) -> int:
    """Size of all weights (trainable and BN statistics) at float32."""
    t = totals(config)
    return (t["params"] + t["non_trainable"]) * bytes_per_weight


# --- the second counter: walk a built Keras model -----------------------------------------

_KERAS_OPS = {
    "ZeroPadding2D": "pad", "BatchNormalization": "batchnorm", "ReLU": "relu",
    "MaxPooling2D": "maxpool", "AveragePooling2D": "avgpool", "Concatenate": "concat",
    "Add": "add", "GlobalAveragePooling2D": "global_pool", "Dense": "fc",
    "ChannelShuffle": "shuffle", "ChannelSplit": "split",
}


def keras_cost_table(model) -> pd.DataFrame:
    """Counts the same columns as `cost_table` by reading a built model's layers, weights and
    shapes (no knowledge of the configuration). Memory traffic comes from the layer's real
    input tensors (all of them), output tensor and weight variables."""
    return _frame(_records(_keras_rows(model, strict=True)))


def keras_totals(model) -> dict:
    """Multiply-adds and memory traffic of any Keras CNN (e.g. the MobileNet baseline of the
    Latency view), counted by the same rules as `keras_cost_table`: MACs of convolutions,
    depthwise convolutions and dense layers (every other layer counts none), and every layer's
    float32 inputs, output and weights as its traffic."""
    rows = _keras_rows(model, strict=False)
    return {"macs": int(sum(r["macs"] for r in rows)), "traffic_bytes": int(sum(r["traffic_bytes"] for r in rows))}


def keras_macs(model) -> int:
    """`keras_totals(model)["macs"]`."""
    return keras_totals(model)["macs"]


def _keras_rows(model, strict: bool) -> list[dict]:
    """One row per layer of a built model. `strict`: a layer type this module does not know is an
    error (a ShuffleNet model has none); otherwise it counts no MACs, named by its type."""
    records = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        in_shape = tuple(_input_shape(layer)[1:])
        out_shape = tuple(layer.output.shape[1:])
        spatial = _prod(out_shape[:-1])
        groups, macs = 1, 0
        if kind == "Conv2D":
            kh, kw, cin_g, cout = layer.kernel.shape
            groups = layer.groups
            op = f"conv{kh}x{kw}"
            macs = spatial * kh * kw * cin_g * cout
        elif kind == "GroupConv1x1":
            g, cin_g, cout_g = layer.kernel.shape
            groups = g
            op = "gconv1x1" if g > 1 else "conv1x1"
            macs = spatial * g * cin_g * cout_g
        elif kind == "DepthwiseConv2D":
            kh, kw, c, mult = layer.kernel.shape
            groups = c
            op = f"dwconv{kh}x{kw}"
            macs = spatial * kh * kw * c * mult
        elif kind == "Dense":
            cin, cout = layer.kernel.shape
            op, macs = "fc", cin * cout
        elif kind in _KERAS_OPS:
            op = _KERAS_OPS[kind]
            if kind == "ChannelShuffle":
                groups = layer.groups
            elif kind == "ReLU" and layer.max_value is not None and float(layer.max_value) == 6.0:
                op = "relu6"
        elif strict:
            raise ValueError(f"keras_cost_table does not know layer {layer.name!r} of type {kind}")
        else:
            op = kind.lower()
        params = sum(_prod(w.shape) for w in layer.trainable_weights)
        non_trainable = sum(_prod(w.shape) for w in layer.non_trainable_weights)
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        nbytes, intensity = traffic(sum(_prod(t.shape[1:]) for t in inputs), _prod(out_shape),
                                    sum(_prod(w.shape) for w in layer.weights), macs)
        records.append({
            "name": layer.name, "op": op, "groups": groups,
            "input_shape": in_shape, "output_shape": out_shape,
            "params": params, "non_trainable": non_trainable, "macs": macs,
            "traffic_bytes": nbytes, "intensity": intensity,
        })
    return records


def _input_shape(layer):
    inp = layer.input
    if isinstance(inp, (list, tuple)):  # add / concat: report the branch, i.e. the last input
        inp = inp[-1]
    return inp.shape


def clear_caches() -> None:
    """Forget cached tables (for benchmarks that time a cold computation)."""
    for cached in (_config_records, _cost_table_cached, _totals):
        cached.cache_clear()
