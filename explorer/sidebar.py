"""The sidebar: the configuration controls, the view chooser and the URL that mirrors them.

The URL side is pure (`parse_query_params`, `query_params_for`, `config_from_state`) and can be
tested without a UI; `render()` draws the widgets and returns plain values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import streamlit as st

from shufflenet import ALLOWED_GROUPS, ShuffleNetConfig


@dataclasses.dataclass(frozen=True)
class Task:
    key: str  # the URL value
    label: str  # the option shown in the `task` select box
    input_size: int
    channels: int
    num_classes: int
    display: str = ""  # extra text shown after the label


TASKS = (
    Task("imagenet", "ImageNet (224x224x3, 1000 classes)", 224, 3, 1000),
    Task("fashion-mnist", "Fashion-MNIST", 32, 1, 10, " (32x32x1, 10 classes)"),
)
TASK_BY_KEY = {t.key: t for t in TASKS}
TASK_BY_LABEL = {t.label: t for t in TASKS}

#: View name -> URL value.
VIEWS = {
    "Overview": "overview",
    "Architecture": "architecture",
    "Complexity": "complexity",
    "Channel shuffle": "shuffle",
    "Compare": "compare",
    "Predictions": "predictions",
    "Latency": "latency",
}
VIEW_BY_SLUG = {slug: name for name, slug in VIEWS.items()}

BLOCK_KEYS = ("blocks_stage2", "blocks_stage3", "blocks_stage4")
BLOCKS_RANGE = (1, 16)
REDUCTION_RANGE, REDUCTION_STEP = (0.05, 1.0), 0.05
SCALE_RANGE, SCALE_STEP = (0.25, 3.0), 0.25
SIZE_RANGE, SIZE_STEP = (32, 512), 32
CLASSES_RANGE = (2, 100_000)

_PAPER = ShuffleNetConfig()
DEFAULTS = {
    "view": "Overview",
    "groups": _PAPER.groups,
    **dict(zip(BLOCK_KEYS, _PAPER.blocks)),
    "reduction": _PAPER.reduction,
    "scale": _PAPER.scale,
    "task": TASKS[0].label,
    "input_size": TASKS[0].input_size,
    "num_classes": TASKS[0].num_classes,
}
URL_FIELDS = ("view", "groups", "blocks", "reduction", "scale", "task", "size", "classes")


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the sidebar returns: the validated configuration and the rest of the choices."""

    config: ShuffleNetConfig
    task: Task
    view: str
    warnings: tuple[str, ...] = ()


# --- URL <-> widget state (pure) -----------------------------------------------------------

def _on_grid(value: float, low: float, high: float, step: float) -> bool:
    k = (value - low) / step
    return low - 1e-9 <= value <= high + 1e-9 and math.isclose(k, round(k), abs_tol=1e-6)


def _last(value):
    if isinstance(value, (list, tuple)):
        return value[-1] if value else ""
    return value


#: Longest piece of a URL value or key quoted back in a warning.
SHOWN_CHARS = 40


def _shown(text: str) -> str:
    """A URL value or key as it may be quoted inside a Markdown code span: shortened, with
    backticks and control/format characters (newlines, bidi overrides) replaced, so a crafted
    link cannot close the span and inject links or images into the warning."""
    text = "".join(c if c.isprintable() and c != "`" else "\N{REPLACEMENT CHARACTER}" for c in text)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def parse_query_params(params: Mapping[str, object]) -> tuple[dict, list[str]]:
    """Widget state from URL query parameters, and one warning per invalid field.

    Each field falls back to its default on its own: `?groups=5&scale=0.5` keeps the 0.5x
    width and warns about g. `size` and `classes` default to the task's preset.
    """
    state = dict(DEFAULTS)
    warnings: list[str] = []
    p = {str(k): str(_last(v)).strip() for k, v in params.items()}

    def warn(field: str, allowed: str, fallback: str) -> None:
        warnings.append(
            f"URL parameter `{field}={_shown(p[field])}` is not valid: {allowed}. "
            f"Using the default {fallback} instead."
        )

    if "view" in p:
        slug = p["view"].lower()
        if slug in VIEW_BY_SLUG:
            state["view"] = VIEW_BY_SLUG[slug]
        else:
            warn("view", f"it must be one of {', '.join(VIEWS.values())}", "view, Overview")
    if "groups" in p:
        g = _parse_int(p["groups"])
        if g in ALLOWED_GROUPS:
            state["groups"] = g
        else:
            warn("groups", f"g must be one of {', '.join(map(str, ALLOWED_GROUPS))}", f"g = {DEFAULTS['groups']}")
    if "blocks" in p:
        parts = [_parse_int(b) for b in p["blocks"].replace(";", ",").split(",")]
        lo, hi = BLOCKS_RANGE
        if len(parts) == 3 and all(b is not None and lo <= b <= hi for b in parts):
            state.update(zip(BLOCK_KEYS, parts))
        else:
            default = ",".join(str(DEFAULTS[k]) for k in BLOCK_KEYS)
            warn("blocks", f"it must be three whole numbers from {lo} to {hi}, one per stage, e.g. 4,8,4",
                 f"blocks {default}")
    if "reduction" in p:
        r = _parse_float(p["reduction"])
        lo, hi = REDUCTION_RANGE
        if r is not None and _on_grid(r, lo, hi, REDUCTION_STEP):
            state["reduction"] = round(r, 2)
        else:
            warn("reduction", f"it must be a number from {lo} to {hi} in steps of {REDUCTION_STEP}",
                 f"reduction {DEFAULTS['reduction']}")
    if "scale" in p:
        s = _parse_float(p["scale"])
        lo, hi = SCALE_RANGE
        if s is not None and _on_grid(s, lo, hi, SCALE_STEP):
            state["scale"] = round(s, 2)
        else:
            warn("scale", f"it must be a number from {lo} to {hi} in steps of {SCALE_STEP}",
                 f"scale {DEFAULTS['scale']}")
    task = TASKS[0]
    if "task" in p:
        key = p["task"].lower().replace("_", "-")
        if key in TASK_BY_KEY:
            task = TASK_BY_KEY[key]
        else:
            warn("task", f"it must be one of {', '.join(TASK_BY_KEY)}", f"task, {task.key}")
    state["task"] = task.label
    state["input_size"], state["num_classes"] = task.input_size, task.num_classes
    if "size" in p:
        n = _parse_int(p["size"])
        lo, hi = SIZE_RANGE
        if n is not None and lo <= n <= hi and n % SIZE_STEP == 0:
            state["input_size"] = n
        else:
            warn("size", f"the input size must be a multiple of {SIZE_STEP} from {lo} to {hi}",
                 f"size of the task, {task.input_size}")
    if "classes" in p:
        n = _parse_int(p["classes"])
        lo, hi = CLASSES_RANGE
        if n is not None and lo <= n <= hi:
            state["num_classes"] = n
        else:
            warn("classes", f"it must be a whole number from {lo} to {hi:,}",
                 f"number of classes of the task, {task.num_classes}")
    unknown = sorted(set(p) - set(URL_FIELDS))
    if unknown:
        listed = ", ".join(f"`{_shown(k)}`" for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        warnings.append(f"Unknown URL parameter(s) ignored: {listed}{more}. Known: {', '.join(URL_FIELDS)}.")
    return state, warnings


def _parse_int(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def task_for(state: Mapping) -> Task:
    return TASK_BY_LABEL.get(state.get("task"), TASKS[0])


def config_from_state(state: Mapping, prefix: str = "") -> ShuffleNetConfig:
    """The configuration the widgets describe. Slider floats are rounded to their grid, so
    0.30000000000000004 and 0.3 are the same (cached) configuration.

    `prefix` reads the network fields (groups, blocks, reduction, scale) from other widgets,
    e.g. "cmp_" for the Compare view's configuration B; input and classes stay the sidebar's.
    """
    task = task_for(state)
    return ShuffleNetConfig(
        groups=int(state[prefix + "groups"]),
        blocks=tuple(int(state[prefix + k]) for k in BLOCK_KEYS),
        reduction=round(float(state[prefix + "reduction"]), 2),
        scale=round(float(state[prefix + "scale"]), 2),
        input_size=int(state["input_size"]),
        channels=task.channels,
        num_classes=int(state["num_classes"]),
    )


def query_params_for(config: ShuffleNetConfig, task: Task, view: str) -> dict[str, str]:
    """The URL query parameters of a selection; size and classes only when they differ from
    the task's preset, so shared links stay short."""
    params = {
        "view": VIEWS.get(view, "overview"),
        "groups": str(config.groups),
        "blocks": ",".join(map(str, config.blocks)),
        "reduction": str(config.reduction),
        "scale": str(config.scale),
        "task": task.key,
    }
    if config.input_size != task.input_size:
        params["size"] = str(config.input_size)
    if config.num_classes != task.num_classes:
        params["classes"] = str(config.num_classes)
    return params


# --- widgets --------------------------------------------------------------------------------

def _apply_task_preset() -> None:
    task = task_for(st.session_state)
    st.session_state["input_size"] = task.input_size
    st.session_state["num_classes"] = task.num_classes


def _reset_to_paper() -> None:
    for key, value in DEFAULTS.items():
        if key != "view":
            st.session_state[key] = value


def _seed_from_url() -> None:
    """On a session's first run, put the URL's values into the widgets' state."""
    ss = st.session_state
    if "_url_warnings" in ss:
        return
    state, warnings = parse_query_params(st.query_params.to_dict())
    for key, value in state.items():
        ss[key] = value
    ss["_url_warnings"] = tuple(warnings)
    ss["_url_config"] = config_from_state(state)


def render() -> Selection:
    _seed_from_url()
    ss = st.session_state
    # Every widget's default is its current value (`value=`/`index=` from the state), never the
    # widget's own first option or minimum: a browser that re-creates a widget from its element
    # (seen on a busy server: 8 sessions at once, bench/load.py) takes the default, and sessions
    # drifted to g = 1, or to 32 px and 2 classes, without anyone touching those controls.
    with st.sidebar:
        st.header("ShuffleNet v1")
        view = st.radio("View", list(VIEWS), index=list(VIEWS).index(ss["view"]), key="view")
        st.subheader("Network")
        st.selectbox("Groups g", ALLOWED_GROUPS, index=ALLOWED_GROUPS.index(ss["groups"]), key="groups",
                     help="Groups of the 1x1 group convolutions (paper Sec. 3.1, Table 1).")
        for stage, key in zip((2, 3, 4), BLOCK_KEYS):
            st.slider(f"Units in stage {stage}", *BLOCKS_RANGE, value=ss[key], key=key, step=1,
                      help="The paper uses 4, 8 and 4 units (Table 1).")
        st.slider("Bottleneck reduction", *REDUCTION_RANGE, value=ss["reduction"], key="reduction",
                  step=REDUCTION_STEP,
                  help="Bottleneck channels / unit output channels; the paper uses 1/4 (Sec. 3.2).")
        st.slider("Width scale s", *SCALE_RANGE, value=ss["scale"], key="scale", step=SCALE_STEP, format="%.2fx",
                  help="Multiplies every layer's channels: 0.25x, 0.5x, 1x, 1.5x, 2x in the paper (Sec. 4.1.1).")
        labels = [t.label for t in TASKS]
        st.selectbox("Task", labels, index=labels.index(ss["task"]), key="task", on_change=_apply_task_preset,
                     format_func=lambda label: label + TASK_BY_LABEL[label].display)
        with st.expander("Advanced: input and classes"):  # not mounted in the browser until opened
            st.number_input("Input size (pixels, square)", *SIZE_RANGE, value=ss["input_size"], key="input_size",
                            step=SIZE_STEP, help="A multiple of 32: the network downsamples 32x.")
            st.number_input("Classes", *CLASSES_RANGE, value=ss["num_classes"], key="num_classes", step=1)
        st.button("Reset to the paper's network", on_click=_reset_to_paper)

    task = task_for(ss)
    warnings: tuple[str, ...] = ()
    try:
        config = config_from_state(ss)
    except ValueError as exc:  # the widgets' ranges should make this unreachable
        config = ShuffleNetConfig()
        warnings = (f"The controls describe an invalid network ({exc}); showing the paper's network.",)
    if config == ss.get("_url_config"):  # the link's warnings stay until the user changes something
        warnings = (*ss["_url_warnings"], *warnings)
    params = query_params_for(config, task, view)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    with st.sidebar:
        st.caption("The address bar holds this configuration: copy it to share the view.")
    return Selection(config=config, task=task, view=view, warnings=warnings)
