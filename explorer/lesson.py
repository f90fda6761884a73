"""Lesson mode: a lecture's steps, each opening a view on a network, with what to look at, a few
sentences to say and a question for the class, and Previous / Next to walk through them.

The steps live in one TOML file (`LESSON_FILE`, assets/lessons/shufflenet.toml), not in code, so a
teacher edits a lesson without touching Python; the file explains its own format. It is checked when
it is read (`load_lesson`): a step that names a view, a task, a field or a value the sidebar cannot
show, lacks its text or question, has a key nobody reads or quotes a figure that does not exist is
left out, and a warning names the step and the field; the other steps still run. Numbers are never
typed into the text: a `{placeholder}` is filled in from the library when the step is shown
(`figure`), so the text cannot drift from what the page computes.

The step shown is in the URL (`lesson=3`, one entry of `sidebar.VIEW_KEYS`), so a link opens that
step. A link that holds only the step (and perhaps `present`) sets the sidebar to the step's network
and view when the session starts; a link that also names a network or a view shows that network
with the step's text, because a link shows what was shared (`start`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from shufflenet import analysis, experiment, paper
from shufflenet.config import ALLOWED_GROUPS, FIELDS, ShuffleNetConfig

from . import format as fmt
from . import sidebar

ROOT = Path(__file__).resolve().parents[1]
#: The lesson the sidebar starts. Tests point it at a file of their own.
LESSON_FILE = ROOT / "assets" / "lessons" / "shufflenet.toml"
STEP_KEY = sidebar.LESSON_STEP_KEY  # session state: the number of the step shown; None or absent: no lesson
NOTE_KEY = "_lesson_note"  # a message about the step just opened (a link to a step that cannot be shown)
LINK_SEEN_KEY = "_lesson_link_seen"  # the session's first run has looked at the link's step

#: The keys of a step: the text ones, then those that set the page.
TEXTS = ("title", "look", "text", "question", "without_results")
REQUIRED = {"title": "heading", "look": "pointer to what to look at", "text": "text", "question": "question"}
STEP_KEYS = (*TEXTS, "view", "task", "config", "choices")
LESSON_KEYS = ("title", "summary", "step")
#: The sidebar fields a step's `config` may set: those with a control (the task decides the rest).
CONFIG_FIELDS = tuple(sidebar.CONTROLS)
#: View choices a step may not set: the lesson itself and presenter mode belong to the lecture.
NOT_CHOICES = (sidebar.LESSON_URL_KEY, sidebar.PRESENT_URL_KEY)
#: Placeholders that quote the measured results (`experiment.shipped_results`), absent from some copies.
MEASURED = ("measured_error", "measured_seeds")
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
OTHER_GROUPS = re.compile(r"g([0-9]+)_(.+)")


@dataclasses.dataclass(frozen=True)
class Step:
    """One validated step: its number in the file (1-based) and what it shows."""

    number: int
    title: str
    view: str  # a name in sidebar.VIEWS
    task: str  # a key of sidebar.TASK_BY_KEY
    config: ShuffleNetConfig
    choices: Mapping[str, Any]  # URL key of a view choice (sidebar.VIEW_KEYS) -> its value, in VIEW_KEYS order
    look: str
    text: str
    question: str
    without_results: str = ""


@dataclasses.dataclass(frozen=True)
class Lesson:
    """A lesson file as read: its valid steps, how many steps it has in all (the URL's range) and one
    message per problem found."""

    title: str = ""
    summary: str = ""
    steps: tuple[Step, ...] = ()
    count: int = 0
    problems: tuple[str, ...] = ()

    def step(self, number: int | None) -> Step | None:
        return next((s for s in self.steps if s.number == number), None)

    def neighbour(self, number: int, direction: int) -> Step | None:
        """The valid step before (-1) or after (+1) step `number`."""
        around = [s for s in self.steps if (s.number - number) * direction > 0]
        return (around[0] if direction > 0 else around[-1]) if around else None


# --- figures quoted by placeholders (formatting only: the numbers are the library's) -----------

@functools.lru_cache(maxsize=64)
def _figures(config: ShuffleNetConfig) -> Mapping[str, str]:
    """Every placeholder of a network, formatted as the page shows numbers."""
    f = analysis.key_figures(config)
    out = {"groups": str(config.groups), "scale": f"{config.scale:g}", "input_size": str(config.input_size),
           "num_classes": fmt.count(config.num_classes), "stem_channels": fmt.count(config.stem_width),
           "intensity": f"{f['intensity']:.2f}"}
    out.update({f"stage{stage}_channels": fmt.count(w) for stage, w in zip((2, 3, 4), config.stage_widths)})
    for name in ("conv_macs", "fc_macs", "macs", "params", "non_trainable", "layers", "activations"):
        out[name] = fmt.count(f[name])
    for name in ("conv_macs", "fc_macs", "macs"):
        out[f"{name}_m"] = fmt.millions(f[name])
    for name in ("model_bytes", "activation_bytes", "traffic_bytes"):
        out[name] = fmt.nbytes(f[name])
    for row in analysis.costs_by(config, "op").to_dict("records"):
        op = row["op"]
        out.update({f"{op}_macs": fmt.count(row["MACs"]), f"{op}_share": f"{row['MACs %']:.1f} %",
                    f"{op}_params": fmt.count(row["params"]), f"{op}_traffic": fmt.nbytes(row["traffic_bytes"]),
                    f"{op}_intensity": f"{row['intensity']:.2f}"})
    for row in analysis.layer_costs(config).to_dict("records"):
        name = row["name"]
        out.update({f"{name}_macs": fmt.count(row["MACs"]), f"{name}_params": fmt.count(row["params"]),
                    f"{name}_in": fmt.shape(row["input_shape"]), f"{name}_out": fmt.shape(row["output_shape"]),
                    f"{name}_groups": str(row["groups"])})
    for row in analysis.receptive_field_table(config).to_dict("records"):
        out[f"{row['stage']}_rf"] = fmt.count(row["receptive_field"])
    first = analysis.first_whole_input(analysis.receptive_field_table(config, "unit"))
    out["rf_whole_input"] = fmt.part(first["stage"], first["unit"])
    error = (paper.TABLE2_ERROR.get(config.scale, {}).get(config.groups) if config.shuffle
             else paper.TABLE3_ERROR.get((config.scale, config.groups), (None,))[0])
    if error is not None:
        out["paper_error"] = f"{error:.1f} %"
    return out


def _measured(config: ShuffleNetConfig, summary: Mapping | None) -> dict[str, str]:
    """The measured error of the results' cell with this network's g, width and shuffle."""
    if not summary:
        return {}
    points = experiment.accuracy_points(summary)
    if points.empty:
        return {}
    cell = points[(points["groups"] == config.groups) & (points["scale"] == config.scale)
                  & (points["shuffle"] == config.shuffle)]
    if cell.empty:
        return {}
    row = cell.iloc[0]
    return {"measured_error": f"{row['error']:.2f} %", "measured_seeds": str(int(row["seeds"]))}


def _resolve(name: str, config: ShuffleNetConfig) -> tuple[str, ShuffleNetConfig]:
    """A placeholder's figure and the network it is of: `g8_macs` is `macs` of the network with g = 8."""
    m = OTHER_GROUPS.fullmatch(name)
    if m and int(m[1]) in ALLOWED_GROUPS:
        return m[2], analysis.with_groups(config, int(m[1]))
    return name, config


def figure(name: str, config: ShuffleNetConfig, summary: Mapping | None = None) -> str | None:
    """The text of placeholder `name` for `config`, or None where it has no value (a measured
    figure without results, an op the network does not have)."""
    what, network = _resolve(name, config)
    if what in MEASURED:
        return _measured(network, summary).get(what)
    return _figures(network).get(what)


def fill(template: str, config: ShuffleNetConfig, summary: Mapping | None = None) -> str | None:
    """`template` with every placeholder filled in; None when one of them has no value."""
    values = {name: figure(name, config, summary) for name in set(PLACEHOLDER.findall(template))}
    if None in values.values():
        return None
    return PLACEHOLDER.sub(lambda m: values[m[1]], template)


def step_text(step: Step, summary: Mapping | None) -> str:
    """A step's text filled in; its `without_results` text where the measured results it quotes are
    missing (none shipped, or none for this network's cell)."""
    text = fill(step.text, step.config, summary)
    return text if text is not None else fill(step.without_results, step.config) or ""


def uses_measured(template: str) -> bool:
    return any(_resolve(name, ShuffleNetConfig())[0] in MEASURED for name in PLACEHOLDER.findall(template))


def _placeholder_problem(name: str, config: ShuffleNetConfig) -> str | None:
    m = OTHER_GROUPS.fullmatch(name)
    if m and int(m[1]) not in ALLOWED_GROUPS:
        return (f"quotes {{{name}}}, but a g{m[1]}_ prefix needs g to be one of "
                f"{', '.join(map(str, ALLOWED_GROUPS))}")
    what, network = _resolve(name, config)
    known = _figures(network)
    if what in MEASURED or what in known:
        return None
    near = difflib.get_close_matches(what, [*known, *MEASURED], n=3)
    hint = f" Did you mean {', '.join('{' + n + '}' for n in near)}?" if near else ""
    return (f"quotes {{{name}}}, a figure this step's network does not have.{hint} Placeholders are figures "
            "such as {macs}, {conv_macs}, {params}, {stage2_channels}, an op's {gconv1x1_share} or a layer's "
            "{stage3_unit2_gconv1_macs}, optionally prefixed g1_ ... g8_ (the header of the lesson file lists them)")


# --- reading and checking a lesson file --------------------------------------------------------

def _url_text(value: Any) -> str:
    """A TOML value as the URL writes it: booleans as 1/0, lists comma-separated."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _check_config(raw: Any, task: sidebar.Task, view: str) -> tuple[ShuffleNetConfig | None, list[str]]:
    """The step's network: the task's, with the fields `config` sets; it must be one the sidebar's
    controls can show (on their grid), or a link to the step would not open it."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [f"`config` must be a table of sidebar fields, e.g. config = {{ groups = 8 }}; "
                      f"it is {_shown(raw)}"]
    unknown = [k for k in raw if k not in CONFIG_FIELDS]
    if unknown:
        return None, [f"`config` has unknown field(s) {', '.join(f'`{k}`' for k in unknown)}; it may set "
                      f"{', '.join(CONFIG_FIELDS)}"]
    values = {name: getattr(task, name) for name in (*sidebar.TASK_DECIDES, *sidebar.TASK_PRESETS)}
    values.update(raw)
    try:
        config = ShuffleNetConfig(**values)
    except (TypeError, ValueError) as exc:
        return None, [f"`config`: {exc}"]
    state, _ = sidebar.parse_query_params(sidebar.query_params_for(config, task, view))
    shown = sidebar.config_from_state(state)
    off = [name for name in CONFIG_FIELDS if getattr(shown, name) != getattr(config, name)]
    if off:
        spec = FIELDS[off[0]]
        grid = f" in steps of {spec.step}" if spec.step and spec.kind is float else ""
        return None, [f"`config.{off[0]} = {_shown(raw.get(off[0], getattr(config, off[0])))}` is not a value the "
                      f"sidebar's controls can show: it must be {spec.allowed}{grid}"]
    return config, []


def _check_choices(raw: Any, config: ShuffleNetConfig, task: sidebar.Task, view: str) -> tuple[dict, list[str]]:
    """The view's own choices, checked as the URL checks them (`sidebar.VIEW_KEYS`)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [f"`choices` must be a table of the view's choices, e.g. choices = {{ flops = \"1\" }}; "
                    f"it is {_shown(raw)}"]
    problems = []
    allowed = [k for k, e in sidebar.VIEW_KEYS.items() if e.view == view]
    for key in raw:
        entry = sidebar.VIEW_KEYS.get(key)
        if key in NOT_CHOICES:
            problems.append(f"`choices.{key}`: the lesson and presenter mode are the teacher's, not a step's")
        elif entry is None:
            problems.append(f"`choices.{key}` is not a choice of any view; the {view} view's are "
                            f"{', '.join(allowed) or 'none'}")
        elif entry.view != view:
            problems.append(f"`choices.{key}` is a choice of the {entry.view} view, not of the {view} view; "
                            f"the {view} view's are {', '.join(allowed) or 'none'}")
    state, _ = sidebar.parse_query_params(sidebar.query_params_for(config, task, view))
    choices = {}
    for key in allowed:  # in VIEW_KEYS order: a range of units needs the part it is of
        if key not in raw:
            continue
        entry = sidebar.VIEW_KEYS[key]
        value = entry.parse(_url_text(raw[key]), config, state)
        if value is None:
            problems.append(f"`choices.{key} = {_shown(raw[key])}` is not valid: {entry.allowed(config, state)}")
        else:
            choices[key] = value
            state[entry.state(config, state)] = value
    return choices, problems


def _check_step(raw: Any, number: int) -> tuple[Step | None, list[str]]:
    """A step from its TOML table, or None and its problems (each without the step's name)."""
    if not isinstance(raw, dict):
        return None, ["must be a table: write each step under its own [[step]] line"]
    problems = []
    unknown = [k for k in raw if k not in STEP_KEYS]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(f'`{k}`' for k in unknown)}; a step may have "
                        f"{', '.join(STEP_KEYS)}")
    for key in TEXTS:
        value = raw.get(key)
        if key in REQUIRED and (not isinstance(value, str) or not value.strip()):
            problems.append(f"`{key}` is missing or empty: every step needs its {REQUIRED[key]}")
        elif value is not None and not isinstance(value, str):
            problems.append(f"`{key}` must be text in quotes; it is {_shown(value)}")
    view = raw.get("view")
    view = view if view in sidebar.VIEWS else sidebar.VIEW_BY_SLUG.get(str(view).lower())
    if "view" not in raw:
        problems.append(f"`view` is missing: every step opens a view, one of {', '.join(sidebar.VIEWS)}")
    elif view is None:
        problems.append(f"`view = {_shown(raw.get('view'))}` is not a view: it must be one of "
                        f"{', '.join(sidebar.VIEWS)}")
    task = sidebar.TASK_BY_KEY.get(str(raw.get("task", sidebar.TASKS[0].key)).lower())
    if task is None:
        problems.append(f"`task = {_shown(raw.get('task'))}` is not a task: it must be one of "
                        f"{', '.join(sidebar.TASK_BY_KEY)}")
    if problems:
        return None, problems
    config, problems = _check_config(raw.get("config"), task, view)
    if config is None:
        return None, problems
    choices, problems = _check_choices(raw.get("choices"), config, task, view)
    for key in TEXTS:
        for name in dict.fromkeys(PLACEHOLDER.findall(raw.get(key) or "")):
            problem = _placeholder_problem(name, config)
            if problem:
                problems.append(f"`{key}` {problem}")
    for key in ("title", "look", "question", "without_results"):
        if uses_measured(raw.get(key) or ""):
            problems.append(f"`{key}` quotes a measured result ({', '.join(MEASURED)}), which only `text` may: "
                            "`without_results` replaces it where this copy has no measured results")
    if uses_measured(raw["text"]) and not (raw.get("without_results") or "").strip():
        problems.append("`text` quotes measured results but the step has no `without_results` text, which "
                        "a copy of the explorer without measured results shows instead; add one")
    if problems:
        return None, problems
    clean = {k: raw[k].strip() for k in TEXTS if raw.get(k)}
    return Step(number=number, view=view, task=task.key, config=config, choices=choices, **clean), []


def load_lesson(path: Path) -> Lesson:
    """Read and check a lesson file; its problems are messages that say where, what and what to do."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Lesson(problems=(f"The lesson file `{name}` cannot be read ({getattr(exc, 'strerror', None) or exc}). "
                                f"It belongs in assets/lessons/; the lesson is off until it can be read.",))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Lesson(problems=(f"The lesson file `{name}` is not valid TOML: {exc}. Fix that line; the lesson "
                                "is off until then.",))
    problems = []
    unknown = [k for k in data if k not in LESSON_KEYS]
    if unknown:
        problems.append(f"Lesson file `{name}`: unknown key(s) {', '.join(f'`{k}`' for k in unknown)} at the top "
                        f"(allowed: {', '.join(LESSON_KEYS)}); they are ignored. A key meant for a step goes "
                        "under its [[step]] line.")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append(f"Lesson file `{name}`: `title` is missing; add title = \"...\" at the top.")
        title = name
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(f"Lesson file `{name}` has no steps: each step starts with a [[step]] line.")
        return Lesson(title=title, problems=tuple(problems))
    steps = []
    for number, raw in enumerate(raw_steps, start=1):
        step, found = _check_step(raw, number)
        if step is not None:
            steps.append(step)
            continue
        heading = raw.get("title") if isinstance(raw, dict) else None
        where = f"step {number}" + (f" ({heading.strip()})" if isinstance(heading, str) and heading.strip() else "")
        problems.append(f"Lesson file `{name}`, {where} is left out: {'; '.join(found)}. Fix the file; the other "
                        "steps still run.")
    summary = data.get("summary") if isinstance(data.get("summary"), str) else ""
    return Lesson(title=title.strip(), summary=summary.strip(), steps=tuple(steps), count=len(raw_steps),
                  problems=tuple(problems))


@functools.lru_cache(maxsize=4)
def _load(path: Path, stamp: tuple) -> Lesson:
    return load_lesson(path)


def current() -> Lesson:
    """The lesson of `LESSON_FILE`, read again when the file changes (a teacher editing it between
    steps sees the edit at the next click)."""
    try:
        info = LESSON_FILE.stat()
        stamp = (info.st_mtime_ns, info.st_size)
    except OSError:
        stamp = ()
    return _load(LESSON_FILE, stamp)


# --- the page ------------------------------------------------------------------------------------

def _apply(step: Step) -> None:
    """Open `step`: its network, task and view in the sidebar, its view's choices (the ones it does
    not name at their defaults, so a step looks the same every time). From a callback, or before
    the sidebar is drawn."""
    ss = st.session_state
    sidebar.apply_configuration(step.config, task_key=step.task, view=step.view)
    for key, entry in sidebar.VIEW_KEYS.items():
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
    if any(key in st.query_params for key in sidebar.SIDEBAR_URL_FIELDS):
        ss[STEP_KEY] = step.number
        return
    _apply(step)
    ss["_url_config"] = sidebar.config_from_state(ss)  # the link's other warnings stay, as the sidebar keeps them


def start() -> None:
    """Before the sidebar is drawn: a link's step sets the sidebar on the session's first run, and the
    sidebar gets the lesson's button."""
    ss = st.session_state
    sidebar._seed_from_url()  # idempotent: the link's values, before anything reads them
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


def render(selection: sidebar.Selection) -> None:
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
