"""Architecture: the macro diagram, one unit of a chosen stage at stride 2 and stride 1, the
layers of a chosen stage (or a range of its units), and the receptive fields: how much of the
picture one position of each stage (or unit) sees, against the input's side.

The whole-network diagram and the layer graph can be coloured by a metric (a heat map) and laid
out left to right; every diagram downloads as DOT, SVG, PNG and PDF (the last three made by
Graphviz's `dot` on click). Where `dot` exists the diagrams are laid out once on the server and
shown as pictures: laying them out in the browser took seconds on every change of the network.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import streamlit as st

from shufflenet.analysis import first_whole_input
from shufflenet.config import STAGES
from shufflenet.diagrams import METRICS
from shufflenet.export import file_name
from shufflenet.naming import PARTS

from .. import cache, charts, tables
from .. import format as fmt
from ..state import Selection, ViewKey, always, choice, switch
from . import model_summary

#: The layer graph's parts (the library's `PARTS`) -> what its select box shows.
FULL_STAGES = {part: part.replace("stage", "Stage ").capitalize() for part in PARTS}
#: The layer graph's units range: one key per part and unit count, so a range always fits.
ARCH_UNITS_KEY = "arch_units_{}_{}"
ARCH_PART_DEFAULT = "stage2"


def _arch_units_count(config, state) -> int:
    """Units of the part the layer graph shows (0 for the stem and the classifier)."""
    part = state.get("arch_full_stage", ARCH_PART_DEFAULT)
    return config.blocks[int(part.removeprefix("stage")) - 2] if part.startswith("stage") else 0


def _parse_units(text: str, config, state):
    m = re.fullmatch(r"([0-9]{1,2})-([0-9]{1,2})", text)
    count = _arch_units_count(config, state)
    if not m or count < 2:
        return None
    first, last = int(m[1]), int(m[2])
    return (first, last) if 1 <= first <= last <= count else None


def _units_allowed(config, state) -> str:
    count = _arch_units_count(config, state)
    part = state.get("arch_full_stage", ARCH_PART_DEFAULT)
    if count < 2:
        return (f"it needs the layer graph (`part`) to show a stage with more than one unit, and it shows "
                f"{part} ({count} unit{'' if count == 1 else 's'})")
    return f"it must be a range first-last of {part}'s units 1 to {count}, e.g. 1-{count}"


#: This view's choices in the URL (collected by `explorer.url`), in the order a link is read: the
#: range of units needs the part it is of.
URL_KEYS = {
    "color": choice("Architecture", "arch_metric", ("default", *METRICS), "default", "colouring"),
    "lr": switch("Architecture", "arch_lr", False, "left-to-right layout"),
    "arch_stage": choice("Architecture", "arch_stage", STAGES, 3, "stage of the unit diagrams"),
    "part": choice("Architecture", "arch_full_stage", PARTS, ARCH_PART_DEFAULT, "part drawn layer by layer"),
    "units": ViewKey(
        "Architecture", lambda config, state: ARCH_UNITS_KEY.format(
            state.get("arch_full_stage", ARCH_PART_DEFAULT), _arch_units_count(config, state)),
        _parse_units, _units_allowed, always((1, 2)), always("units 1-2"),
        text=lambda value: f"{value[0]}-{value[1]}"),
    "rf_units": switch("Architecture", "arch_rf_units", False, "receptive fields of every unit"),
}

#: "Colour by" choices: key -> what the select shows.
COLOR_BY = {"default": "Default (stage and op)", "macs": "MACs", "params": "Parameters",
            "activation_bytes": "Activation memory", "traffic_bytes": "Memory traffic", "latency_ms": "Latency"}

#: Downloads of every diagram: extension -> (MIME type, whether it needs Graphviz's `dot`).
DOWNLOADS = {"dot": ("text/vnd.graphviz", False), "svg": ("image/svg+xml", True), "png": ("image/png", True),
             "pdf": ("application/pdf", True)}

LATENCY_HOW = (
    "No per-layer latency has been measured for this network on this server yet, so the diagrams keep their "
    "default colours. Press **Measure per-layer latency** to get one: it builds the Keras model of this "
    "configuration and times each layer alone on its real input (batch 1, median of {repeats} runs after "
    "two warm-up runs), which takes a few seconds to a minute depending on the network's size."
)
LATENCY_NOTE = (
    "Latency per layer: each Keras layer of this network timed alone in eager TensorFlow on this server's CPU "
    "(batch 1, median of {repeats} runs); it includes Keras's per-call overhead of a few tenths of a "
    "millisecond, so small layers look costlier than inside the compiled graph. Other sessions' work on the "
    "server moves the numbers; measure again to refresh them."
)


RF_INTRO = (
    "One output position of a layer depends on a square window of input pixels, its **receptive field**. "
    "Every 3×3 window (the stem's conv and max pool, each unit's depthwise conv and average-pooled shortcut) "
    "widens it by twice the distance between neighbouring positions, and every stride-2 layer doubles that "
    "distance; the 1×1 group convs, the shuffle, batch norm and ReLU leave it as it is. So the deep, downsampled "
    "stages grow it fastest."
)
RF_NOTE = (
    "Dashed line: the input's side. A window as wide as the picture is not yet enough for every position: the "
    "window of a position at the edge is centred on the edge, so half of it lies in the zero padding. The star "
    "marks the first unit where every position sees all {input} pixels. Sizes are not clipped to the picture."
)
RF_LABELS = {"output_side": "output side", "receptive_field": "receptive field (px)", "rf_per_input": "RF / input",
             "jump": "jump (px)", "start": "first centre (px)", "sees_whole_input": "sees whole input",
             "first_whole_input": "first to see it all"}
RF_HELP = {"receptive_field": "Side of the square window of input pixels one output position depends on.",
           "rf_per_input": "Receptive field over the input's side: from 1 on, one window is as wide as the picture.",
           "jump": "Input pixels between the centres of neighbouring output positions.",
           "sees_whole_input": "Every output position (corners included) sees every input pixel.",
           "layer": "The stage's (or unit's) last layer, where the field is read."}
RF_ORDER = ("stage", "unit", "receptive_field", "rf_per_input", "sees_whole_input", "output_side", "jump", "layer")


class Shown(NamedTuple):
    """One diagram of the view: where it goes, what `cache.diagram_dot` draws, its alt text, and
    the download name's `what` and the widget keys' part."""

    slot: Any
    request: dict
    alt: str
    what: str
    key: str


def _downloads(config, shown: Shown) -> None:
    """DOT, SVG, PNG and PDF buttons; each file is made only when its button is clicked."""
    have_dot = cache.dot_available()
    request = dict(shown.request)
    kind = request.pop("kind")
    with st.container(horizontal=True, gap="small"):
        for ext, (mime, needs_dot) in DOWNLOADS.items():
            if needs_dot and not have_dot:
                continue
            st.download_button(
                f"Download {ext.upper()}", lambda ext=ext: cache.diagram_file(config, kind, ext, **request),
                file_name=file_name(config, shown.what, ext), mime=mime, on_click="ignore",
                key=f"arch_{ext}_{shown.key}", type="tertiary",
            )
    if not have_dot:
        st.caption("SVG, PNG and PDF export need Graphviz's `dot` (`apt-get install graphviz`).")


def _fill(config, diagrams: list[Shown]) -> None:
    """Every diagram into its slot, with its downloads. With Graphviz's `dot`, all are laid out on
    the server in one go (in parallel, cached) and shown as pictures; without it, the browser
    lays out the DOT source."""
    pictures = cache.diagram_pictures(config, [d.request for d in diagrams]) if cache.dot_available() else None
    for i, shown in enumerate(diagrams):
        with shown.slot:
            if pictures is not None:
                st.image(pictures[i], alt=shown.alt)
            else:
                st.graphviz_chart(cache.diagram_dot(config, **shown.request))
            _downloads(config, shown)


def _heat_options(config) -> dict:
    """The "Colour by" and "Left to right" controls, and the diagram options they give."""
    # Every choice's default is its current value, which a link may have set (see explorer/url.py).
    ss = st.session_state
    left, right, _ = st.columns([2, 1, 1], vertical_alignment="bottom")
    metric = left.selectbox("Colour by", list(COLOR_BY), index=list(COLOR_BY).index(ss.get("arch_metric", "default")),
                            key="arch_metric", format_func=COLOR_BY.get,
                            help="Colours the whole-network diagram and the layer graph by a cost per stage / "
                                 "per layer (a heat map, with its scale in a legend). Default: by stage and op.")
    lr = right.toggle("Left to right", value=ss.get("arch_lr", False), key="arch_lr",
                      help="Lays the whole-network diagram and the layer graph out left to right (wide slides) "
                           "instead of top to bottom.")
    latency = None
    if metric == "latency_ms":
        latency = cache.layer_latency(config)
        if latency is None:
            st.info(LATENCY_HOW.format(repeats=cache.LAYER_LATENCY_REPEATS))
            if st.button("Measure per-layer latency", key="arch_measure_latency"):
                _measure(config)
        else:
            st.caption(LATENCY_NOTE.format(repeats=cache.LAYER_LATENCY_REPEATS))
            if st.button("Measure again", key="arch_measure_latency"):
                _measure(config)
    shown = metric
    if metric == "latency_ms" and latency is None:
        shown = "default"
    elif problem := cache.heat_metric_problem(config, metric, latency):
        st.warning(f"The diagrams keep their default colours: {problem}")
        shown = "default"
    if shown == "default":
        st.caption("Colours: one per stage here, one per kind of layer in the layer graph below.")
    else:
        st.caption(f"Heat map of {METRICS[shown].label} ({METRICS[shown].help}): per stage here, per layer "
                   "below. The legends give the scales; every node, its exact value.")
    return {"metric": shown, "latency": latency, "rankdir": "LR" if lr else "TB"}


def _measure(config) -> None:
    bar = st.progress(0.0, text="Building the model...")
    try:
        times = cache.measure_layer_latency(config, progress=lambda f, msg: bar.progress(f, text=msg))
    except cache.ModelTooLargeError as exc:
        bar.empty()
        st.error(str(exc))
        return
    except Exception as exc:  # a failed run: say so, keep the page usable
        bar.empty()
        st.error(f"The measurement failed ({type(exc).__name__}: {exc}). Try a smaller network or measure again.")
        return
    bar.empty()
    if times is None:
        st.warning("Another per-layer measurement is running on this server (two at once would slow each other "
                   "down). Try again in a minute.")
        return
    st.rerun()


def _suffix(options: dict) -> str:
    """What a download's name adds for the options: the metric and the layout."""
    metric = options["metric"]
    return (f" {METRICS[metric].label}" if metric != "default" else "") + (" lr" if options["rankdir"] == "LR" else "")


def render(selection: Selection) -> None:
    config = selection.config
    shown: list[Shown] = []

    st.subheader("The whole network (paper Table 1)")
    options = _heat_options(config)
    shown.append(Shown(st.container(), {"kind": "macro", **options},
                       "The network's stem, three stages and classifier, with shapes and costs",
                       "macro" + _suffix(options), "macro"))

    st.subheader("One unit (paper Fig. 2)")
    ss = st.session_state
    stage = st.selectbox("Stage", (2, 3, 4), index=(2, 3, 4).index(ss.get("arch_stage", 3)), key="arch_stage",
                         format_func=lambda s: f"Stage {s}")
    left, right = st.columns(2)
    with left:
        st.markdown("**Stride 2** (the stage's first unit, Fig. 2c)")
        shown.append(Shown(st.container(), {"kind": "micro", "stage": stage, "stride": 2},
                           f"Stage {stage}'s stride-2 unit, layer by layer", f"stage{stage} stride2", "micro_s2"))
    with right:
        st.markdown("**Stride 1** (every other unit, Fig. 2b)")
        if config.blocks[stage - 2] > 1:
            shown.append(Shown(st.container(), {"kind": "micro", "stage": stage, "stride": 1},
                               f"Stage {stage}'s stride-1 unit, layer by layer", f"stage{stage} stride1", "micro_s1"))
        else:
            st.info(f"Stage {stage} has a single unit, so it has no stride-1 unit. "
                    "Raise its number of units in the sidebar to see one.")

    st.subheader("Every layer of a stage")
    cols = st.columns([1, 2], vertical_alignment="bottom")
    part = cols[0].selectbox("Part of the network", list(FULL_STAGES),
                             index=list(FULL_STAGES).index(ss.get("arch_full_stage", ARCH_PART_DEFAULT)),
                             key="arch_full_stage", format_func=FULL_STAGES.get)
    stage_arg = int(part.removeprefix("stage")) if part.startswith("stage") else part
    units, units_name = None, ""
    if part.startswith("stage") and (count := config.blocks[stage_arg - 2]) > 1:
        key = ARCH_UNITS_KEY.format(part, count)  # holds the count, so a range always fits the stage
        first, last = cols[1].slider(
            "Units", 1, count, ss.get(key, (1, 2)), key=key,
            help="Units 1 and 2 are the stage's two kinds (stride 2, then stride 1); every later unit repeats "
                 "unit 2. Widen the range to draw more of them.")
        if (first, last) != (1, count):
            units, units_name = (first, last), f" units {first}-{last}"
            st.caption(f"Units {first} to {last} of {count}; a layer they read from outside the range is "
                       "named in plain text.")
    shown.append(Shown(st.container(), {"kind": "full", "stage": stage_arg, "units": units, **options},
                       f"Every layer of {FULL_STAGES[part]}", f"{part}{units_name} layers" + _suffix(options), "full"))
    _fill(config, shown)

    _receptive_fields(config)

    st.subheader("The built Keras model")
    with st.expander("Layer table of the real model (as `model.summary()` prints it)"):
        model_summary.render(config)


def _receptive_fields(config) -> None:
    """The receptive field per stage (or per unit, with the toggle) and unit by unit in a chart."""
    ss = st.session_state
    st.subheader("Receptive fields: how much of the picture one position sees")
    st.markdown(RF_INTRO)
    units = cache.receptive_field_table(config, "unit")
    stages = cache.receptive_field_table(config, "stage")
    first = first_whole_input(units)
    last_stage = stages[stages["stage"] == "stage4"].iloc[0]
    cols = st.columns(3)
    cols[0].metric("Input", f"{config.input_size:,} px", help="The side of the picture the network reads.")
    cols[1].metric("Receptive field after stage 4", f"{last_stage['receptive_field']:,} px",
                   help=f"At {last_stage['layer']}, the last layer before the global pool: "
                        f"{last_stage['rf_per_input']:.2f}× the input's side.")
    cols[2].metric("First covers the whole input", fmt.part(first["stage"], first["unit"]),
                   help=f"The first unit whose every output position sees all {config.input_size:,} input pixels "
                        f"(receptive field {first['receptive_field']:,} px at {first['layer']}).")
    # The chart and the table each take the page's width: side by side, the table's key columns
    # scrolled out of sight at the widths of a laptop.
    charts.plotly(cache.receptive_field_figure(config), "arch_rf_chart", config, "receptive fields")
    st.caption(RF_NOTE.format(input=f"{config.input_size:,}"))
    per_unit = st.toggle("Every unit", value=ss.get("arch_rf_units", False), key="arch_rf_units",
                         help="Lists the receptive field at the end of every unit instead of every stage.")
    table = units if per_unit else stages
    tables.show(table, "arch_rf_table", config, "receptive fields" + (" units" if per_unit else ""),
                labels=RF_LABELS, help=RF_HELP, formats={"rf_per_input": "%.2f", "start": "%.1f"},
                order=[c for c in RF_ORDER if c in table.columns], pinned=("stage",))
