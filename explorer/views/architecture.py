"""Architecture: the macro diagram, one unit of a chosen stage at stride 2 and stride 1, and
the layers of a chosen stage (or a range of its units).

The whole-network diagram and the layer graph can be coloured by a metric (a heat map) and laid
out left to right; every diagram downloads as DOT, SVG, PNG and PDF (the last three made by
Graphviz's `dot` on click). Where `dot` exists the diagrams are laid out once on the server and
shown as pictures: laying them out in the browser took seconds on every change of the network.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import streamlit as st

from shufflenet.config import STAGES
from shufflenet.diagrams import METRICS
from shufflenet.export import file_name
from shufflenet.naming import PARTS

from .. import cache
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

    st.subheader("The built Keras model")
    with st.expander("Layer table of the real model (as `model.summary()` prints it)"):
        model_summary.render(config)
