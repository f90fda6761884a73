"""The sidebar: the configuration controls, the view chooser and the URL that mirrors them.

The URL side is pure (`parse_query_params`, `query_params_for`, `view_params`, `config_from_state`)
and can be tested without a UI; `render()` draws the widgets and returns plain values. The URL also
holds the choices made on the views (`VIEW_KEYS`: Compare's B, the Complexity toggles, the
Architecture stages...), so a link opens the page as it was seen.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import streamlit as st

from shufflenet.analysis import default_shuffle_width, shuffle_width_choices
from shufflenet.config import FIELDS, STAGES, FieldSpec, ShuffleNetConfig
from shufflenet.diagrams import METRICS


@dataclasses.dataclass(frozen=True)
class Task:
    """A dataset the explorer knows: choosing it presets the fields named like its attributes."""

    key: str  # the URL value
    label: str  # the option shown in the `task` select box
    input_size: int
    channels: int
    num_classes: int
    scale: float = 1.0
    display: str = ""  # extra text shown after the label


TASKS = (
    Task("imagenet", "ImageNet (224x224x3, 1000 classes)", input_size=224, channels=3, num_classes=1000),
    # 0.5x: the width of the trained checkpoints (assets/checkpoints).
    Task("fashion-mnist", "Fashion-MNIST", input_size=32, channels=1, num_classes=10, scale=0.5,
         display=" (0.5x, 32x32x1, 10 classes)"),
)
TASK_BY_KEY = {t.key: t for t in TASKS}
TASK_BY_LABEL = {t.label: t for t in TASKS}

#: View name -> URL value.
VIEWS = {
    "Overview": "overview",
    "Architecture": "architecture",
    "Complexity": "complexity",
    "Channel shuffle": "shuffle",
    "Inside": "inside",
    "Compare": "compare",
    "Accuracy": "accuracy",
    "Predictions": "predictions",
    "Latency": "latency",
}
VIEW_BY_SLUG = {slug: name for name, slug in VIEWS.items()}

# The controls are made from the library's declaration of the fields (`shufflenet.config.FIELDS`):
# their limits, steps, choices, labels and help live there. Only how they are shown is said here.
#: Fields without a control: the task decides them.
TASK_DECIDES = ("channels",)
#: Fields shown as number inputs in the "Advanced" expander (every other range is a slider).
NUMBER_INPUTS = ("input_size", "num_classes")
FORMATS = {"scale": "%.2fx"}
CONTROLS = {name: spec for name, spec in FIELDS.items() if name not in TASK_DECIDES}
#: The controlled fields a task presets (`Task` attributes named like a field).
TASK_PRESETS = tuple(name for name in CONTROLS if name in {f.name for f in dataclasses.fields(Task)})


def widget_keys(spec: FieldSpec) -> tuple[str, ...]:
    """The widget (and session state) keys of a field: its name, or one per stage for `blocks`."""
    return tuple(f"{spec.name}_stage{stage}" for stage in STAGES) if spec.count > 1 else (spec.name,)


BLOCK_KEYS = widget_keys(FIELDS["blocks"])


def _default(spec: FieldSpec, task: Task):
    """A field's value until someone sets it: the task's preset, else the paper's."""
    return getattr(task, spec.name) if spec.name in TASK_PRESETS else spec.default


def _state(spec: FieldSpec, value) -> dict:
    """A field's value as widget state: `blocks` spreads over one key per stage."""
    return dict(zip(widget_keys(spec), value if spec.count > 1 else (value,)))


def _defaults(task: Task) -> dict:
    return {k: v for spec in CONTROLS.values() for k, v in _state(spec, _default(spec, task)).items()}


DEFAULTS = {"view": "Overview", "task": TASKS[0].label, **_defaults(TASKS[0])}


class UrlField(NamedTuple):
    field: str  # the ShuffleNetConfig field it sets
    subject: str  # who "must be ..." in its warning
    fallback: str  # how its warning names the value used instead ({} is that value)
    omit: str = ""  # left out of links when the value is the task's "preset" or the field's "default"


#: URL key -> the field it sets. `view` and `task` are not configuration fields.
URL_KEYS = {
    "groups": UrlField("groups", "g", "g = {}"),
    "blocks": UrlField("blocks", "it", "blocks {}"),
    "reduction": UrlField("reduction", "it", "reduction {}"),
    "scale": UrlField("scale", "it", "scale {}"),  # always written, though a task presets it: links stay explicit
    "size": UrlField("input_size", "the input size", "size of the task, {}", omit="preset"),
    "classes": UrlField("num_classes", "it", "number of classes of the task, {}", omit="preset"),
    "shuffle": UrlField("shuffle", "it", "channel shuffle, {}", omit="default"),
}
#: The sidebar's URL keys, in the order their warnings are listed (`URL_FIELDS` adds the views' keys).
SIDEBAR_URL_FIELDS = ("view", "groups", "blocks", "reduction", "scale", "task", "size", "classes", "shuffle")
#: What a switch may say in the URL.
SWITCH_WORDS = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}


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


def _decimals(step: float) -> int:
    """Decimals of a slider's grid: 2 for steps of 0.05 or 0.25, so 0.30000000000000004 is 0.3."""
    return len(f"{step:g}".partition(".")[2])


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


def _url_text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def _parse_one(spec: FieldSpec, text: str):
    """One value of a field from URL text, or None where the controls could not show it."""
    try:
        x = float(text)
    except ValueError:
        return None
    if not math.isfinite(x):
        return None
    if spec.kind is float:
        return round(x, _decimals(spec.step)) if _on_grid(x, spec.low, spec.high, spec.step) else None
    n = int(x) if x.is_integer() else None
    if spec.choices:
        return n if n in spec.choices else None
    return n if n is not None and spec.low <= n <= spec.high and (n - spec.low) % spec.step == 0 else None


def _parse_field(spec: FieldSpec, text: str):
    if spec.kind is bool:
        return SWITCH_WORDS.get(text.lower())
    values = [_parse_one(spec, part) for part in (text.replace(";", ",").split(",") if spec.count > 1 else [text])]
    if len(values) != spec.count or None in values:
        return None
    return tuple(values) if spec.count > 1 else values[0]


def _allowed(spec: FieldSpec, subject: str) -> str:
    """What the URL may hold for a field, said the way the explorer's controls allow it."""
    if spec.kind is bool:
        return f"{subject} must be 1 or 0 (also true/false, on/off)"
    if spec.choices:
        return f"{subject} must be {spec.allowed}"
    span = f"from {spec.low:,} to {spec.high:,}"
    if spec.count > 1:
        count = ("two", "three", "four")[spec.count - 2]
        return f"{subject} must be {count} whole numbers {span}, one per stage, e.g. {_url_text(spec.default)}"
    if spec.kind is float:
        return f"{subject} must be a number {span} in steps of {spec.step}"
    if spec.step > 1:
        return f"{subject} must be a multiple of {spec.step} {span}"
    return f"{subject} must be a whole number {span}"


# --- the views' choices in the URL ------------------------------------------------------------
# A choice made on a view (Compare's B, the Complexity toggles, the Architecture stage...) is one
# entry of `VIEW_KEYS`: its URL key, the view that shows it and the session-state key it sets. A
# link seeds that state on a session's first run; while its view is shown, the value is written
# back to the URL unless it is the default. Each callable takes the configuration the sidebar
# describes and the session state, since what a choice may be can depend on them (the shuffle's
# layer width must be a multiple of g; a range of units must fit the stage).

@dataclasses.dataclass(frozen=True)
class ViewKey:
    """One choice of a view in the URL (made with `switch`, `choice`, `several`, `whole` or by hand)."""

    view: str | None  # the view (a name in VIEWS) that shows the choice; None: every view
    state: Callable[[ShuffleNetConfig, Mapping], str]  # the session-state (widget) key it sets
    parse: Callable[[str, ShuffleNetConfig, Mapping], Any]  # URL text -> value; None: not allowed
    allowed: Callable[[ShuffleNetConfig, Mapping], str]  # the warning's "it must be ..."
    default: Callable[[ShuffleNetConfig, Mapping], Any]  # what the view shows unset: left out of links
    fallback: Callable[[ShuffleNetConfig, Mapping], str]  # the warning's "Using the default ... instead"
    text: Callable[[Any], str] = _url_text  # value -> URL text
    widget: bool = True  # `state` is a widget's, which Streamlit drops while its view is not drawn


def _always(value) -> Callable[..., Any]:
    return lambda *_: value


def switch(view: str | None, state: str, default: bool, what: str) -> ViewKey:
    """A toggle: `flops=1`. `what` names it in the warning ("FLOPs counting")."""
    return ViewKey(view, _always(state), lambda text, *_: SWITCH_WORDS.get(text.lower()),
                   _always("it must be 1 or 0 (also true/false, on/off)"), _always(default),
                   _always(f"{what}, {'on' if default else 'off'}"))


def choice(view: str | None, state: str, options: Sequence, default, what: str) -> ViewKey:
    """One of `options`, written as its text: `color=macs`, `arch_stage=4`."""
    by_text = {str(option).lower(): option for option in options}
    return ViewKey(view, _always(state), lambda text, *_: by_text.get(text.lower()),
                   _always(f"it must be one of {', '.join(map(str, options))}"), _always(default),
                   _always(f"{what}, {default}"))


def several(view: str | None, state: str, options: Callable[[], Sequence[str]], what: str) -> ViewKey:
    """Some of `options` (a multiselect), comma-separated: `stages=stage3,stage4`; none: all."""
    def parse(text, *_):
        allowed = {o.lower(): o for o in options()}
        picked = [allowed.get(part.strip().lower()) for part in text.split(",") if part.strip()]
        return None if None in picked else list(dict.fromkeys(picked))

    return ViewKey(view, _always(state), parse,
                   lambda *_: f"it must be some of {', '.join(options())}, comma-separated", _always([]),
                   _always(what), text=lambda value: ",".join(value))


def whole(view: str | None, state: str, low: int, high: int, default: Callable, what: str) -> ViewKey:
    """A whole number from `low` to `high`; `default(config, state)` may depend on the others."""
    def parse(text, *_):
        return int(text) if re.fullmatch(r"[0-9]{1,6}", text) and low <= int(text) <= high else None

    return ViewKey(view, _always(state), parse, _always(f"it must be a whole number from {low} to {high}"),
                   default, lambda config, state_: f"{what}, {default(config, state_)}")


#: The fields Compare's B may change; B follows the sidebar (A) in every field it does not change.
B_FIELDS = ("groups", "blocks", "reduction", "scale")


def b_key(field: str) -> str:
    """The session-state key of a change B makes (`cmp_b_groups` holds B's g); absent: B follows A."""
    return f"cmp_b_{field}"


def _b_change(field: str) -> ViewKey:
    """`b_groups=8`: B's value of a field, read like the sidebar's own key for it."""
    spec, url = FIELDS[field], URL_KEYS[field]
    return ViewKey("Compare", _always(b_key(field)), lambda text, *_: _parse_field(spec, text),
                   _always(_allowed(spec, url.subject)), _always(None),
                   lambda config, _: "for B, the sidebar's " + url.fallback.format(_url_text(getattr(config, field))),
                   widget=False)


#: Parts of the network as the views name them: the Architecture layer graph's and the
#: Complexity layer filter's choices.
PARTS = ("stem", *(f"stage{s}" for s in STAGES), "classifier")
#: The Channel shuffle view's width widget: one key per g, so a width never has to fit another g's choices.
SHUFFLE_WIDTH_KEY = "shuffle_width_g{}"
#: The Architecture layer graph's units range: one key per part and unit count, so a range always fits.
ARCH_UNITS_KEY = "arch_units_{}_{}"
ARCH_PART_DEFAULT = "stage2"


@functools.cache
def _paper_ops() -> tuple[str, ...]:
    """The Complexity filter's op types: those of the paper's network, which has every op type."""
    from shufflenet.analysis import layer_ops

    return tuple(layer_ops(ShuffleNetConfig()))


def _arch_units_count(config: ShuffleNetConfig, state: Mapping) -> int:
    """Units of the part the Architecture layer graph shows (0 for the stem and the classifier)."""
    part = state.get("arch_full_stage", ARCH_PART_DEFAULT)
    return config.blocks[int(part.removeprefix("stage")) - 2] if part.startswith("stage") else 0


def _parse_units(text: str, config: ShuffleNetConfig, state: Mapping):
    m = re.fullmatch(r"([0-9]{1,2})-([0-9]{1,2})", text)
    count = _arch_units_count(config, state)
    if not m or count < 2:
        return None
    first, last = int(m[1]), int(m[2])
    return (first, last) if 1 <= first <= last <= count else None


def _units_allowed(config: ShuffleNetConfig, state: Mapping) -> str:
    count = _arch_units_count(config, state)
    part = state.get("arch_full_stage", ARCH_PART_DEFAULT)
    if count < 2:
        return (f"it needs the layer graph (`part`) to show a stage with more than one unit, and it shows "
                f"{part} ({count} unit{'' if count == 1 else 's'})")
    return f"it must be a range first-last of {part}'s units 1 to {count}, e.g. 1-{count}"


def _parse_width(text: str, config: ShuffleNetConfig, _state: Mapping):
    choices = shuffle_width_choices(config.groups)
    return int(text) if re.fullmatch(r"[0-9]{1,4}", text) and int(text) in choices else None


def _inside_default_unit(config: ShuffleNetConfig, state: Mapping) -> int:
    """The Inside view's first unit: a stage's second (a plain stride-1 unit), or its only one."""
    return min(2, config.blocks[state.get("inside_stage", STAGES[0]) - 2])


# The lecture's keys, on every view: the lesson's step (explorer/lesson.py; plain state, set by its
# buttons) and presenter mode (explorer/presenter.py; a toggle at the top of the sidebar).
LESSON_URL_KEY, LESSON_STEP_KEY = "lesson", "lesson_step"
PRESENT_URL_KEY = "present"


def _lesson_steps() -> int:
    """How many steps the lesson file has (the lesson module reads this module's tables: imported late)."""
    from . import lesson

    return lesson.current().count


def _parse_lesson_step(text: str, *_) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,3}", text) and 1 <= int(text) <= _lesson_steps() else None


def _lesson_allowed(*_) -> str:
    count = _lesson_steps()
    if not count:
        return "the lesson file has no steps to open (see its warning when the lesson is started)"
    return f"it must be the number of a step of the lesson, from 1 to {count}"


#: URL key -> the view's choice it holds. Adding a choice to links is one entry here; a view reads
#: its widget's value as usual (the URL only seeds the session state under `state`).
VIEW_KEYS: Mapping[str, ViewKey] = {
    **{f"b_{field}": _b_change(field) for field in B_FIELDS},
    "flops": switch("Complexity", "cx_flops", False, "FLOPs counting"),
    "fc": switch("Complexity", "cx_include_fc", True, "FC layer included"),
    "stages": several("Complexity", "cx_stages", lambda: PARTS, "layers of all stages"),
    "ops": several("Complexity", "cx_ops", _paper_ops, "layers of all op types"),
    "color": choice("Architecture", "arch_metric", ("default", *METRICS), "default", "colouring"),
    "lr": switch("Architecture", "arch_lr", False, "left-to-right layout"),
    "arch_stage": choice("Architecture", "arch_stage", STAGES, 3, "stage of the unit diagrams"),
    "part": choice("Architecture", "arch_full_stage", PARTS, ARCH_PART_DEFAULT, "part drawn layer by layer"),
    "units": ViewKey(
        "Architecture", lambda config, state: ARCH_UNITS_KEY.format(
            state.get("arch_full_stage", ARCH_PART_DEFAULT), _arch_units_count(config, state)),
        _parse_units, _units_allowed, _always((1, 2)), _always("units 1-2"),
        text=lambda value: f"{value[0]}-{value[1]}"),
    "width": ViewKey(
        "Channel shuffle", lambda config, _: SHUFFLE_WIDTH_KEY.format(config.groups), _parse_width,
        lambda config, _: (f"it must be a multiple of g = {config.groups} from {config.groups} to "
                           f"{shuffle_width_choices(config.groups)[-1]}"),
        lambda config, _: default_shuffle_width(config.groups),
        lambda config, _: f"layer width for g = {config.groups}, {default_shuffle_width(config.groups)}"),
    "stage": choice("Inside", "inside_stage", STAGES, STAGES[0], "stage"),
    "axis": choice("Accuracy", "acc_axis", ("groups", "macs"), "groups", "the accuracy charts' horizontal axis"),
    "unit": whole("Inside", "inside_unit", 1, FIELDS["blocks"].high, _inside_default_unit, "unit"),
    LESSON_URL_KEY: ViewKey(None, _always(LESSON_STEP_KEY), _parse_lesson_step, _lesson_allowed, _always(None),
                            _always("lesson off (start it from the sidebar)"), widget=False),
    PRESENT_URL_KEY: switch(None, PRESENT_URL_KEY, False, "presenter mode"),
}
#: Every key the URL knows, in the order their warnings are listed.
URL_FIELDS = (*SIDEBAR_URL_FIELDS, *VIEW_KEYS)


def _same(a, b) -> bool:
    """Values equal as the URL writes them (a range slider's list and tuple alike)."""
    def norm(v):
        return tuple(v) if isinstance(v, (list, tuple)) else v

    return norm(a) == norm(b)


def view_params(config: ShuffleNetConfig, view: str, state: Mapping) -> dict[str, str]:
    """The URL parameters of the choices `view` shows (and those of every view), left out when
    unset, at their default, or not allowed for this configuration (the view then shows its
    default, e.g. a layer width kept from another g)."""
    params = {}
    for key, entry in VIEW_KEYS.items():
        if entry.view not in (None, view):
            continue
        name = entry.state(config, state)
        if name not in state or state[name] is None or _same(state[name], entry.default(config, state)):
            continue
        text = entry.text(state[name])
        if entry.parse(text, config, state) is not None:
            params[key] = text
    return params


def parse_query_params(params: Mapping[str, object]) -> tuple[dict, list[str]]:
    """Widget state from URL query parameters, and one warning per invalid field.

    Each field falls back to its default on its own: `?groups=5&scale=0.5` keeps the 0.5x
    width and warns about g. `scale`, `size` and `classes` default to the task's preset. The
    views' choices (`VIEW_KEYS`) are checked against the configuration the link gives.
    """
    p = {str(k): str(_last(v)).strip() for k, v in params.items()}
    bad: dict[str, str] = {}

    def warn(key: str, allowed: str, fallback: str) -> None:
        bad[key] = (f"URL parameter `{key}={_shown(p[key])}` is not valid: {allowed}. "
                    f"Using the default {fallback} instead.")

    view = VIEW_BY_SLUG.get(p.get("view", "overview").lower())
    if view is None:
        view = "Overview"
        warn("view", f"it must be one of {', '.join(VIEWS.values())}", "view, Overview")
    task = TASK_BY_KEY.get(p.get("task", TASKS[0].key).lower().replace("_", "-"))
    if task is None:
        task = TASKS[0]
        warn("task", f"it must be one of {', '.join(TASK_BY_KEY)}", f"task, {task.key}")
    state = {"view": view, "task": task.label, **_defaults(task)}
    for key, url in URL_KEYS.items():
        if key not in p:
            continue
        spec = FIELDS[url.field]
        value = _parse_field(spec, p[key])
        if value is None:
            default = _default(spec, task)
            shown = ("on" if default else "off") if spec.kind is bool else _url_text(default)
            warn(key, _allowed(spec, url.subject), url.fallback.format(shown))
        else:
            state.update(_state(spec, value))
    config = config_from_state(state)  # every field is valid or its default by now
    for key, entry in VIEW_KEYS.items():  # in order: a range of units needs the part it is of
        if key not in p:
            continue
        value = entry.parse(p[key], config, state)
        if value is None:
            warn(key, entry.allowed(config, state), entry.fallback(config, state))
        else:
            state[entry.state(config, state)] = value
    warnings = [bad[key] for key in URL_FIELDS if key in bad]
    unknown = sorted(set(p) - set(URL_FIELDS))
    if unknown:
        listed = ", ".join(f"`{_shown(k)}`" for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        warnings.append(f"Unknown URL parameter(s) ignored: {listed}{more}. Known: {', '.join(URL_FIELDS)}.")
    return state, warnings


def task_for(state: Mapping) -> Task:
    return TASK_BY_LABEL.get(state.get("task"), TASKS[0])


def config_from_state(state: Mapping, prefix: str = "") -> ShuffleNetConfig:
    """The configuration the widgets describe. Slider floats are rounded to their grid, so
    0.30000000000000004 and 0.3 are the same (cached) configuration.

    `prefix` reads a field from other widgets where they exist, e.g. "cmp_" for the Compare
    view's configuration B (groups, blocks, reduction, scale); the other fields stay the sidebar's.
    """
    task = task_for(state)
    values = {name: getattr(task, name) for name in TASK_DECIDES}
    for name, spec in CONTROLS.items():
        keys = widget_keys(spec)
        where = prefix if all(prefix + k in state for k in keys) else ""
        read = [state[where + k] for k in keys]
        if spec.kind is float:
            read = [round(float(v), _decimals(spec.step)) for v in read]
        else:
            read = [spec.kind(v) for v in read]
        values[name] = tuple(read) if spec.count > 1 else read[0]
    return ShuffleNetConfig(**values)


def query_params_for(config: ShuffleNetConfig, task: Task, view: str, state: Mapping | None = None) -> dict[str, str]:
    """The URL query parameters of a selection; size and classes only when they differ from
    the task's preset and the channel shuffle only when it is off, so shared links stay short.
    With the session `state`, also the choices made on `view` (see `view_params`)."""
    params = {"view": VIEWS.get(view, "overview"), "task": task.key}
    for key, url in URL_KEYS.items():
        value = getattr(config, url.field)
        if (url.omit == "preset" and value == getattr(task, url.field)) or (
                url.omit == "default" and value == FIELDS[url.field].default):
            continue
        params[key] = _url_text(value)
    if state is not None:
        params.update(view_params(config, view, state))
    return params


# --- widgets --------------------------------------------------------------------------------

def _apply_task_preset() -> None:
    task = task_for(st.session_state)
    for name in TASK_PRESETS:
        st.session_state[name] = getattr(task, name)


def apply_configuration(config: ShuffleNetConfig, task_key: str | None = None, view: str | None = None) -> None:
    """Set the sidebar's controls to `config` (and the task and view when given), for buttons and
    clickable charts elsewhere on the page. Call it from a widget callback: it writes widget state
    before the widgets are drawn."""
    ss = st.session_state
    if task_key is not None:
        ss["task"] = TASK_BY_KEY[task_key].label
    for name, spec in CONTROLS.items():
        ss.update(_state(spec, getattr(config, name)))
    if view is not None:
        ss["view"] = view


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


def _keep_view_choices(config: ShuffleNetConfig, view: str) -> None:
    """The views' choices survive a visit to another view: Streamlit drops a widget's state when
    a run does not draw it, so each choice is kept aside (by URL key) while its widget exists and
    put back before its view draws it again, when it still fits the configuration."""
    ss = st.session_state
    kept = ss.setdefault("_view_choices", {})
    for key, entry in VIEW_KEYS.items():
        if not entry.widget:  # plain session state stays; its absence means something (B follows A)
            continue
        name = entry.state(config, ss)
        if name in ss:
            kept[key] = ss[name]
        elif entry.view in (None, view) and key in kept and kept[key] is not None and (
                entry.parse(entry.text(kept[key]), config, ss) is not None):
            ss[name] = kept[key]


def _control(spec: FieldSpec) -> None:
    """A field's widget from its declaration: a select box for choices, a toggle for a switch, a
    number input or slider for a range; `blocks` gets one slider per stage."""
    ss = st.session_state
    for stage, key in zip(STAGES, widget_keys(spec)):
        label = f"{spec.label} {stage}" if spec.count > 1 else spec.label
        if spec.choices:
            st.selectbox(label, spec.choices, index=spec.choices.index(ss[key]), key=key, help=spec.help)
        elif spec.kind is bool:
            st.toggle(label, value=ss[key], key=key, help=spec.help)
        elif spec.name in NUMBER_INPUTS:
            st.number_input(label, spec.low, spec.high, value=ss[key], key=key, step=spec.step, help=spec.help)
        else:
            st.slider(label, spec.low, spec.high, value=ss[key], key=key, step=spec.step,
                      format=FORMATS.get(spec.name), help=spec.help)


def render() -> Selection:
    _seed_from_url()
    ss = st.session_state
    # Every widget's default is its current value (`value=`/`index=` from the state), never the
    # widget's own first option or minimum: a browser that re-creates a widget from its element
    # (seen on a busy server: 8 sessions at once) takes the default, and sessions
    # drifted to g = 1, or to 32 px and 2 classes, without anyone touching those controls.
    with st.sidebar:
        st.header("ShuffleNet v1")
        view = st.radio("View", list(VIEWS), index=list(VIEWS).index(ss["view"]), key="view")
        st.subheader("Network")
        for name, spec in CONTROLS.items():
            if name not in NUMBER_INPUTS:
                _control(spec)
        labels = [t.label for t in TASKS]
        st.selectbox("Task", labels, index=labels.index(ss["task"]), key="task", on_change=_apply_task_preset,
                     format_func=lambda label: label + TASK_BY_LABEL[label].display)
        with st.expander("Advanced: input and classes"):  # not mounted in the browser until opened
            for name in NUMBER_INPUTS:
                _control(FIELDS[name])
        st.button("Reset to the paper's network", on_click=_reset_to_paper, key="reset")

    task = task_for(ss)
    warnings: tuple[str, ...] = ()
    try:
        config = config_from_state(ss)
    except ValueError as exc:  # the widgets' ranges should make this unreachable
        config = ShuffleNetConfig()
        warnings = (f"The controls describe an invalid network ({exc}); showing the paper's network.",)
    if config == ss.get("_url_config"):  # the link's warnings stay until the user changes something
        warnings = (*ss["_url_warnings"], *warnings)
    _keep_view_choices(config, view)
    params = query_params_for(config, task, view, ss)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    with st.sidebar:
        st.caption("The address bar holds this configuration and the choices on this page: copy it to share "
                   "the view.")
    return Selection(config=config, task=task, view=view, warnings=warnings)
