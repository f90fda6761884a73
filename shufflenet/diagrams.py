"""Architecture diagrams as Graphviz DOT (built with the `graphviz` package), drawn from the
layer plan (`plan.layer_plan`), so a diagram cannot show a layer the network does not have.

- `macro_diagram`: stem, stages and head with output shapes, channels, unit counts, MACs.
- `micro_diagram`: one stride-1 or stride-2 unit of a stage (paper Fig. 2), drawn from that
  unit's own layers (pads merged into their consumers, a BN followed by ReLU as one node), with
  the real channel counts and groups on every node and edge.
- `full_diagram`: every layer, clustered by stage and unit; optionally one stage, or a range of
  its units. Its nodes and edges are the plan's layers and their `inputs`.

The other families (`shufflenet.families`) get the macro diagram of their own parts
(`family_macro_diagram`), the full layer graph and the micro diagram of any unit, all from
their plans.

The macro and the full diagram can colour their nodes by a metric (`METRICS`: MACs, params,
activation memory, memory traffic, measured latency) on a colour-blind-friendly sequential
scale (viridis), with a legend and the exact value on every node; `rankdir="LR"` lays any
diagram out left to right, for slides.

DOT source needs no binary; `render` (SVG, PNG, PDF) needs Graphviz's `dot` and says so when
it is missing.
"""

from __future__ import annotations

import dataclasses
import html
import math
import shutil
import subprocess
from collections.abc import Mapping

import graphviz

from .complexity import BYTES_PER_VALUE, cost_table, layer_records, stage_table
from .config import STAGES, ShuffleNetConfig
from .naming import PARTS
from .plan import OPS, LayerSpec, UnitSpec, fold_pads, layer_plan, stem_sizes, unit_layers, unit_specs

_FONT = "Helvetica"
COLORS = {
    "input": "#eeeeee", "stem": "#cfe2f3", "stage2": "#d9ead3", "stage3": "#fff2cc",
    "stage4": "#fce5cd", "classifier": "#ead1dc", "gconv": "#b6d7a8", "conv": "#a4c2f4",
    "shuffle": "#f9cb9c", "dwconv": "#ffe599", "bn": "#f3f3f3", "pool": "#d0e0e3",
    "merge": "#d5a6bd",
}

#: Layouts: top to bottom (the paper's figures) or left to right (wide slides).
RANKDIRS = ("TB", "LR")

#: Output formats `render` makes with Graphviz's `dot`, and how each file starts.
FORMATS = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}
#: PNG resolution: twice the screen's, so a figure stays sharp on a projected slide.
PNG_DPI = 192
#: Longest a layout may take (the whole network's layer graph takes well under a second).
RENDER_TIMEOUT_S = 60

#: Stops of the viridis colour map (perceptually uniform, readable with every common colour-vision
#: deficiency and in greyscale); values between stops are interpolated.
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
           "#b5de2b", "#fde725")
ZERO_COLOR = "#ffffff"  # a layer without any of the metric (e.g. the MACs of a BN)
MISSING_COLOR = "#bdbdbd"  # a layer with no measurement
#: Values whose largest is at least this many times the smallest (non-zero) are coloured on a log scale.
LOG_SPAN = 100.0


@dataclasses.dataclass(frozen=True)
class Metric:
    """A quantity per layer that a heat map can show."""

    key: str
    label: str  # "MACs", "activation memory"
    unit: str  # what the numbers count: "MACs", "params", "B", "ms"
    help: str  # where the number comes from


#: The heat-map metrics, by key.
METRICS = {m.key: m for m in (
    Metric("macs", "MACs", "MACs", "multiply-accumulates, as in the cost table"),
    Metric("params", "params", "params", "trainable parameters, as in the cost table"),
    Metric("activation_bytes", "activation memory", "B",
           f"output elements × {BYTES_PER_VALUE} bytes (float32, batch 1)"),
    Metric("traffic_bytes", "memory traffic", "B", "bytes read and written, the cost table's `traffic_bytes`"),
    Metric("latency_ms", "latency", "ms", "measured time per layer, supplied by the caller"),
)}


class DiagramRenderError(RuntimeError):
    """Raised when a diagram cannot be rendered to an image (e.g. no `dot` binary)."""


def _graph(name: str, rankdir: str = "TB") -> graphviz.Digraph:
    if rankdir not in RANKDIRS:
        raise ValueError(f"`rankdir` must be 'TB' (top to bottom) or 'LR' (left to right). Received: {rankdir!r}")
    g = graphviz.Digraph(name)
    # A white card with a margin: the diagrams stay legible under a dark page theme too.
    g.attr(rankdir=rankdir, fontname=_FONT, nodesep="0.25", ranksep="0.3", bgcolor="white", pad="0.2")
    g.attr("node", shape="box", style="rounded,filled", fontname=_FONT, fontsize="11")
    g.attr("edge", fontname=_FONT, fontsize="9")
    return g


def _shape(shape) -> str:
    return "×".join(str(int(d)) for d in shape)


def _mmacs(macs: int) -> str:
    return f"{macs / 1e6:,.2f} M MACs"


# --- metrics and the colour scale -----------------------------------------------------------

def _check_metric(metric: str | None) -> Metric | None:
    if metric in (None, "default"):
        return None
    if metric not in METRICS:
        raise ValueError(f"`metric` must be 'default' or one of {', '.join(METRICS)}. Received: metric={metric!r}")
    return METRICS[metric]


def _check_latency(config: ShuffleNetConfig, latency) -> dict[str, float]:
    if latency is None:
        raise ValueError("The latency heat map needs measured times: pass `latency` as a mapping from layer name "
                         "to milliseconds (e.g. measured on `build_model(config)`, one entry per layer).")
    items = latency.items() if isinstance(latency, Mapping) else latency
    try:
        times = {str(name): ms for name, ms in items}
    except (TypeError, ValueError):
        raise ValueError("`latency` must map layer names to milliseconds, e.g. {'stem_conv': 0.42}. "
                         f"Received: {type(latency).__name__}") from None
    known = {spec.name for spec in layer_plan(config)}
    unknown = sorted(set(times) - known)
    if unknown:
        raise ValueError(f"`latency` names {len(unknown)} layer(s) this network does not have "
                         f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}); pass the times "
                         "measured on `build_model(config)` of this configuration.")
    for name, ms in times.items():
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
            raise ValueError(f"`latency` must hold finite milliseconds >= 0. Received: {name}={ms!r}")
    return {name: float(ms) for name, ms in times.items()}


def layer_values(config: ShuffleNetConfig, metric: str, latency=None) -> dict[str, int | float | None]:
    """`metric` (a key of `METRICS`) for every layer of `config`, by layer name; None for a
    layer without a latency measurement. MACs, params and activations are the cost table's
    (`complexity.cost_table`) columns; memory traffic is its `traffic_bytes` column."""
    m = _check_metric(metric)
    if m is None:
        raise ValueError("`metric` 'default' colours by stage and op and has no values; choose one of "
                         f"{', '.join(METRICS)}.")
    records = layer_records(config)
    if m.key == "macs":
        return {r["name"]: int(r["macs"]) for r in records}
    if m.key == "params":
        return {r["name"]: int(r["params"]) for r in records}
    if m.key == "activation_bytes":
        return {r["name"]: int(r["activations"]) * BYTES_PER_VALUE for r in records}
    if m.key == "traffic_bytes":
        table = cost_table(config)
        if "traffic_bytes" not in table.columns:
            raise ValueError("The cost table of this version has no `traffic_bytes` column, so there is no memory "
                             "traffic to colour by; choose another metric.")
        return {name: int(v) for name, v in zip(table["name"], table["traffic_bytes"])}
    times = _check_latency(config, latency)
    return {r["name"]: times.get(r["name"]) for r in records}


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def viridis(fraction: float) -> str:
    """The viridis colour at `fraction` (0: low, dark purple; 1: high, yellow), as #rrggbb."""
    x = min(max(float(fraction), 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(x), len(VIRIDIS) - 2)
    a, b, t = _rgb(VIRIDIS[i]), _rgb(VIRIDIS[i + 1]), x - i
    return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(a, b))


def text_color(fill: str) -> str:
    """Black or white, whichever reads better on `fill` (relative luminance, WCAG)."""
    def lin(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in _rgb(fill))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"


def _compact(value: float, unit: str) -> str:
    """Short numbers for the legend's ticks: 4.7 k MACs, 1.2 MiB, 0.412 ms."""
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit == "B":
        for name, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if value >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.3g} B"
    for name, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {name}"
    return f"{value:.3g}"


def format_value(value: int | float | None, metric: Metric) -> str:
    """The exact value as a node shows it: `5,419,008 MACs`, `301,056 B (294 KiB)`, `0.412 ms`."""
    if value is None:
        return f"{metric.label}: not measured"
    if metric.unit == "ms":
        return f"{value:,.3f} ms"
    if metric.unit == "B":
        return f"{int(value):,} B" + (f" ({_compact(value, 'B')})" if value >= 1024 else "")
    return f"{int(value):,} {metric.unit}"


@dataclasses.dataclass(frozen=True)
class HeatScale:
    """Maps the values of one diagram's nodes onto viridis: 0 is white, a missing measurement
    grey; the positive values run from `low` to `high`, on a log scale when they span
    `LOG_SPAN` or more (a linear scale would paint all but the largest layers the same)."""

    metric: Metric
    low: float | None  # smallest positive value (None: no positive values)
    high: float | None
    log: bool
    has_zero: bool
    has_missing: bool
    per: str  # "layer" or "stage", for the legend's title

    @classmethod
    def of(cls, metric: Metric, values, per: str) -> HeatScale:
        values = list(values)
        positive = [v for v in values if v is not None and v > 0]
        low, high = (min(positive), max(positive)) if positive else (None, None)
        return cls(metric, low, high, bool(positive) and high / low >= LOG_SPAN,
                   any(v == 0 for v in values if v is not None), any(v is None for v in values), per)

    def fraction(self, value: float) -> float:
        if self.high == self.low:
            return 0.5
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def at(self, fraction: float) -> float:
        """The value at `fraction` of the scale (inverse of `fraction`)."""
        if self.log:
            return math.exp(math.log(self.low) + fraction * (math.log(self.high) - math.log(self.low)))
        return self.low + fraction * (self.high - self.low)

    def color(self, value) -> str:
        if value is None:
            return MISSING_COLOR
        if value == 0:
            return ZERO_COLOR
        return viridis(self.fraction(value))

    def node_attrs(self, value) -> dict[str, str]:
        fill = self.color(value)
        attrs = {"fillcolor": fill, "fontcolor": text_color(fill)}
        if value is None:
            attrs["style"] = "rounded,filled,dashed"
        return attrs

    def legend_label(self, vertical: bool = False) -> str:
        """An HTML-like Graphviz label: title, a colour bar from low to high with ticks, the exact
        range, and what white and grey mean. `vertical`: the bar stands, high at the top (a narrow
        legend for left-to-right diagrams, whose width is what a slide is short of)."""
        m, steps = self.metric, 5
        span = 2 if vertical else steps  # a vertical bar has a column of swatches and one of ticks
        sep = "<BR/>" if vertical else " "

        def row(text: str, bold: bool = False) -> str:
            text = sep.join(html.escape(part) for part in text.split("\n"))
            return f'<TR><TD COLSPAN="{span}">{"<B>" + text + "</B>" if bold else text}</TD></TR>'

        rows = [row(f"Colour: {m.label}\nper {self.per}", bold=True)]
        if self.low is not None:
            scale = "log scale" if self.log else "linear scale"
            if self.log:
                scale += f",\nvalues span {math.log10(self.high / self.low):.1f}\norders of magnitude"
            rows.append(row(f"{scale},\nlow → high"))
            fractions = [i / (steps - 1) for i in range(steps)]

            def swatch(f: float) -> str:
                return f'<TD BGCOLOR="{viridis(f)}" WIDTH="{24 if vertical else 46}" HEIGHT="14"> </TD>'

            def tick(f: float) -> str:
                return f'<TD ALIGN="LEFT">{html.escape(_compact(self.at(f), m.unit))}</TD>'

            if vertical:
                rows += [f"<TR>{swatch(f)}{tick(f)}</TR>" for f in reversed(fractions)]
            else:
                rows.append("<TR>" + "".join(swatch(f) for f in fractions) + "</TR>")
                rows.append("<TR>" + "".join(tick(f).replace(' ALIGN="LEFT"', "") for f in fractions) + "</TR>")
            rows.append(row(f"low {format_value(self.low, m)}\n→ high {format_value(self.high, m)}"))
        notes = []
        if self.has_zero:
            notes.append(f"white: 0 {m.unit}")
        if self.has_missing:
            notes.append("grey, dashed: not measured")
        if notes:
            rows.append(row("\n".join(notes) if vertical else "; ".join(notes)))
        return ('<<TABLE BORDER="1" COLOR="#999999" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" BGCOLOR="#ffffff">'
                + "".join(rows) + "</TABLE>>")


def _add_legend(g: graphviz.Digraph, scale: HeatScale, rankdir: str) -> None:
    g.node("legend", scale.legend_label(vertical=rankdir == "LR"), shape="plaintext", style="", fontsize="10")


# --- the macro diagram ----------------------------------------------------------------------

def _stage_values(config: ShuffleNetConfig, metric: Metric, latency) -> dict[str, int | float | None]:
    """The metric summed over each part's layers (stem, stages, classifier); None for a part
    with any layer unmeasured (a partial sum would read as a small total)."""
    values = layer_values(config, metric.key, latency)
    sums: dict[str, int | float | None] = {}
    for spec in layer_plan(config):
        value, total = values[spec.name], sums.get(spec.stage, 0)
        sums[spec.stage] = None if value is None or total is None else total + value
    return sums


def macro_diagram(config: ShuffleNetConfig, metric: str | None = None, latency=None,
                  rankdir: str = "TB") -> graphviz.Digraph:
    """Stem -> stage 2 -> stage 3 -> stage 4 -> classifier, as in paper Table 1; `metric`
    colours each part by its sum of that metric (see `layer_values`). Another family's
    configuration (`shufflenet.families`) gets the same diagram of its own parts
    (`family_macro_diagram`)."""
    if not isinstance(config, ShuffleNetConfig):
        return family_macro_diagram(config, metric, latency, rankdir)
    m = _check_metric(metric)
    stages = stage_table(config).set_index("stage")
    values = _stage_values(config, m, latency) if m else {}
    scale = HeatScale.of(m, values.values(), "stage") if m else None

    def fill(part: str) -> dict[str, str]:
        return scale.node_attrs(values[part]) if scale else {"fillcolor": COLORS[part]}

    # Top to bottom, a node's phrases share lines; left to right each gets a line of its own, so
    # the nodes are narrow and the row of six fits a slide (and the page) legibly.
    wide = rankdir == "TB"

    def lines(*groups: tuple[str, ...]) -> str:
        joined = ((", " if wide else "\n").join(p for p in group if p) for group in groups)
        return "\n".join(line for line in joined if line)

    def costs(part: str, fc: bool = False) -> tuple[tuple[str, ...], ...]:
        """The MACs and params; with a heat map, the metric's exact value is among them (MACs,
        params) or on a line of its own."""
        row = stages.loc[part]
        macs = _mmacs(row.macs)
        if m and m.key == "macs":
            macs = format_value(values[part], m)
        macs += " (FC)" if fc else ""
        params = f"{row.params:,} params" if m or part != "stem" else ""
        extra = format_value(values[part], m) if m and m.key not in ("macs", "params") else ""
        return (macs, params), (extra,)

    g = _graph("macro", rankdir)
    size = config.input_size
    g.node("input", f"Input\n{_shape((size, size, config.channels))}", fillcolor=COLORS["input"])
    s1, _s2 = stem_sizes(config)
    conv = ("Conv1 3×3, stride 2", "+ BN + ReLU", f"→ {_shape((s1, s1, config.stem_width))}")
    pool = ("MaxPool 3×3, stride 2", f"→ {_shape(stages.loc['stem'].output_shape)}")
    if wide:
        conv, pool = (f"Stem: {' '.join(conv)}",), (" ".join(pool),)
    else:
        conv = ("Stem", *conv)
    g.node("stem", lines(conv, pool, *costs("stem")), **fill("stem"))
    def channels(part: str) -> dict[str, str]:
        # Left to right, the output shapes on the nodes say the channels: no edge labels to widen the row.
        return {"label": f" {stages.loc[part].channels if part != 'input' else config.channels} ch"} if wide else {}

    g.edge("input", "stem", **channels("input"))
    prev = "stem"
    shuffle_note = "" if config.shuffle or config.groups == 1 else "no shuffle (ablation)"
    for stage in STAGES:
        part = f"stage{stage}"
        row = stages.loc[part]
        more = row.units - 1
        repeats = ("1 unit stride 2", f"{more} unit{'s' if more > 1 else ''} stride 1" if more else "")
        title = (f"Stage {stage}: {' + '.join(p for p in repeats if p)}",) if wide else (f"Stage {stage}", *repeats)
        g.node(part, lines(title, (f"output {_shape(row.output_shape)}", f"g = {config.groups}", shuffle_note),
                           *costs(part)), **fill(part))
        g.edge(prev, part, **channels(prev))
        prev = part
    g.node("classifier", lines(("Global average pool → FC " f"{config.num_classes} + softmax",) if wide else
                               ("Global average pool", f"FC {config.num_classes} + softmax"),
                               *costs("classifier", fc=True)), **fill("classifier"))
    g.edge(prev, "classifier", **channels(prev))
    if scale:
        _add_legend(g, scale, rankdir)
    return g


def family_macro_diagram(config, metric: str | None = None, latency=None, rankdir: str = "TB") -> graphviz.Digraph:
    """Input -> stem -> every stage -> head -> classifier of any family's configuration, read off
    its stage table: output shape, units, MACs and params of each part; `metric` colours each
    part by its sum, as `macro_diagram` does."""
    m = _check_metric(metric)
    stages = stage_table(config)
    values = _stage_values(config, m, latency) if m else {}
    scale = HeatScale.of(m, values.values(), "stage") if m else None
    sep = ", " if rankdir == "TB" else "\n"
    g = _graph("macro", rankdir)
    size = config.input_size
    g.attr(label=config.label, labelloc="t", fontsize="13")
    g.node("input", f"Input\n{_shape((size, size, config.channels))}", fillcolor=COLORS["input"])
    prev = "input"
    for row in stages.itertuples(index=False):
        part = row.stage
        title = part.capitalize() if not part.startswith("stage") else f"Stage {part[5:]}"
        if row.units:
            title += f": {row.units} unit{'s' if row.units > 1 else ''}"
        lines = [title, f"output {_shape(row.output_shape)}", sep.join((_mmacs(row.macs), f"{row.params:,} params"))]
        if m:
            lines.append(format_value(values[part], m))
        attrs = scale.node_attrs(values[part]) if scale else {"fillcolor": COLORS.get(part, COLORS["stage3"])}
        g.node(part, "\n".join(lines), **attrs)
        g.edge(prev, part)
        prev = part
    if scale:
        _add_legend(g, scale, rankdir)
    return g


# --- the micro diagram: one unit, from its own layers ---------------------------------------

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


def _find_family_unit(config, stage: int, stride: int) -> UnitSpec:
    """The first unit of `stage` whose depthwise conv has `stride`, in another family's plan, as
    the few `UnitSpec` fields the micro diagram reads."""
    plan = layer_plan(config)
    stages = sorted({int(spec.stage[5:]) for spec in plan if spec.unit is not None})
    if stage not in stages:
        raise ValueError(f"`stage` must be one of {', '.join(map(str, stages))}. Received: stage={stage!r}")
    if stride not in (1, 2):
        raise ValueError(f"`stride` must be 1 or 2. Received: stride={stride!r}")
    key = f"stage{stage}"
    for spec in plan:
        if spec.stage == key and spec.op == "dwconv3x3" and spec.stride == stride:
            first = next(s for s in plan if s.stage == key and s.unit == spec.unit)
            side, channels = first.input_shape[0], first.input_shape[-1]
            return UnitSpec(stage, spec.unit, stride, channels, 0, 0, 1, 1, side, side // stride)
    raise ValueError(f"Stage {stage} of {config.label} has no unit of stride {stride}; choose the other stride.")


def _unit_node(layer: LayerSpec, config: ShuffleNetConfig, with_relu: str, source_op: str | None
               ) -> tuple[str, dict[str, str]]:
    """The label and attributes of one layer of a unit, from its op, its spec and the op it reads;
    `with_relu` names the activation drawn with a BN ("ReLU", "ReLU6"), if any."""
    cin, cout = layer.input_shape[-1], layer.output_shape[-1]
    k = layer.kernel
    if layer.op in ("conv1x1", "gconv1x1"):
        if layer.op == "gconv1x1":
            kind = f"1×1 GConv, g = {layer.groups}"
        elif getattr(config, "groups", 1) > 1:
            kind = "1×1 Conv (not grouped, Sec. 3.3)"
        else:
            kind = "1×1 Conv"
        return f"{kind}\n{cin} → {cout}", {"fillcolor": COLORS["gconv"]}
    if layer.op == "batchnorm":
        if with_relu:
            return f"BN + {with_relu}", {"fillcolor": COLORS["bn"]}
        if source_op == "dwconv3x3":  # the paper's choice (Sec. 3.2), worth saying on the figure
            return "BN (no ReLU)", {"fillcolor": COLORS["bn"]}
        return "BN", {"fillcolor": COLORS["bn"]}
    if layer.op == "shuffle":
        n = cout // layer.groups
        return (f"Channel shuffle, g = {layer.groups}\n({layer.groups} × {n} → {n} × {layer.groups})",
                {"fillcolor": COLORS["shuffle"]})
    if layer.op == "dwconv3x3":
        return (f"{k}×{k} DWConv, stride {layer.stride}\n{cout} channels, {_shape(layer.output_shape)}",
                {"fillcolor": COLORS["dwconv"]})
    if layer.op == "avgpool":
        return f"{k}×{k} AVG Pool, stride {layer.stride}\n{_shape(layer.output_shape)}", {"fillcolor": COLORS["pool"]}
    if layer.op == "concat":
        return "Concat", {"fillcolor": COLORS["merge"]}
    if layer.op == "add":
        return "Add", {"fillcolor": COLORS["merge"], "shape": "circle"}
    if layer.op in ("relu", "relu6"):
        return OPS[layer.op], {"fillcolor": COLORS["bn"]}
    if layer.op == "split":
        first = layer.offset
        return (f"Channel split\nchannels {first}..{first + cout - 1} of {cin}",
                {"fillcolor": COLORS["merge"]})
    return f"{layer.part} ({layer.op})\n{_shape(layer.output_shape)}", {"fillcolor": COLORS["bn"]}


def micro_diagram(config: ShuffleNetConfig, stage: int = 3, stride: int = 1, rankdir: str = "TB") -> graphviz.Digraph:
    """One ShuffleNet unit (paper Fig. 2b for stride 1, Fig. 2c for stride 2) of `stage`, drawn
    from that unit's layers in the plan: pads merged into the layer that reads them, and a BN
    whose only reader is a ReLU drawn with it as one "BN + ReLU" node. For another family's
    configuration: the first unit of `stage` whose depthwise conv has `stride`."""
    u = _find_unit(config, stage, stride) if isinstance(config, ShuffleNetConfig) else \
        _find_family_unit(config, stage, stride)
    layers = fold_pads(unit_layers(config, stage, u.unit))
    by_name = {layer.name: layer for layer in layers}
    readers: dict[str, list[str]] = {}
    for layer in layers:
        for src in layer.inputs:
            readers.setdefault(src, []).append(layer.name)
    # relu name -> the BN drawn with it
    merged = {layer.name: layer.inputs[0] for layer in layers
              if layer.op in ("relu", "relu6") and len(layer.inputs) == 1 and layer.inputs[0] in by_name
              and by_name[layer.inputs[0]].op == "batchnorm" and readers[layer.inputs[0]] == [layer.name]}

    def node_of(name: str) -> str:
        return merged.get(name, name) if name in by_name else "in"

    def channels(name: str) -> int:
        return by_name[name].output_shape[-1] if name in by_name else u.in_channels

    no_shuffle = not getattr(config, "shuffle", True) and u.groups > 1
    g = _graph(f"micro_stage{stage}_stride{stride}", rankdir)
    title = f"Stage {stage}, unit {u.unit} (stride {stride})"
    if no_shuffle:
        title += "\nchannel shuffle off (ablation, paper Table 3): groups never mix"
    g.attr(label=title, labelloc="t", fontsize="13")
    g.node("in", f"Input {_shape((u.in_size, u.in_size, u.in_channels))}", fillcolor=COLORS["input"])
    for layer in layers:
        if layer.name in merged:
            continue
        source = by_name.get(layer.inputs[-1])
        relu = next((OPS[by_name[r].op] for r, bn in merged.items() if bn == layer.name), "")
        label, attrs = _unit_node(layer, config, with_relu=relu, source_op=source.op if source else None)
        if layer.op == "concat":
            label += "\n" + " + ".join(str(channels(src)) for src in layer.inputs) + f" = {layer.output_shape[-1]}"
        g.node(layer.name, label, **attrs)
        for src in layer.inputs:
            edge = {"label": f" {channels(src)}"}
            if layer.op == "add" and src not in by_name:
                edge.update(style="dashed", label=f" {channels(src)}, identity shortcut")
            if no_shuffle and layer.op == "dwconv3x3":
                edge["label"] += ", no shuffle"
            g.edge(node_of(src), layer.name, **edge)
    last = layers[-1]
    g.node("out", f"Output {_shape(last.output_shape)}", fillcolor=COLORS["input"])
    g.edge(node_of(last.name), "out", label=f" {last.output_shape[-1]}")
    return g


# --- the full layer graph -------------------------------------------------------------------

def _node_color(op: str) -> str:
    if op in ("gconv1x1", "conv1x1"):
        return COLORS["gconv"]
    return {
        "conv3x3": COLORS["conv"], "shuffle": COLORS["shuffle"], "dwconv3x3": COLORS["dwconv"],
        "maxpool": COLORS["pool"], "avgpool": COLORS["pool"], "global_pool": COLORS["pool"],
        "add": COLORS["merge"], "concat": COLORS["merge"], "split": COLORS["merge"], "fc": COLORS["classifier"],
    }.get(op, COLORS["bn"])


def layer_edges(config: ShuffleNetConfig) -> list[tuple[str, str]]:
    """Edges (from, to) of the layer graph of `build_model(config)`: every layer of the plan
    and the layers it reads ("image" is the model input)."""
    return [(src, spec.name) for spec in layer_plan(config) for src in spec.inputs]


def _selected_layers(config: ShuffleNetConfig, stage, units) -> tuple[LayerSpec, ...]:
    plan = layer_plan(config)
    if stage is None:
        if units is not None:
            raise ValueError("`units` picks units of one stage: give `stage` (2, 3 or 4) as well.")
        return plan
    key = f"stage{stage}" if isinstance(stage, int) and not isinstance(stage, bool) else str(stage)
    parts = PARTS if isinstance(config, ShuffleNetConfig) else tuple(dict.fromkeys(spec.stage for spec in plan))
    if key not in parts:
        named = ", ".join(p[5:] if p.startswith("stage") else repr(p) for p in parts)
        raise ValueError(f"`stage` must be one of {named}. Received: stage={stage!r}")
    layers = tuple(spec for spec in plan if spec.stage == key)
    if units is None:
        return layers
    if not key.startswith("stage"):
        raise ValueError(f"`units` picks units of a stage; {key} has none. Leave `units` out for it.")
    n = max(spec.unit for spec in layers)
    try:
        first, last = (int(units), int(units)) if isinstance(units, int) else (int(units[0]), int(units[1]))
    except (TypeError, ValueError, IndexError):
        first, last = 0, -1
    if not 1 <= first <= last <= n:
        raise ValueError(f"`units` must be a unit number or a range (first, last) within 1..{n} for {key}, "
                         f"which has {n} unit(s). Received: units={units!r}")
    return tuple(spec for spec in layers if first <= spec.unit <= last)


def full_diagram(config: ShuffleNetConfig, stage: int | str | None = None, units=None, metric: str | None = None,
                 latency=None, rankdir: str = "TB") -> graphviz.Digraph:
    """Every layer, clustered by stage and unit: the plan's layers as nodes, their `inputs` as
    edges. `stage` (2, 3, 4, "stem", "classifier") restricts it to one stage, `units` (a unit
    number or a range (first, last)) to some of that stage's units; a layer read from outside
    the selection is drawn as a plain name. `metric` colours the layers (see `layer_values`)."""
    m = _check_metric(metric)
    layers = _selected_layers(config, stage, units)
    keep = {spec.name for spec in layers}
    values = layer_values(config, m.key, latency) if m else {}
    scale = HeatScale.of(m, (values[name] for name in keep), "layer") if m else None
    g = _graph("full", rankdir)
    clusters: dict[tuple, graphviz.Digraph] = {}
    for spec in layers:
        key = (spec.stage, spec.unit)
        if key not in clusters:
            c = graphviz.Digraph(f"cluster_{spec.stage}_{spec.unit or 0}")
            label = spec.stage if spec.unit is None else f"{spec.stage} unit {spec.unit}"
            c.attr(label=label, style="rounded,filled", fontname=_FONT,
                   fillcolor="#f7f7f7" if scale else COLORS.get(spec.stage, "#ffffff"))
            clusters[key] = c
        groups = f", g={spec.groups}" if spec.op in ("gconv1x1", "shuffle") else ""
        # Left to right, the name and the op go on lines of their own: narrower nodes, so a unit fits a row.
        op = "" if spec.op == spec.part and not groups else f"{spec.op}{groups}"  # "relu (relu)" says it twice
        label = spec.part if not op else f"{spec.part}\n{op}" if rankdir == "LR" else f"{spec.part} ({op})"
        label += f"\n{_shape(spec.output_shape)}"
        if scale:
            label += f"\n{format_value(values[spec.name], m)}"
            attrs = scale.node_attrs(values[spec.name])
        else:
            attrs = {"fillcolor": _node_color(spec.op)}
        clusters[key].node(spec.name, label, fontsize="9", **attrs)
    for c in clusters.values():
        g.subgraph(c)
    outside: set[str] = set()
    cluster_of = {spec.name: (spec.stage, spec.unit) for spec in layers}
    for spec in layers:
        for src in spec.inputs:
            if src not in keep and src not in outside:
                outside.add(src)
                if src == "image":
                    g.node("image", "input", fillcolor=COLORS["input"])
                else:
                    g.node(src, src, shape="plaintext", style="")
            if rankdir == "LR" and cluster_of.get(src) != (spec.stage, spec.unit):
                # Left to right, each unit is a row of its own: the edges between units do not push the
                # next unit further right, so the graph wraps like text instead of running off the slide.
                g.edge(src, spec.name, constraint="false")
            else:
                g.edge(src, spec.name)
    if scale:
        _add_legend(g, scale, rankdir)
    return g


# --- rendering ------------------------------------------------------------------------------

def dot_available() -> bool:
    return shutil.which("dot") is not None


def render(graph: graphviz.Digraph | str, fmt: str = "svg") -> bytes:
    """The diagram (a graph or its DOT source) as an SVG, PNG (at `PNG_DPI`) or PDF file, laid
    out by Graphviz's `dot`; DiagramRenderError with a fix when `dot` is missing or fails."""
    if fmt not in FORMATS:
        raise ValueError(f"`fmt` must be one of {', '.join(FORMATS)}. Received: fmt={fmt!r}")
    if not dot_available():
        raise DiagramRenderError(
            f"{fmt.upper()} export needs Graphviz's `dot` program, which is not installed. Install it with "
            "`apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS); the DOT "
            "source can still be downloaded and rendered elsewhere."
        )
    source = graph if isinstance(graph, str) else graph.source
    command = [shutil.which("dot") or "dot", f"-T{fmt}", *([f"-Gdpi={PNG_DPI}"] if fmt == "png" else [])]
    try:
        done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True, timeout=RENDER_TIMEOUT_S)
    except FileNotFoundError as exc:  # removed between the check and the call
        raise DiagramRenderError(f"Graphviz's `dot` could not be run: {exc}") from exc
    except subprocess.TimeoutExpired:
        raise DiagramRenderError(f"Graphviz's `dot` took more than {RENDER_TIMEOUT_S} s on this diagram; "
                                 "draw a smaller part of the network (one stage, fewer units).") from None
    if done.returncode != 0:
        raise DiagramRenderError(f"Graphviz's `dot` failed on this diagram (exit {done.returncode}): "
                                 f"{done.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return done.stdout


def to_svg(graph: graphviz.Digraph | str) -> str:
    """Render to SVG with Graphviz's `dot`; DiagramRenderError with a fix when it is missing."""
    return render(graph, "svg").decode("utf-8")
