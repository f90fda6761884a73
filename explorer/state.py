"""The session state the sidebar, the views and the lecture share, and how one of its keys is
written in a URL.

This module sits below every page module: the tasks and views the explorer knows, the widget keys
of the configuration's fields, the configuration they describe (`config_from_state`), and the
pieces a URL key is declared with (`ViewKey` and its makers `switch`, `choice`, `several`,
`whole`). Each view declares its own keys with them (`URL_KEYS` in the view's module), and
`explorer.url` collects them into the codec. Nothing here draws a widget.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import streamlit as st

from shufflenet.config import FIELDS, STAGES, FieldSpec, ShuffleNetConfig


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
CONTROLS = {name: spec for name, spec in FIELDS.items() if name not in TASK_DECIDES}
#: The controlled fields a task presets (`Task` attributes named like a field).
TASK_PRESETS = tuple(name for name in CONTROLS if name in {f.name for f in dataclasses.fields(Task)})


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the sidebar returns: the validated configuration and the rest of the choices."""

    config: ShuffleNetConfig
    task: Task
    view: str
    warnings: tuple[str, ...] = ()


def widget_keys(spec: FieldSpec) -> tuple[str, ...]:
    """The widget (and session state) keys of a field: its name, or one per stage for `blocks`."""
    return tuple(f"{spec.name}_stage{stage}" for stage in STAGES) if spec.count > 1 else (spec.name,)


BLOCK_KEYS = widget_keys(FIELDS["blocks"])


def field_default(spec: FieldSpec, task: Task):
    """A field's value until someone sets it: the task's preset, else the paper's."""
    return getattr(task, spec.name) if spec.name in TASK_PRESETS else spec.default


def field_state(spec: FieldSpec, value) -> dict:
    """A field's value as widget state: `blocks` spreads over one key per stage."""
    return dict(zip(widget_keys(spec), value if spec.count > 1 else (value,)))


def task_defaults(task: Task) -> dict:
    """The widget state of every controlled field before anyone touches it, for `task`."""
    return {k: v for spec in CONTROLS.values() for k, v in field_state(spec, field_default(spec, task)).items()}


DEFAULTS = {"view": "Overview", "task": TASKS[0].label, **task_defaults(TASKS[0])}


def decimals(step: float) -> int:
    """Decimals of a slider's grid: 2 for steps of 0.05 or 0.25, so 0.30000000000000004 is 0.3."""
    return len(f"{step:g}".partition(".")[2])


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
            read = [round(float(v), decimals(spec.step)) for v in read]
        else:
            read = [spec.kind(v) for v in read]
        values[name] = tuple(read) if spec.count > 1 else read[0]
    return ShuffleNetConfig(**values)


def apply_configuration(config: ShuffleNetConfig, task_key: str | None = None, view: str | None = None) -> None:
    """Set the sidebar's controls to `config` (and the task and view when given), for buttons and
    clickable charts elsewhere on the page. Call it from a widget callback: it writes widget state
    before the widgets are drawn."""
    ss = st.session_state
    if task_key is not None:
        ss["task"] = TASK_BY_KEY[task_key].label
    for name, spec in CONTROLS.items():
        ss.update(field_state(spec, getattr(config, name)))
    if view is not None:
        ss["view"] = view


# --- one value in the URL ---------------------------------------------------------------------

#: What a switch may say in the URL.
SWITCH_WORDS = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}
#: Longest piece of a URL value or key quoted back in a warning.
SHOWN_CHARS = 40


def shown(text: str) -> str:
    """A URL value or key as it may be quoted inside a Markdown code span: shortened, with
    backticks and control/format characters (newlines, bidi overrides) replaced, so a crafted
    link cannot close the span and inject links or images into the warning."""
    text = "".join(c if c.isprintable() and c != "`" else "\N{REPLACEMENT CHARACTER}" for c in text)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def url_text(value) -> str:
    """A value as the URL writes it: switches as 1/0, several values comma-separated."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def _on_grid(value: float, low: float, high: float, step: float) -> bool:
    k = (value - low) / step
    return low - 1e-9 <= value <= high + 1e-9 and math.isclose(k, round(k), abs_tol=1e-6)


def _parse_one(spec: FieldSpec, text: str):
    """One value of a field from URL text, or None where the controls could not show it."""
    try:
        x = float(text)
    except ValueError:
        return None
    if not math.isfinite(x):
        return None
    if spec.kind is float:
        return round(x, decimals(spec.step)) if _on_grid(x, spec.low, spec.high, spec.step) else None
    n = int(x) if x.is_integer() else None
    if spec.choices:
        return n if n in spec.choices else None
    return n if n is not None and spec.low <= n <= spec.high and (n - spec.low) % spec.step == 0 else None


def parse_field(spec: FieldSpec, text: str):
    """A field's value from URL text, or None where the sidebar's controls could not show it."""
    if spec.kind is bool:
        return SWITCH_WORDS.get(text.lower())
    values = [_parse_one(spec, part) for part in (text.replace(";", ",").split(",") if spec.count > 1 else [text])]
    if len(values) != spec.count or None in values:
        return None
    return tuple(values) if spec.count > 1 else values[0]


def allowed(spec: FieldSpec, subject: str) -> str:
    """What the URL may hold for a field, said the way the explorer's controls allow it."""
    if spec.kind is bool:
        return f"{subject} must be 1 or 0 (also true/false, on/off)"
    if spec.choices:
        return f"{subject} must be {spec.allowed}"
    span = f"from {spec.low:,} to {spec.high:,}"
    if spec.count > 1:
        count = ("two", "three", "four")[spec.count - 2]
        return f"{subject} must be {count} whole numbers {span}, one per stage, e.g. {url_text(spec.default)}"
    if spec.kind is float:
        return f"{subject} must be a number {span} in steps of {spec.step}"
    if spec.step > 1:
        return f"{subject} must be a multiple of {spec.step} {span}"
    return f"{subject} must be a whole number {span}"


class UrlField(NamedTuple):
    field: str  # the ShuffleNetConfig field it sets
    subject: str  # who "must be ..." in its warning
    fallback: str  # how its warning names the value used instead ({} is that value)
    omit: str = ""  # left out of links when the value is the task's "preset" or the field's "default"


#: URL key -> the configuration field it sets (the sidebar's keys; `view` and `task` are not fields).
FIELD_URL_KEYS = {
    "groups": UrlField("groups", "g", "g = {}"),
    "blocks": UrlField("blocks", "it", "blocks {}"),
    "reduction": UrlField("reduction", "it", "reduction {}"),
    "scale": UrlField("scale", "it", "scale {}"),  # always written, though a task presets it: links stay explicit
    "size": UrlField("input_size", "the input size", "size of the task, {}", omit="preset"),
    "classes": UrlField("num_classes", "it", "number of classes of the task, {}", omit="preset"),
    "shuffle": UrlField("shuffle", "it", "channel shuffle, {}", omit="default"),
}


# --- the views' choices in the URL ------------------------------------------------------------
# A choice made on a view (Compare's B, the Complexity toggles, the Architecture stage...) is one
# `ViewKey`: its URL key, the view that shows it and the session-state key it sets, declared in the
# view's module (`URL_KEYS`). A link seeds that state on a session's first run; while its view is
# shown, the value is written back to the URL unless it is the default. Each callable takes the
# configuration the sidebar describes and the session state, since what a choice may be can depend
# on them (the shuffle's layer width must be a multiple of g; a range of units must fit the stage).

@dataclasses.dataclass(frozen=True)
class ViewKey:
    """One choice of a view in the URL (made with `switch`, `choice`, `several`, `whole` or by hand)."""

    view: str | None  # the view (a name in VIEWS) that shows the choice; None: every view
    state: Callable[[ShuffleNetConfig, Mapping], str]  # the session-state (widget) key it sets
    parse: Callable[[str, ShuffleNetConfig, Mapping], Any]  # URL text -> value; None: not allowed
    allowed: Callable[[ShuffleNetConfig, Mapping], str]  # the warning's "it must be ..."
    default: Callable[[ShuffleNetConfig, Mapping], Any]  # what the view shows unset: left out of links
    fallback: Callable[[ShuffleNetConfig, Mapping], str]  # the warning's "Using the default ... instead"
    text: Callable[[Any], str] = url_text  # value -> URL text
    widget: bool = True  # `state` is a widget's, which Streamlit drops while its view is not drawn


def always(value) -> Callable[..., Any]:
    """A `ViewKey` callable that does not depend on the configuration or the state."""
    return lambda *_: value


def switch(view: str | None, state: str, default: bool, what: str) -> ViewKey:
    """A toggle: `flops=1`. `what` names it in the warning ("FLOPs counting")."""
    return ViewKey(view, always(state), lambda text, *_: SWITCH_WORDS.get(text.lower()),
                   always("it must be 1 or 0 (also true/false, on/off)"), always(default),
                   always(f"{what}, {'on' if default else 'off'}"))


def choice(view: str | None, state: str, options: Sequence, default, what: str) -> ViewKey:
    """One of `options`, written as its text: `color=macs`, `arch_stage=4`."""
    by_text = {str(option).lower(): option for option in options}
    return ViewKey(view, always(state), lambda text, *_: by_text.get(text.lower()),
                   always(f"it must be one of {', '.join(map(str, options))}"), always(default),
                   always(f"{what}, {default}"))


def several(view: str | None, state: str, options: Callable[[], Sequence[str]], what: str) -> ViewKey:
    """Some of `options` (a multiselect), comma-separated: `stages=stage3,stage4`; none: all."""
    def parse(text, *_):
        allowed = {o.lower(): o for o in options()}
        picked = [allowed.get(part.strip().lower()) for part in text.split(",") if part.strip()]
        return None if None in picked else list(dict.fromkeys(picked))

    return ViewKey(view, always(state), parse,
                   lambda *_: f"it must be some of {', '.join(options())}, comma-separated", always([]),
                   always(what), text=lambda value: ",".join(value))


def whole(view: str | None, state: str, low: int, high: int, default: Callable, what: str) -> ViewKey:
    """A whole number from `low` to `high`; `default(config, state)` may depend on the others."""
    def parse(text, *_):
        return int(text) if re.fullmatch(r"[0-9]{1,6}", text) and low <= int(text) <= high else None

    return ViewKey(view, always(state), parse, always(f"it must be a whole number from {low} to {high}"),
                   default, lambda config, state_: f"{what}, {default(config, state_)}")
