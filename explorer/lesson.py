"""Lesson mode: a lecture's steps, each opening a view on a network, with what to look at, a few
sentences to say and a question for the class, and Previous / Next to walk through them.

The steps are read and checked by `explorer.lesson_file`; this module is their panel. The step
shown is in the URL (`lesson=3`), so a link opens that step. A link that holds only the step (and
perhaps `present`) sets the sidebar to the step's network and view when the session starts; a link
that also names a network or a view shows that network with the step's text, because a link shows
what was shared (`start`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from shufflenet import experiment

from . import lesson_file, url
from .lesson_file import STEP_KEY, Lesson, Step, fill, step_text, uses_measured
from .state import Selection, apply_configuration, config_from_state

NOTE_KEY = "_lesson_note"  # a message about the step just opened (a link to a step that cannot be shown)
LINK_SEEN_KEY = "_lesson_link_seen"  # the session's first run has looked at the link's step


@functools.lru_cache(maxsize=lesson_file.FILE_VERSIONS)
def _load(path: Path, stamp: tuple) -> Lesson:
    return lesson_file.load_lesson(path, url.VIEW_KEYS)


def current() -> Lesson:
    """The lesson of `lesson_file.LESSON_FILE`, read again when the file changes (a teacher editing
    it between steps sees the edit at the next click)."""
    return _load(lesson_file.LESSON_FILE, lesson_file.stamp(lesson_file.LESSON_FILE))


# --- the page ------------------------------------------------------------------------------------

def _apply(step: Step) -> None:
    """Open `step`: its network, task and view in the sidebar, its view's choices (the ones it does
    not name at their defaults, so a step looks the same every time). From a callback, or before
    the sidebar is drawn."""
    ss = st.session_state
    apply_configuration(step.config, task_key=step.task, view=step.view)
    for key, entry in url.VIEW_KEYS.items():
        if entry.view == step.view:
            ss[entry.state(step.config, ss)] = step.choices[key] if key in step.choices else entry.default(
                step.config, ss)
    ss[STEP_KEY] = step.number


def _go(number: int) -> None:
    st.session_state.pop(NOTE_KEY, None)
    step = current().step(number)
    if step is not None:
        _apply(step)


def _begin() -> None:
    lesson = current()
    st.session_state.pop(NOTE_KEY, None)
    if lesson.steps:
        _apply(lesson.steps[0])
    else:
        st.session_state[STEP_KEY] = None
        st.session_state[NOTE_KEY] = "The lesson has no step that can be shown; see the warnings above."


def _end() -> None:
    st.session_state[STEP_KEY] = None
    st.session_state.pop(NOTE_KEY, None)


def _open_link() -> None:
    """The session's first run, with `lesson=N` in its link: open step N (or the first that can be
    shown) unless the link names the network or view itself."""
    ss = st.session_state
    lesson = current()
    step = lesson.step(ss[STEP_KEY])
    if step is None:
        if not lesson.steps:
            ss[NOTE_KEY] = (f"The link opens step {ss[STEP_KEY]} of the lesson, but the lesson has no step "
                            "that can be shown (see the warnings above); the lesson is off.")
            ss[STEP_KEY] = None
            return
        step = lesson.steps[0]
        ss[NOTE_KEY] = (f"The link opens step {ss[STEP_KEY]} of the lesson, which cannot be shown (see the "
                        f"warning about the lesson file); showing step {step.number}, its first valid step, instead.")
    if any(key in st.query_params for key in url.SIDEBAR_URL_FIELDS):
        ss[STEP_KEY] = step.number
        return
    _apply(step)
    ss[url.LINK_CONFIG_KEY] = config_from_state(ss)  # the link's other warnings stay, as the sidebar keeps them


def start() -> None:
    """Before the sidebar is drawn, after the link has seeded the session (`url.seed_from_url`): a
    link's step sets the sidebar on the session's first run, and the sidebar gets the lesson's button."""
    ss = st.session_state
    if not ss.get(LINK_SEEN_KEY):
        ss[LINK_SEEN_KEY] = True
        if ss.get(STEP_KEY) is not None:
            _open_link()
    with st.sidebar:
        if ss.get(STEP_KEY) is None:
            st.button("Start the lesson", on_click=_begin, key="lesson_start", icon=":material/school:",
                      help="Steps through the paper for a lecture: each step opens a view on a network, says what "
                           "to look at and asks the class a question. The step is in the address bar.")
        else:
            st.button("End the lesson", on_click=_end, key="lesson_end", icon=":material/close:")


def render(selection: Selection) -> None:
    """The step's panel above the view: what to look at, the text, the question, Previous / Next."""
    ss = st.session_state
    number = ss.get(STEP_KEY)
    note = ss.get(NOTE_KEY)
    if number is None and note is None:
        return
    lesson = current()
    for problem in lesson.problems:
        st.warning(problem)
    if note:
        st.warning(note)
    step = lesson.step(number)
    if step is None:
        if number is not None:
            first = lesson.steps[0] if lesson.steps else None
            st.warning(f"Step {number} of the lesson cannot be shown any more (see above)."
                       + (" Go on from its first valid step." if first else ""))
            if first:
                st.button(f"Go to step {first.number}", on_click=_go, args=(first.number,), key="lesson_first")
        return
    text = step_text(step, _results() if uses_measured(step.text) else None)
    with st.container(border=True, key="lesson_panel"):
        st.markdown(f"##### Lesson · step {step.number} of {lesson.count}: {fill(step.title, step.config)}")
        st.markdown(f":material/visibility: **Look at** {fill(step.look, step.config)}")
        st.markdown(text)
        st.markdown(f":material/record_voice_over: **Ask the class:** {fill(step.question, step.config)}")
        if (selection.config, selection.view, selection.task.key) != (step.config, step.view, step.task):
            st.caption(f"The page has moved on from this step's network ({step.config.label}, {step.view}); "
                       "the numbers above are the step's.")
        previous, following = lesson.neighbour(step.number, -1), lesson.neighbour(step.number, +1)
        with st.container(horizontal=True, gap="small"):
            st.button("Previous", on_click=_go, args=(previous.number if previous else step.number,),
                      disabled=previous is None, key="lesson_previous", icon=":material/arrow_back:")
            st.button("Next", on_click=_go, args=(following.number if following else step.number,),
                      disabled=following is None, key="lesson_next", icon=":material/arrow_forward:",
                      type="primary")
            if (selection.config, selection.view, selection.task.key) != (step.config, step.view, step.task):
                st.button("Back to this step's network", on_click=_go, args=(step.number,), key="lesson_again")


def _results() -> Mapping | None:
    """The shipped measured results, or None (none shipped, or a file that cannot be read: the
    Accuracy view says why)."""
    try:
        return experiment.shipped_results()
    except experiment.ExperimentError:
        return None
