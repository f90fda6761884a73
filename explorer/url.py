"""The URL codec: the address bar holds the configuration, the view and the choices made on the
views, so a link opens the page as it was seen.

`parse_query_params` turns a link into session state and one warning per value that cannot be
shown; `query_params_for` and `view_params` write the state back. The configuration's keys are
`state.FIELD_URL_KEYS`; the views' choices are declared by each view module (`URL_KEYS`), the
lesson's step by the lesson file reader and presenter mode by the presenter, and collected here
into `VIEW_KEYS`. No widget is drawn here: `seed_from_url` only writes the session state, once
per session.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from shufflenet.config import FIELDS, ShuffleNetConfig

from . import lesson_file, presenter
from .state import (
    FIELD_URL_KEYS,
    TASK_BY_KEY,
    TASKS,
    VIEW_BY_SLUG,
    VIEWS,
    Task,
    ViewKey,
    allowed,
    config_from_state,
    field_default,
    field_state,
    parse_field,
    shown,
    task_defaults,
    url_text,
)
from .views import accuracy, architecture, compare, complexity, inside, shuffle

#: The sidebar's URL keys, in the order their warnings are listed (`URL_FIELDS` adds the views' keys).
SIDEBAR_URL_FIELDS = ("view", "groups", "blocks", "reduction", "scale", "task", "size", "classes", "shuffle")

#: URL key -> the view's choice it holds, in the order their warnings are listed and links are
#: parsed (a range of units needs the part it is of). Adding a choice to links is one entry in its
#: view's `URL_KEYS`; a view reads its widget's value as usual (the URL only seeds the session
#: state under `state`).
VIEW_KEYS: Mapping[str, ViewKey] = {
    **compare.URL_KEYS,
    **complexity.URL_KEYS,
    **architecture.URL_KEYS,
    **shuffle.URL_KEYS,
    **inside.URL_KEYS,
    **accuracy.URL_KEYS,
    **lesson_file.URL_KEYS,
    **presenter.URL_KEYS,
}
#: Every key the URL knows, in the order their warnings are listed.
URL_FIELDS = (*SIDEBAR_URL_FIELDS, *VIEW_KEYS)


def _last(value):
    if isinstance(value, (list, tuple)):
        return value[-1] if value else ""
    return value


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

    def warn(key: str, allowed_: str, fallback: str) -> None:
        bad[key] = (f"URL parameter `{key}={shown(p[key])}` is not valid: {allowed_}. "
                    f"Using the default {fallback} instead.")

    view = VIEW_BY_SLUG.get(p.get("view", "overview").lower())
    if view is None:
        view = "Overview"
        warn("view", f"it must be one of {', '.join(VIEWS.values())}", "view, Overview")
    task = TASK_BY_KEY.get(p.get("task", TASKS[0].key).lower().replace("_", "-"))
    if task is None:
        task = TASKS[0]
        warn("task", f"it must be one of {', '.join(TASK_BY_KEY)}", f"task, {task.key}")
    state = {"view": view, "task": task.label, **task_defaults(task)}
    for key, url in FIELD_URL_KEYS.items():
        if key not in p:
            continue
        spec = FIELDS[url.field]
        value = parse_field(spec, p[key])
        if value is None:
            default = field_default(spec, task)
            said = ("on" if default else "off") if spec.kind is bool else url_text(default)
            warn(key, allowed(spec, url.subject), url.fallback.format(said))
        else:
            state.update(field_state(spec, value))
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
        listed = ", ".join(f"`{shown(k)}`" for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        warnings.append(f"Unknown URL parameter(s) ignored: {listed}{more}. Known: {', '.join(URL_FIELDS)}.")
    return state, warnings


def query_params_for(config: ShuffleNetConfig, task: Task, view: str, state: Mapping | None = None) -> dict[str, str]:
    """The URL query parameters of a selection; size and classes only when they differ from
    the task's preset and the channel shuffle only when it is off, so shared links stay short.
    With the session `state`, also the choices made on `view` (see `view_params`)."""
    params = {"view": VIEWS.get(view, "overview"), "task": task.key}
    for key, url in FIELD_URL_KEYS.items():
        value = getattr(config, url.field)
        if (url.omit == "preset" and value == getattr(task, url.field)) or (
                url.omit == "default" and value == FIELDS[url.field].default):
            continue
        params[key] = url_text(value)
    if state is not None:
        params.update(view_params(config, view, state))
    return params


def keep_view_choices(config: ShuffleNetConfig, view: str, ss: dict) -> None:
    """The views' choices survive a visit to another view: Streamlit drops a widget's state when
    a run does not draw it, so each choice is kept aside (by URL key) while its widget exists and
    put back before its view draws it again, when it still fits the configuration."""
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


#: Session state: the warnings of the session's link, and the configuration it described (the
#: warnings stay shown until the user changes something).
WARNINGS_KEY, LINK_CONFIG_KEY = "_url_warnings", "_url_config"


def seed_from_url() -> None:
    """On a session's first run, put the URL's values into the widgets' state (later runs: nothing)."""
    ss = st.session_state
    if WARNINGS_KEY in ss:
        return
    state, warnings = parse_query_params(st.query_params.to_dict())
    for key, value in state.items():
        ss[key] = value
    ss[WARNINGS_KEY] = tuple(warnings)
    ss[LINK_CONFIG_KEY] = config_from_state(state)
