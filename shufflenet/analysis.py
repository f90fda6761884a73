"""Analyses built on the cost tables: the paper's Table 1 for any configuration, sweeps over
the number of groups, A/B comparisons, cost breakdowns, and the channel-shuffle argument of
Fig. 1 computed as connectivity matrices.

Pure functions of the configuration (no TensorFlow, no Streamlit); each returns a pandas
DataFrame or plain numbers so a UI only has to render them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .complexity import FREE_FAMILY, cost_table, model_bytes, op_family, stage_table, totals
from .config import ALLOWED_GROUPS, STAGES, ShuffleNetConfig
from .plan import layer_plan, shuffle_permutation
from .receptive import output_side, receptive_fields, sees_whole_input

#: Paper Table 1, "Complexity (MFLOPs)" row (1x, 224x224, blocks 4/8/4). The paper's FLOPs are
#: multiply-adds, i.e. our conv MACs rounded to millions.
PAPER_COMPLEXITY_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}

#: What one "measure" counts per multiply-add: the paper's FLOPs are MACs; tools that count a
#: multiply and an add separately report twice as many FLOPs.
MEASURES = {"MACs": 1, "FLOPs": 2}

BYTES_PER_FLOAT32 = 4


def _check_measure(measure: str) -> int:
    if measure not in MEASURES:
        raise ValueError(f"`measure` must be one of {', '.join(MEASURES)}. Received: measure={measure!r}")
    return MEASURES[measure]


# --- key figures ----------------------------------------------------------------------------

def key_figures(config: ShuffleNetConfig) -> dict[str, int | float]:
    """The headline numbers of a configuration.

    conv_macs (what paper Table 1 calls complexity: every conv, no FC), fc_macs, macs (with
    FC), params (trainable), non_trainable, model_bytes (float32 weights incl. BN statistics),
    layers (Keras layers without the input), activations (elements of all layer outputs),
    activation_bytes (the same at float32, batch 1), traffic_bytes (memory traffic of every
    layer, see `complexity`) and intensity (macs / traffic_bytes, MACs per byte; the only float).
    """
    t = totals(config)
    return {
        **t,
        "model_bytes": model_bytes(config),
        "activation_bytes": t["activations"] * BYTES_PER_FLOAT32,
        "intensity": t["macs"] / t["traffic_bytes"],
    }


# --- paper Table 1 --------------------------------------------------------------------------

def table1_layout(config: ShuffleNetConfig) -> pd.DataFrame:
    """Paper Table 1's layout for `config`: one row per layer group (Image, Conv1, MaxPool,
    Stage2..4, GlobalPool, FC) with output size, kernel, stride, repeat and output channels."""
    stages = stage_table(config).set_index("stage")
    size = config.input_size
    rows = [
        ("Image", f"{size}×{size}", "", "", "", config.channels),
        ("Conv1", f"{size // 2}×{size // 2}", "3×3", "2", "1", config.stem_width),
        ("MaxPool", _side(stages.loc["stem"].output_shape), "3×3", "2", "", config.stem_width),
    ]
    for stage, units in zip(STAGES, config.blocks):
        row = stages.loc[f"stage{stage}"]
        stride, repeat = ("2 / 1", f"1 / {units - 1}") if units > 1 else ("2", "1")
        rows.append((f"Stage{stage}", _side(row.output_shape), "", stride, repeat, int(row.channels)))
    last = _side(stages.loc["stage4"].output_shape)
    rows += [
        ("GlobalPool", "1×1", last, "", "", config.stage_widths[-1]),
        ("FC", "", "", "", "", config.num_classes),
    ]
    return pd.DataFrame(rows, columns=["layer", "output size", "kernel", "stride", "repeat",
                                       f"output channels (g = {config.groups})"])


def _side(shape) -> str:
    return f"{int(shape[0])}×{int(shape[1])}"


def sweep_groups(config: ShuffleNetConfig, groups=ALLOWED_GROUPS) -> pd.DataFrame:
    """The same network (scale, blocks, reduction, input, classes) for every number of groups.

    Columns: groups, stem, stage2, stage3, stage4 (output channels), conv_macs, fc_macs, macs,
    params, model_bytes, activations, activation_bytes. This is the story of the paper's Tables 1
    and 2: more groups allow wider layers at about the same cost.
    """
    rows = []
    for g in groups:
        c = with_groups(config, g)
        widths = dict(zip((f"stage{s}" for s in STAGES), c.stage_widths))
        rows.append({"groups": g, "stem": c.stem_width, **widths, **_figures_for_sweep(c)})
    return pd.DataFrame(rows)


def with_groups(config: ShuffleNetConfig, groups: int) -> ShuffleNetConfig:
    """`config` with another g. An explicit `stem_channels` that g does not divide (a
    checkpoint's stem) gives way to the width rule."""
    stem = config.stem_channels
    if stem is not None and stem % groups:
        stem = None
    return config.replace(groups=groups, stem_channels=stem)


def _figures_for_sweep(config: ShuffleNetConfig) -> dict[str, int]:
    f = key_figures(config)
    keep = ("conv_macs", "fc_macs", "macs", "params", "model_bytes", "activations", "activation_bytes")
    return {k: f[k] for k in keep}


def table1_by_groups(config: ShuffleNetConfig) -> pd.DataFrame:
    """Paper Table 1 turned on its side for the current scale/blocks/input: one row per g with
    the stage widths and the complexity (conv MACs, FC excluded, as the paper counts), the
    paper's printed MFLOPs for reference, and `current` marking the row of `config.groups`."""
    sweep = sweep_groups(config)
    out = sweep[["groups", "stem", "stage2", "stage3", "stage4", "conv_macs", "fc_macs", "params"]].copy()
    out["paper MFLOPs (1x, 224)"] = [PAPER_COMPLEXITY_MFLOPS[g] for g in out["groups"]]
    out["current"] = out["groups"] == config.groups
    return out


# --- cost breakdowns (Complexity view) ------------------------------------------------------

def layer_costs(config: ShuffleNetConfig, measure: str = "MACs", include_fc: bool = True,
                stages=None, ops=None, families=None) -> pd.DataFrame:
    """Per-layer costs with the op family and the chosen measure ("MACs" or "FLOPs" = 2 MACs)
    in a column named after it; optionally without the FC layer and filtered by stage names
    ("stem", "stage2", ...), ops ("gconv1x1", "dwconv3x3", ...) and op families (see
    `complexity.op_family`).

    Ends with traffic_bytes (memory traffic at float32) and intensity (MACs per byte, whatever
    the measure: one definition in every table), as in `complexity.cost_table`."""
    factor = _check_measure(measure)
    df = cost_table(config)
    df.insert(5, "family", [op_family(op) for op in df["op"]])
    df[measure] = df["macs"] * factor
    if not include_fc:
        df = df[df["op"] != "fc"]
    if stages:
        df = df[df["stage"].isin(list(stages))]
    if ops:
        df = df[df["op"].isin(list(ops))]
    if families:
        df = df[df["family"].isin(list(families))]
    cols = ["name", "stage", "unit", "part", "op", "family", "groups", "input_shape", "output_shape",
            "params", "non_trainable", measure, "activations", "traffic_bytes", "intensity"]
    return df[cols].reset_index(drop=True)


#: What `costs_by` can group by: the stage, the op family of the charts, or the plan's op.
GROUPINGS = ("stage", "family", "op")


def costs_by(config: ShuffleNetConfig, by: str = "stage", measure: str = "MACs",
             include_fc: bool = True) -> pd.DataFrame:
    """Sums of the measure, of params and of memory traffic grouped by "stage", "family" (see
    `complexity.op_family`) or "op", in model order, with each group's share of the total in
    percent and its intensity (all its MACs over all its memory traffic, in MACs per byte).

    Every group is kept: a layer without MACs or params (ReLU, shuffle, padding, add) still
    moves memory, which is the point of the traffic columns. By family, those layers' family
    (`complexity.FREE_FAMILY`) comes last."""
    if by not in GROUPINGS:
        raise ValueError(f"`by` must be one of {', '.join(map(repr, GROUPINGS))}. Received: by={by!r}")
    factor = _check_measure(measure)
    df = layer_costs(config, measure=measure, include_fc=include_fc)
    out = df.groupby(by, sort=False).agg(**{measure: (measure, "sum"), "params": ("params", "sum"),
                                            "traffic_bytes": ("traffic_bytes", "sum")}).reset_index()
    if by == "family":  # the layers without MACs come first in the model; their family reads best last
        out = pd.concat([out[out[by] != FREE_FAMILY], out[out[by] == FREE_FAMILY]], ignore_index=True)
    macs = out[measure] // factor
    out["intensity"] = (macs / out["traffic_bytes"]).where(macs > 0, 0.0)
    for col in (measure, "params", "traffic_bytes"):
        total = out[col].sum()
        out[f"{col} %"] = (100.0 * out[col] / total).round(2) if total else 0.0
    return out[[by, measure, "params", f"{measure} %", "params %", "traffic_bytes", "traffic_bytes %", "intensity"]]


def stage_summary(config: ShuffleNetConfig, measure: str = "MACs", include_fc: bool = True) -> pd.DataFrame:
    """The per-stage table: output shape, channels, units and layers of each stage (stem,
    stage2..4, classifier) with its measure, params and activations and their shares, then its
    memory traffic, that traffic's share and its intensity (MACs per byte)."""
    stages = stage_table(config)
    costs = costs_by(config, "stage", measure=measure, include_fc=include_fc)
    out = stages[["stage", "output_shape", "channels", "units", "layers"]].merge(costs, on="stage", how="left")
    for col in (measure, "params", "traffic_bytes"):
        out[col] = out[col].fillna(0).astype("int64")
        out[f"{col} %"] = out[f"{col} %"].fillna(0.0)
    out["intensity"] = out["intensity"].fillna(0.0)
    out["activations"] = stages["activations"].to_numpy()
    return out[["stage", "output_shape", "channels", "units", "layers", measure, "params", f"{measure} %",
                "params %", "activations", "traffic_bytes", "traffic_bytes %", "intensity"]]


def layer_ops(config: ShuffleNetConfig) -> list[str]:
    """The ops present in the model, in order of first appearance."""
    return list(dict.fromkeys(cost_table(config)["op"]))


# --- receptive fields (Architecture view) ---------------------------------------------------

def receptive_field_table(config: ShuffleNetConfig, by: str = "stage") -> pd.DataFrame:
    """Receptive fields (see `receptive`) per "stage" (stem, stage2..4, classifier), per "unit"
    (stem and classifier count as one each, unit <NA>) or per "layer", each group read at its
    last layer, i.e. at its output.

    Columns: stage, unit (by unit), the layer's name, part, op, kernel, stride, padding (by
    layer), layer (the last layer, by stage and unit), output_side, receptive_field (side in
    input pixels, not clipped to the image), jump (input pixels between neighbouring outputs),
    start (image coordinate of the centre of output position 0's window), rf_per_input (the
    receptive field's side over the input's side: from 1 on, one window is as wide as the
    picture), sees_whole_input (every output position sees every input pixel) and
    first_whole_input (True on the first row that sees the whole input, the point where the
    network's view first covers the picture; the global pool always does, so every table has one).

    A window as wide as the picture is not yet enough: the window of a position at the edge is
    centred on the edge, so it has to be about twice the picture's side before every position
    sees all of it (`receptive.sees_whole_input`).
    """
    if by not in ("stage", "unit", "layer"):
        raise ValueError(f"`by` must be 'stage', 'unit' or 'layer'. Received: by={by!r}")
    fields = receptive_fields(config)
    rows: dict = {}
    for spec in layer_plan(config):
        f = fields[spec.name]
        side = output_side(spec)
        figures = {"output_side": side, "receptive_field": f.size, "jump": f.jump, "start": f.start,
                   "sees_whole_input": sees_whole_input(f, side, config.input_size)}
        if by == "layer":
            rows[spec.name] = {"name": spec.name, "stage": spec.stage, "unit": spec.unit, "part": spec.part,
                               "op": spec.op, "kernel": spec.kernel, "stride": spec.stride, "padding": spec.padding,
                               **figures}
        elif by == "unit":
            rows[(spec.stage, spec.unit)] = {"stage": spec.stage, "unit": spec.unit, "layer": spec.name, **figures}
        else:
            rows[spec.stage] = {"stage": spec.stage, "layer": spec.name, **figures}
    records = list(rows.values())
    df = pd.DataFrame(records)
    if by != "stage":
        df["unit"] = pd.array([r["unit"] for r in records], dtype="Int64")
    df["start"] = df["start"].astype("float64")
    df.insert(df.columns.get_loc("jump"), "rf_per_input", df["receptive_field"] / config.input_size)
    df["first_whole_input"] = df["sees_whole_input"] & ~df["sees_whole_input"].shift(fill_value=False)
    return df


def first_whole_input(table: pd.DataFrame) -> dict:
    """The row of a `receptive_field_table` where every output position first sees the whole
    input, as a dict of its columns."""
    return table[table["first_whole_input"]].iloc[0].to_dict()


# --- A/B comparison --------------------------------------------------------------------------

def compare_stages(a: ShuffleNetConfig, b: ShuffleNetConfig) -> pd.DataFrame:
    """Per-stage comparison (stem, stage2..4, classifier, total): channels, units, MACs,
    params and activations of A and B, with B - A deltas and the B / A ratio of MACs."""
    ta = stage_table(a).set_index("stage")
    tb = stage_table(b).set_index("stage")
    rows = []
    for stage in ta.index:
        ra, rb = ta.loc[stage], tb.loc[stage]
        rows.append(_compare_row(stage, ra, rb, int(ra.channels), int(rb.channels),
                                 int(ra.units), int(rb.units)))
    total_a, total_b = ta.sum(numeric_only=True), tb.sum(numeric_only=True)
    rows.append(_compare_row("total", total_a, total_b, None, None, int(total_a.units), int(total_b.units)))
    out = pd.DataFrame(rows)
    for col in ("channels A", "channels B"):
        out[col] = out[col].astype("Int64")
    return out


def _compare_row(stage, ra, rb, ca, cb, ua, ub) -> dict:
    row = {"stage": stage, "channels A": ca, "channels B": cb, "units A": ua, "units B": ub}
    for col, label in (("macs", "MACs"), ("params", "params"), ("activations", "activations")):
        va, vb = int(ra[col]), int(rb[col])
        row.update({f"{label} A": va, f"{label} B": vb, f"Δ {label}": vb - va})
    row["MACs B/A"] = _ratio(row["MACs B"], row["MACs A"])
    return row


def compare_totals(a: ShuffleNetConfig, b: ShuffleNetConfig) -> pd.DataFrame:
    """Headline numbers of A and B (see `key_figures`) with B - A and B / A."""
    fa, fb = key_figures(a), key_figures(b)
    labels = {
        "conv_macs": "MACs without FC (Table 1)", "macs": "MACs with FC", "params": "parameters",
        "model_bytes": "model size (bytes)", "activation_bytes": "activation memory (bytes)",
        "layers": "layers",
    }
    return pd.DataFrame([
        {"figure": label, "A": fa[k], "B": fb[k], "Δ (B - A)": fb[k] - fa[k], "B/A": _ratio(fb[k], fa[k])}
        for k, label in labels.items()
    ])


def _ratio(b: float, a: float) -> float:
    return round(b / a, 4) if a else float("nan")


# --- channel shuffle (paper Sec. 3.1, Fig. 1) ----------------------------------------------

def shuffle_edges(channels: int, groups: int) -> pd.DataFrame:
    """The shuffle as a table of wires, one per output channel (paper Sec. 3.1).

    Columns: output, input (the input channel it copies), input_group (the group of the
    previous group conv that produced it) and output_group (the group of the next group conv
    that will read it). Raises ValueError when channels is not a multiple of groups.
    """

    perm = shuffle_permutation(channels, groups)
    n = channels // groups
    out = np.arange(channels)
    return pd.DataFrame({"output": out, "input": perm, "input_group": perm // n, "output_group": out // n})


def group_conv_connectivity(in_channels: int, out_channels: int, groups: int) -> np.ndarray:
    """Boolean (out, in) matrix of a group convolution (paper Sec. 3.1): output channel o reads
    input channel i iff both lie in the same one of the `groups` consecutive groups."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"`groups` must be a positive whole number. Received: groups={groups!r}")
    for name, c in (("in_channels", in_channels), ("out_channels", out_channels)):
        if c < 1 or c % groups:
            raise ValueError(f"`{name}` must be a positive multiple of groups={groups}. Received: {name}={c}")
    gi = np.arange(in_channels) // (in_channels // groups)
    go = np.arange(out_channels) // (out_channels // groups)
    return go[:, None] == gi[None, :]


@dataclasses.dataclass(frozen=True)
class InformationFlow:
    """What the outputs of two stacked group convs can see of the first one's inputs.

    `channels`: boolean (C, C) matrix, [o, i] True when output channel o of the second group
    conv depends on input channel i of the first. `groups`: (g, g) int matrix, [j, i] = how
    many of the channels read by the second conv's group j come from the first conv's group i.
    `mixes`: every output group sees every input group.
    """

    channels: np.ndarray
    groups: np.ndarray
    shuffled: bool

    @property
    def mixes(self) -> bool:
        return bool((self.groups > 0).all())

    @property
    def inputs_seen(self) -> np.ndarray:
        """For each output channel, how many input channels it depends on."""
        return self.channels.sum(axis=1)

    def by_input_group(self) -> np.ndarray:
        """`channels` for colouring: 0 where there is no path, else 1 + the input channel's group."""
        c = self.channels.shape[1]
        g = self.groups.shape[0]
        group = np.arange(c) // (c // g)
        return np.where(self.channels, group[None, :] + 1, 0)


def information_flow(channels: int, groups: int, shuffle: bool = True) -> InformationFlow:
    """Paper Fig. 1 computed: two stacked 1x1 group convs (C -> C -> C, `groups` groups), with
    or without a channel shuffle between them.

    Without the shuffle each output group depends only on its own input group (Fig. 1a);
    with it every output group receives channels from every input group (Fig. 1b/c), as long
    as each group has at least `groups` channels (channels >= groups**2).
    """

    conv = group_conv_connectivity(channels, channels, groups)
    between = np.eye(channels, dtype=bool)
    if shuffle:
        between = between[shuffle_permutation(channels, groups)]  # row k selects input perm[k]
    reach = (conv.astype(np.int64) @ between.astype(np.int64) @ conv.astype(np.int64)) > 0
    n = channels // groups
    mixing = np.zeros((groups, groups), dtype=np.int64)
    source = shuffle_permutation(channels, groups) if shuffle else np.arange(channels)
    for position, src in enumerate(source):
        mixing[position // n, src // n] += 1
    return InformationFlow(channels=reach, groups=mixing, shuffled=shuffle)


def flow_table(channels: int, groups: int) -> pd.DataFrame:
    """Summary of Fig. 1 for the UI: per case (without / with shuffle), how many input
    channels each output depends on (min and max), and whether every group is mixed."""
    rows = []
    for shuffle in (False, True):
        f = information_flow(channels, groups, shuffle)
        seen = f.inputs_seen
        rows.append({
            "case": "with shuffle" if shuffle else "without shuffle",
            "inputs seen per output (min)": int(seen.min()),
            "inputs seen per output (max)": int(seen.max()),
            "of": channels,
            "input groups reaching each output group": int((f.groups > 0).sum(axis=1).min()),
            "every group mixed": f.mixes,
        })
    return pd.DataFrame(rows)


def shuffle_width_choices(groups: int, largest: int = 96) -> list[int]:
    """Layer widths for the shuffle picture: multiples of g up to `largest` (a shuffle needs
    channels divisible by g)."""
    return list(range(groups, largest + 1, groups))


def default_shuffle_width(groups: int) -> int:
    """A width that shows the full mixing: g² channels (each group then has g channels, one
    for every group), at least 8, a multiple of g."""
    return max(groups * groups, -(-8 // groups) * groups)
