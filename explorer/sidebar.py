"""The sidebar: the configuration controls and the view chooser.

`render()` draws the widgets and returns plain values (a `state.Selection`); the URL that mirrors
them is `explorer.url`'s, the state they share with the views `explorer.state`'s.
"""

from __future__ import annotations

import streamlit as st

from shufflenet.config import FIELDS, STAGES, FieldSpec, ShuffleNetConfig

from . import url
from .state import (
    CONTROLS,
    DEFAULTS,
    TASK_BY_LABEL,
    TASK_PRESETS,
    TASKS,
    VIEWS,
    Selection,
    Task,
    config_from_state,
    task_for,
    widget_keys,
)
from .url import parse_query_params, query_params_for

# bench/ imports the codec's names from here too; their home is `explorer.state` and `explorer.url`.
__all__ = ["TASKS", "TASK_BY_LABEL", "VIEWS", "Selection", "Task", "config_from_state", "parse_query_params",
           "query_params_for", "render"]

#: Fields shown as number inputs in the "Advanced" expander (every other range is a slider).
NUMBER_INPUTS = ("input_size", "num_classes")
FORMATS = {"scale": "%.2fx"}


# --- widgets --------------------------------------------------------------------------------

def _apply_task_preset() -> None:
    task = task_for(st.session_state)
    for name in TASK_PRESETS:
        st.session_state[name] = getattr(task, name)


def _reset_to_paper() -> None:
    for key, value in DEFAULTS.items():
        if key != "view":
            st.session_state[key] = value


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
    url.seed_from_url()  # idempotent: the app seeds the session before anything draws
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
    if config == ss.get(url.LINK_CONFIG_KEY):  # the link's warnings stay until the user changes something
        warnings = (*ss[url.WARNINGS_KEY], *warnings)
    url.keep_view_choices(config, view, ss)
    params = url.query_params_for(config, task, view, ss)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    with st.sidebar:
        st.caption("The address bar holds this configuration and the choices on this page: copy it to share "
                   "the view.")
    return Selection(config=config, task=task, view=view, warnings=warnings)
