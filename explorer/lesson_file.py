"""The lesson file: a lecture's steps, read and checked, with no page drawn.

The steps live in one TOML file (`LESSON_FILE`, assets/lessons/shufflenet.toml), not in code, so a
teacher edits a lesson without touching Python; the file explains its own format. It is checked when
it is read (`load_lesson`): a step that names a view, a task, a field or a value the sidebar cannot
show, lacks its text or question, has a key nobody reads or quotes a figure that does not exist is
left out, and a problem names the step and the field; the other steps still run. Numbers are never
typed into the text: a `{placeholder}` is filled in from the library when the step is shown
(`figure`), so the text cannot drift from what the page computes.

The step shown is in the URL (`lesson=3`, this module's `URL_KEYS`, collected by `explorer.url`);
its range is the number of steps in the file (`step_count`). The panel that shows a step is
`explorer.lesson`.
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

from shufflenet import analysis, experiment, paper
from shufflenet.config import ALLOWED_GROUPS, FIELDS, ShuffleNetConfig
from shufflenet.paths import assets_dir
from shufflenet.settings import SETTINGS

from . import format as fmt
from .presenter import PRESENT_KEY
from .state import (
    CONTROLS,
    FIELD_URL_KEYS,
    TASK_BY_KEY,
    TASK_DECIDES,
    TASK_PRESETS,
    TASKS,
    VIEW_BY_SLUG,
    VIEWS,
    Task,
    ViewKey,
    always,
    config_from_state,
    field_state,
    parse_field,
    task_defaults,
    url_text,
)

#: The lesson the sidebar starts. Tests point it at a file of their own.
LESSON_FILE = assets_dir() / "lessons" / "shufflenet.toml"
#: Versions of the lesson file kept read (a teacher editing it between steps makes a new one).
FILE_VERSIONS = 4
#: The step shown: its URL key, and its session-state key (the number of the step; None or absent: no lesson).
LESSON_URL_KEY, STEP_KEY = "lesson", "lesson_step"

#: The keys of a step: the text ones, then those that set the page.
TEXTS = ("title", "look", "text", "question", "without_results")
REQUIRED = {"title": "heading", "look": "pointer to what to look at", "text": "text", "question": "question"}
STEP_KEYS = (*TEXTS, "view", "task", "config", "choices")
LESSON_KEYS = ("title", "summary", "step")
#: The sidebar fields a step's `config` may set: those with a control (the task decides the rest).
CONFIG_FIELDS = tuple(CONTROLS)
#: View choices a step may not set: the lesson itself and presenter mode belong to the lecture.
NOT_CHOICES = (LESSON_URL_KEY, PRESENT_KEY)
#: Placeholders that quote the measured results (`experiment.shipped_results`), absent from some copies.
MEASURED = ("measured_error", "measured_seeds")
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
OTHER_GROUPS = re.compile(r"g([0-9]+)_(.+)")


@dataclasses.dataclass(frozen=True)
class Step:
    """One validated step: its number in the file (1-based) and what it shows."""

    number: int
    title: str
    view: str  # a name in state.VIEWS
    task: str  # a key of state.TASK_BY_KEY
    config: ShuffleNetConfig
    choices: Mapping[str, Any]  # URL key of a view choice (`url.VIEW_KEYS`) -> its value, in that order
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

@functools.lru_cache(maxsize=SETTINGS.table_entries)
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

def _as_written(value: Any) -> str:
    """A TOML value as a problem quotes it: text in double quotes, anything else as Python shows it."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _check_config(raw: Any, task: Task, view: str) -> tuple[ShuffleNetConfig | None, list[str]]:
    """The step's network: the task's, with the fields `config` sets; it must be one the sidebar's
    controls can show (on their grid), or a link to the step would not open it."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [f"`config` must be a table of sidebar fields, e.g. config = {{ groups = 8 }}; "
                      f"it is {_as_written(raw)}"]
    unknown = [k for k in raw if k not in CONFIG_FIELDS]
    if unknown:
        return None, [f"`config` has unknown field(s) {', '.join(f'`{k}`' for k in unknown)}; it may set "
                      f"{', '.join(CONFIG_FIELDS)}"]
    values = {name: getattr(task, name) for name in (*TASK_DECIDES, *TASK_PRESETS)}
    values.update(raw)
    try:
        config = ShuffleNetConfig(**values)
    except (TypeError, ValueError) as exc:
        return None, [f"`config`: {exc}"]
    shown = _as_linked(config, task)
    off = [name for name in CONFIG_FIELDS if getattr(shown, name) != getattr(config, name)]
    if off:
        spec = FIELDS[off[0]]
        grid = f" in steps of {spec.step}" if spec.step and spec.kind is float else ""
        return None, [f"`config.{off[0]} = {_as_written(raw.get(off[0], getattr(config, off[0])))}` is not a value the "
                      f"sidebar's controls can show: it must be {spec.allowed}{grid}"]
    return config, []


def _check_choices(raw: Any, config: ShuffleNetConfig, task: Task, view: str,
                   view_keys: Mapping[str, ViewKey]) -> tuple[dict, list[str]]:
    """The view's own choices, checked as the URL checks them (`view_keys`, the URL's)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [f"`choices` must be a table of the view's choices, e.g. choices = {{ flops = \"1\" }}; "
                    f"it is {_as_written(raw)}"]
    problems = []
    allowed = [k for k, e in view_keys.items() if e.view == view]
    for key in raw:
        entry = view_keys.get(key)
        if key in NOT_CHOICES:
            problems.append(f"`choices.{key}`: the lesson and presenter mode are the teacher's, not a step's")
        elif entry is None:
            problems.append(f"`choices.{key}` is not a choice of any view; the {view} view's are "
                            f"{', '.join(allowed) or 'none'}")
        elif entry.view != view:
            problems.append(f"`choices.{key}` is a choice of the {entry.view} view, not of the {view} view; "
                            f"the {view} view's are {', '.join(allowed) or 'none'}")
    state = {"view": view, "task": task.label, **_widget_state(config)}
    choices = {}
    for key in allowed:  # in VIEW_KEYS order: a range of units needs the part it is of
        if key not in raw:
            continue
        entry = view_keys[key]
        value = entry.parse(url_text(raw[key]), config, state)
        if value is None:
            problems.append(f"`choices.{key} = {_as_written(raw[key])}` is not valid: {entry.allowed(config, state)}")
        else:
            choices[key] = value
            state[entry.state(config, state)] = value
    return choices, problems


def _check_step(raw: Any, number: int, view_keys: Mapping[str, ViewKey]) -> tuple[Step | None, list[str]]:
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
            problems.append(f"`{key}` must be text in quotes; it is {_as_written(value)}")
    view = raw.get("view")
    view = view if view in VIEWS else VIEW_BY_SLUG.get(str(view).lower())
    if "view" not in raw:
        problems.append(f"`view` is missing: every step opens a view, one of {', '.join(VIEWS)}")
    elif view is None:
        problems.append(f"`view = {_as_written(raw.get('view'))}` is not a view: it must be one of "
                        f"{', '.join(VIEWS)}")
    task = TASK_BY_KEY.get(str(raw.get("task", TASKS[0].key)).lower())
    if task is None:
        problems.append(f"`task = {_as_written(raw.get('task'))}` is not a task: it must be one of "
                        f"{', '.join(TASK_BY_KEY)}")
    if problems:
        return None, problems
    config, problems = _check_config(raw.get("config"), task, view)
    if config is None:
        return None, problems
    choices, problems = _check_choices(raw.get("choices"), config, task, view, view_keys)
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


def read_toml(path: Path) -> tuple[dict | None, str]:
    """The lesson file's TOML, or None and why it cannot be read (what to do included)."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, (f"The lesson file `{name}` cannot be read ({getattr(exc, 'strerror', None) or exc}). "
                      f"It belongs in assets/lessons/; the lesson is off until it can be read.")
    try:
        return tomllib.loads(text), ""
    except tomllib.TOMLDecodeError as exc:
        return None, f"The lesson file `{name}` is not valid TOML: {exc}. Fix that line; the lesson is off until then."


def load_lesson(path: Path, view_keys: Mapping[str, ViewKey]) -> Lesson:
    """Read and check a lesson file against the URL's view choices (`url.VIEW_KEYS`); its problems are
    messages that say where, what and what to do."""
    name = path.name
    data, problem = read_toml(path)
    if data is None:
        return Lesson(problems=(problem,))
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
        step, found = _check_step(raw, number, view_keys)
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


def _widget_state(config: ShuffleNetConfig) -> dict:
    """The sidebar's widget state for `config`."""
    return {k: v for name, spec in CONTROLS.items() for k, v in field_state(spec, getattr(config, name)).items()}


def _as_linked(config: ShuffleNetConfig, task: Task) -> ShuffleNetConfig:
    """The network a link to `config` on `task` opens: each field read back from its URL text as a
    link is read, so a value off the controls' grid comes back as the task's default."""
    state = {"task": task.label, **task_defaults(task)}
    for url in FIELD_URL_KEYS.values():
        spec = FIELDS[url.field]
        value = parse_field(spec, url_text(getattr(config, url.field)))
        if value is not None:
            state.update(field_state(spec, value))
    return config_from_state(state)


def stamp(path: Path) -> tuple:
    """What changes when a file is edited (empty where it cannot be read): a cache key."""
    try:
        info = path.stat()
    except OSError:
        return ()
    return info.st_mtime_ns, info.st_size


@functools.lru_cache(maxsize=FILE_VERSIONS)
def _count(path: Path, stamp_: tuple) -> int:
    data, _ = read_toml(path)
    steps = (data or {}).get("step")
    return len(steps) if isinstance(steps, list) else 0


def step_count(path: Path | None = None) -> int:
    """How many steps the lesson file has, valid or not (the numbers a link may name); 0 when it
    cannot be read. Read again when the file changes."""
    path = LESSON_FILE if path is None else path
    return _count(path, stamp(path))


def _parse_step(text: str, *_) -> int | None:
    return int(text) if re.fullmatch(r"[0-9]{1,3}", text) and 1 <= int(text) <= step_count() else None


def _step_allowed(*_) -> str:
    count = step_count()
    if not count:
        return "the lesson file has no steps to open (see its warning when the lesson is started)"
    return f"it must be the number of a step of the lesson, from 1 to {count}"


#: The lesson's step in the URL, on every view (plain state, set by the lesson's buttons).
URL_KEYS = {
    LESSON_URL_KEY: ViewKey(None, always(STEP_KEY), _parse_step, _step_allowed, always(None),
                            always("lesson off (start it from the sidebar)"), widget=False),
}
