"""Cost accounting as pure functions of the configuration: one row per Keras layer, read off
the layer plan (`plan.layer_plan`).

"MACs" are multiply-accumulates, what the paper calls FLOPs. Paper Table 1's complexity row
counts the stem conv and every 1x1 / 3x3 conv, and leaves out the FC layer (reported
separately here as `fc_macs`), BN, ReLU, pooling, add, concat and shuffle. Parameters are the
trainable ones (conv kernels, BN gamma/beta, FC weights and bias); BN moving statistics are
counted apart as `non_trainable`.

`keras_cost_table(model)` is a second, independent counter that walks a built model; the
tests check that both agree exactly.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from .config import ShuffleNetConfig
from .naming import parse_layer_name
from .plan import layer_plan

COLUMNS = [
    "name", "stage", "unit", "part", "op", "groups", "input_shape", "output_shape",
    "params", "non_trainable", "macs", "activations",
]

#: Coarse op families used by charts ("where do the MACs go?").
OP_FAMILY = {
    "conv3x3": "stem conv",
    "gconv1x1": "1x1 group conv",
    "conv1x1": "1x1 conv",
    "dwconv3x3": "3x3 depthwise conv",
    "fc": "fully connected",
    "batchnorm": "batch norm",
}
_FREE_FAMILY = "other (no MACs)"


def _plan_records(config: ShuffleNetConfig) -> list[dict]:
    """The layer plan's rows with the cost-table columns (no name parsing: the plan knows them)."""
    return [{"name": spec.name, "stage": spec.stage, "unit": spec.unit, "part": spec.part, "op": spec.op,
             "groups": spec.groups, "input_shape": spec.input_shape, "output_shape": spec.output_shape,
             "params": spec.params, "non_trainable": spec.non_trainable, "macs": spec.macs,
             "activations": spec.activations} for spec in layer_plan(config)]


def _records(rows) -> list[dict]:
    """Rows counted from a built model, as dicts with every column (stage/unit/part parsed from the
    stable layer names)."""
    out = []
    for r in rows:
        parsed = parse_layer_name(r["name"])
        out.append({**r, "stage": parsed.stage, "unit": parsed.unit, "part": parsed.part,
                    "activations": _prod(r["output_shape"])})
    return out


def _frame(records: list[dict]) -> pd.DataFrame:
    data = {col: [r[col] for r in records] for col in COLUMNS}
    df = pd.DataFrame(data, columns=COLUMNS)
    df["unit"] = pd.array(data["unit"], dtype="Int64")
    for col in ("params", "non_trainable", "macs", "activations", "groups"):
        df[col] = df[col].astype("int64")
    return df


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@lru_cache(maxsize=256)
def _config_records(config: ShuffleNetConfig) -> tuple[dict, ...]:
    # Pure Python and cached: totals and aggregates need no DataFrame (issue: <= 50 ms for all
    # figures of one configuration, and sweeps over g compute five configurations).
    return tuple(_plan_records(config))


def layer_records(config: ShuffleNetConfig) -> tuple[dict, ...]:
    """The rows of `cost_table` as plain dicts (cached; treat them as read-only)."""
    return _config_records(config)


@lru_cache(maxsize=64)
def _cost_table_cached(config: ShuffleNetConfig) -> pd.DataFrame:
    return _frame(list(_config_records(config)))


def cost_table(config: ShuffleNetConfig) -> pd.DataFrame:
    """One row per layer of `build_model(config)`, in model order.

    Columns: name, stage, unit, part, op, groups, input_shape, output_shape (H, W, C),
    params (trainable), non_trainable, macs, activations (output elements).
    """
    return _cost_table_cached(config).copy()


def op_family(op: str) -> str:
    return OP_FAMILY.get(op, _FREE_FAMILY)


_SUMMED = ("params", "macs", "activations")


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
    """Per-unit sums (stem and classifier count as one 'unit' each, with unit <NA>)."""
    rows = _aggregate(config, lambda r: (r["stage"], r["unit"]))
    df = pd.DataFrame(rows, columns=["stage", "unit", *_SUMMED, "output_shape", "layers"])
    df["unit"] = pd.array([r["unit"] for r in rows], dtype="Int64")
    return df[["stage", "unit", "params", "macs", "activations", "output_shape", "layers"]]


def stage_table(config: ShuffleNetConfig) -> pd.DataFrame:
    """Per-stage sums, stem, stage2..4 and classifier: the rows of the paper's Table 1."""
    rows = _aggregate(config, lambda r: r["stage"])
    units = dict(zip((f"stage{s}" for s in (2, 3, 4)), config.blocks))
    for r in rows:
        r["units"] = units.get(r["stage"], 0)
        r["channels"] = r["output_shape"][-1]
    cols = ["stage", "output_shape", "units", "params", "macs", "activations", "layers", "channels"]
    return pd.DataFrame([{c: r[c] for c in cols} for r in rows], columns=cols)


@lru_cache(maxsize=256)
def _totals(config: ShuffleNetConfig) -> tuple:
    recs = _config_records(config)
    fc = sum(r["macs"] for r in recs if r["op"] == "fc")
    total = sum(r["macs"] for r in recs)
    return (("conv_macs", total - fc), ("fc_macs", fc), ("macs", total),
            ("params", sum(r["params"] for r in recs)), ("non_trainable", sum(r["non_trainable"] for r in recs)),
            ("activations", sum(r["activations"] for r in recs)), ("layers", len(recs)))


def totals(config: ShuffleNetConfig) -> dict[str, int]:
    """conv_macs (paper Table 1's figure), fc_macs, macs (both), params, non_trainable,
    activations (sum of all layer outputs), layers (Keras layers without the input)."""
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
    "ChannelShuffle": "shuffle", "DepthwiseConv2D": "dwconv3x3",
}


def keras_cost_table(model) -> pd.DataFrame:
    """Counts the same columns as `cost_table` by reading a built model's layers, weights and
    shapes (no knowledge of the configuration)."""
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
        else:
            raise ValueError(f"keras_cost_table does not know layer {layer.name!r} of type {kind}")
        records.append({
            "name": layer.name, "op": op, "groups": groups,
            "input_shape": in_shape, "output_shape": out_shape,
            "params": sum(_prod(w.shape) for w in layer.trainable_weights),
            "non_trainable": sum(_prod(w.shape) for w in layer.non_trainable_weights),
            "macs": macs,
        })
    return _frame(_records(records))


def _input_shape(layer):
    inp = layer.input
    if isinstance(inp, (list, tuple)):  # add / concat: report the branch, i.e. the last input
        inp = inp[-1]
    return inp.shape


def clear_caches() -> None:
    """Forget cached tables (for benchmarks that time a cold computation)."""
    for cached in (_config_records, _cost_table_cached, _totals):
        cached.cache_clear()
