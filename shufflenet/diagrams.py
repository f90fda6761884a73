"""Architecture diagrams as Graphviz DOT (built with the `graphviz` package).

- `macro_diagram`: stem, stages and head with output shapes, channels, unit counts, MACs.
- `micro_diagram`: one stride-1 or stride-2 unit of a stage (paper Fig. 2) with the real
  channel counts and groups on every node and edge.
- `full_diagram`: every layer, clustered by stage and unit, optionally one stage only.

DOT source needs no binary; `to_svg` needs Graphviz's `dot` and says so when it is missing.
"""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import graphviz

from .complexity import layer_records, stage_table
from .config import STAGES, ShuffleNetConfig
from .plan import UnitSpec, stem_sizes, unit_specs

_FONT = "Helvetica"
COLORS = {
    "input": "#eeeeee", "stem": "#cfe2f3", "stage2": "#d9ead3", "stage3": "#fff2cc",
    "stage4": "#fce5cd", "classifier": "#ead1dc", "gconv": "#b6d7a8", "conv": "#a4c2f4",
    "shuffle": "#f9cb9c", "dwconv": "#ffe599", "bn": "#f3f3f3", "pool": "#d0e0e3",
    "merge": "#d5a6bd",
}


class DiagramRenderError(RuntimeError):
    """Raised when a diagram cannot be rendered to an image (e.g. no `dot` binary)."""


def _graph(name: str, rankdir: str = "TB") -> graphviz.Digraph:
    g = graphviz.Digraph(name)
    g.attr(rankdir=rankdir, fontname=_FONT, nodesep="0.25", ranksep="0.3")
    g.attr("node", shape="box", style="rounded,filled", fontname=_FONT, fontsize="11")
    g.attr("edge", fontname=_FONT, fontsize="9")
    return g


def _shape(shape) -> str:
    return "×".join(str(int(d)) for d in shape)


def _mmacs(macs: int) -> str:
    return f"{macs / 1e6:,.2f} M MACs"


def macro_diagram(config: ShuffleNetConfig) -> graphviz.Digraph:
    """Stem -> stage 2 -> stage 3 -> stage 4 -> classifier, as in paper Table 1."""
    stages = stage_table(config).set_index("stage")
    g = _graph("macro")
    size = config.input_size
    g.node("input", f"Input\n{_shape((size, size, config.channels))}", fillcolor=COLORS["input"])
    s1, s2 = stem_sizes(config)
    stem = stages.loc["stem"]
    g.node("stem", f"Stem: Conv1 3×3, stride 2 + BN + ReLU → {_shape((s1, s1, config.stem_width))}\n"
           f"MaxPool 3×3, stride 2 → {_shape(stem.output_shape)}\n{_mmacs(stem.macs)}",
           fillcolor=COLORS["stem"])
    g.edge("input", "stem", label=f" {config.channels} ch")
    prev = "stem"
    for stage in STAGES:
        row = stages.loc[f"stage{stage}"]
        repeats = f"1 unit stride 2 + {row.units - 1} units stride 1" if row.units > 1 else "1 unit stride 2"
        g.node(f"stage{stage}",
               f"Stage {stage}: {repeats}\noutput {_shape(row.output_shape)}, g = {config.groups}\n"
               f"{_mmacs(row.macs)}, {row.params:,} params",
               fillcolor=COLORS[f"stage{stage}"])
        prev_channels = stages.loc[prev].channels
        g.edge(prev, f"stage{stage}", label=f" {prev_channels} ch")
        prev = f"stage{stage}"
    head = stages.loc["classifier"]
    g.node("classifier", f"Global average pool → FC {config.num_classes} + softmax\n"
           f"{_mmacs(head.macs)} (FC), {head.params:,} params", fillcolor=COLORS["classifier"])
    g.edge(prev, "classifier", label=f" {stages.loc[prev].channels} ch")
    return g


def _find_unit(config: ShuffleNetConfig, stage: int, stride: int) -> UnitSpec:
    if stage not in STAGES:
        raise ValueError(f"`stage` must be one of {', '.join(map(str, STAGES))}. Received: stage={stage!r}")
    if stride not in (1, 2):
        raise ValueError(f"`stride` must be 1 or 2. Received: stride={stride!r}")
    for spec in unit_specs(config):
        if spec.stage == stage and spec.stride == stride:
            return spec
    raise ValueError(
        f"Stage {stage} has only {config.blocks[stage - 2]} unit(s), so it has no stride-1 unit; "
        "raise its number of blocks to 2 or more."
    )


def micro_diagram(config: ShuffleNetConfig, stage: int = 3, stride: int = 1) -> graphviz.Digraph:
    """One ShuffleNet unit (paper Fig. 2b for stride 1, Fig. 2c for stride 2) of `stage`."""
    u = _find_unit(config, stage, stride)
    g = _graph(f"micro_stage{stage}_stride{stride}")
    g.attr(label=f"Stage {stage}, unit {u.unit} (stride {stride})", labelloc="t", fontsize="13")
    hin, hout = u.in_size, u.out_size
    g.node("in", f"Input {_shape((hin, hin, u.in_channels))}", fillcolor=COLORS["input"])
    kind1 = "1×1 Conv (not grouped, Sec. 3.3)" if u.groups1 == 1 and u.groups > 1 else (
        f"1×1 GConv, g = {u.groups1}" if u.groups1 > 1 else "1×1 Conv")
    g.node("gconv1", f"{kind1}\n{u.in_channels} → {u.bottleneck}", fillcolor=COLORS["gconv"])
    g.node("bnrelu1", "BN + ReLU", fillcolor=COLORS["bn"])
    g.edge("in", "gconv1", label=f" {u.in_channels}")
    g.edge("gconv1", "bnrelu1", label=f" {u.bottleneck}")
    last = "bnrelu1"
    if u.groups > 1:
        g.node("shuffle", f"Channel shuffle, g = {u.groups}\n({u.groups} × {u.bottleneck // u.groups} → "
               f"{u.bottleneck // u.groups} × {u.groups})", fillcolor=COLORS["shuffle"])
        g.edge(last, "shuffle", label=f" {u.bottleneck}")
        last = "shuffle"
    g.node("dw", f"3×3 DWConv, stride {stride}\n{u.bottleneck} channels, {_shape((hout, hout, u.bottleneck))}",
           fillcolor=COLORS["dwconv"])
    g.edge(last, "dw", label=f" {u.bottleneck}")
    g.node("bn2", "BN (no ReLU)", fillcolor=COLORS["bn"])
    g.edge("dw", "bn2", label=f" {u.bottleneck}")
    kind2 = f"1×1 GConv, g = {u.groups}" if u.groups > 1 else "1×1 Conv"
    g.node("gconv2", f"{kind2}\n{u.bottleneck} → {u.branch_out}", fillcolor=COLORS["gconv"])
    g.edge("bn2", "gconv2", label=f" {u.bottleneck}")
    g.node("bn3", "BN", fillcolor=COLORS["bn"])
    g.edge("gconv2", "bn3", label=f" {u.branch_out}")
    if stride == 2:
        g.node("short", f"3×3 AVG Pool, stride 2\n{_shape((hout, hout, u.in_channels))}",
               fillcolor=COLORS["pool"])
        g.edge("in", "short", label=f" {u.in_channels}")
        g.node("merge", f"Concat\n{u.in_channels} + {u.branch_out} = {u.out_channels}", fillcolor=COLORS["merge"])
        g.edge("short", "merge", label=f" {u.in_channels}")
    else:
        g.node("merge", "Add (identity shortcut)", fillcolor=COLORS["merge"], shape="circle")
        g.edge("in", "merge", label=f" {u.in_channels}", style="dashed")
    g.edge("bn3", "merge", label=f" {u.branch_out}")
    g.node("relu", "ReLU", fillcolor=COLORS["bn"])
    g.edge("merge", "relu", label=f" {u.out_channels}")
    g.node("out", f"Output {_shape((hout, hout, u.out_channels))}", fillcolor=COLORS["input"])
    g.edge("relu", "out", label=f" {u.out_channels}")
    return g


def _node_color(op: str) -> str:
    if op in ("gconv1x1", "conv1x1"):
        return COLORS["gconv"]
    return {
        "conv3x3": COLORS["conv"], "shuffle": COLORS["shuffle"], "dwconv3x3": COLORS["dwconv"],
        "maxpool": COLORS["pool"], "avgpool": COLORS["pool"], "global_pool": COLORS["pool"],
        "add": COLORS["merge"], "concat": COLORS["merge"], "fc": COLORS["classifier"],
    }.get(op, COLORS["bn"])


def layer_edges(config: ShuffleNetConfig) -> list[tuple[str, str]]:
    """Edges (from, to) of the layer graph of `build_model(config)`, from the config alone."""
    edges: list[tuple[str, str]] = []
    prev = "image"
    for name in (r["name"] for r in layer_records(config)):
        if name.endswith(("_shortcut_pad", "_shortcut_pool")):
            continue
        if name.endswith("_gconv1"):
            unit_input = prev
        edges.append((prev, name))
        if name.endswith(("_concat", "_add")):
            if name.endswith("_concat"):
                base = name[: -len("concat")]
                edges += [(unit_input, base + "shortcut_pad"), (base + "shortcut_pad", base + "shortcut_pool"),
                          (base + "shortcut_pool", name)]
            else:
                edges.append((unit_input, name))
        prev = name
    return edges


def full_diagram(config: ShuffleNetConfig, stage: int | str | None = None) -> graphviz.Digraph:
    """Every layer, clustered by stage and unit; `stage` (2, 3, 4, "stem", "classifier")
    restricts it to one stage."""
    rows = layer_records(config)
    if stage is not None:
        key = f"stage{stage}" if isinstance(stage, int) else str(stage)
        allowed = ["stem", *(f"stage{s}" for s in STAGES), "classifier"]
        if key not in allowed:
            raise ValueError(f"`stage` must be one of 2, 3, 4, 'stem', 'classifier'. Received: stage={stage!r}")
        rows = [r for r in rows if r["stage"] == key]
    keep = {r["name"] for r in rows}
    g = _graph("full")
    clusters: dict[tuple, graphviz.Digraph] = {}
    for row in rows:
        row = SimpleNamespace(**row)
        key = (row.stage, row.unit)
        if key not in clusters:
            c = graphviz.Digraph(f"cluster_{row.stage}_{key[1] or 0}")
            label = row.stage if key[1] is None else f"{row.stage} unit {key[1]}"
            c.attr(label=label, style="rounded,filled", fillcolor=COLORS.get(row.stage, "#ffffff"),
                   fontname=_FONT)
            clusters[key] = c
        detail = f"{row.part} ({row.op}{', g=' + str(row.groups) if row.op in ('gconv1x1', 'shuffle') else ''})"
        clusters[key].node(row.name, f"{detail}\n{_shape(row.output_shape)}", fillcolor=_node_color(row.op),
                           fontsize="9")
    for c in clusters.values():
        g.subgraph(c)
    for a, b in layer_edges(config):
        if a in keep and b in keep:
            g.edge(a, b)
        elif b in keep and a not in keep and (a == "image" or stage is not None):
            if a not in {"image"} | keep:
                g.node(a, a, shape="plaintext", style="")
            elif a == "image":
                g.node("image", "input", fillcolor=COLORS["input"])
            g.edge(a, b)
    return g


def dot_available() -> bool:
    return shutil.which("dot") is not None


def to_svg(graph: graphviz.Digraph) -> str:
    """Render to SVG with Graphviz's `dot`; DiagramRenderError with a fix when it is missing."""
    if not dot_available():
        raise DiagramRenderError(
            "SVG export needs Graphviz's `dot` program, which is not installed. Install it with "
            "`apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS); the DOT "
            "source can still be downloaded and rendered elsewhere."
        )
    try:
        return graph.pipe(format="svg").decode("utf-8")
    except graphviz.ExecutableNotFound as exc:  # removed between the check and the call
        raise DiagramRenderError(f"Graphviz's `dot` could not be run: {exc}") from exc
