"""Lesson mode (explorer/lesson.py, assets/lessons/shufflenet.toml): the shipped lesson is valid,
its numbers are the library's, a broken lesson file is reported step by step and field by field,
and in the app every step opens its view and network, Previous/Next walk the lesson, the step is
in the URL, and bad lesson numbers or a bad file give a warning and a valid page."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import apptest_support
import pytest
from apptest_support import no_exception, texts
from streamlit.testing.v1 import AppTest

from explorer import format as fmt
from explorer import lesson_file, url
from explorer import state as ui_state
from shufflenet import ShuffleNetConfig, analysis, experiment, paper

make_app = functools.partial(apptest_support.make_app, timeout_s=300)
def read_lesson(path: Path) -> lesson_file.Lesson:
    """A lesson file read as the app reads it: checked against the URL's view choices."""
    return lesson_file.load_lesson(path, url.VIEW_KEYS)


SHIPPED = read_lesson(lesson_file.LESSON_FILE)
#: The step of each topic the lesson must cover, in order: (view, what its title is about).
TOPICS = [("Complexity", "1×1"), ("Complexity", "group"), ("Compare", "Table 1"), ("Channel shuffle", "shuffle"),
          ("Architecture", "unit"), ("Accuracy", "ccuracy"), ("Latency", "latency"), ("Predictions", "rain")]


def panel(at: AppTest) -> str:
    """The lesson panel's heading, or "" when no lesson is shown."""
    return next((m.value for m in at.markdown if m.value.startswith("##### Lesson")), "")


def warnings(at: AppTest) -> str:
    """Every warning on the page, as one text."""
    return " ".join(texts(at, "warning"))


def sentences(text: str) -> int:
    """Sentences of plain prose: a full stop, question or exclamation mark before a space and a capital
    letter or a quote, or at the end ("Sec. 3.1" and "0.5x" do not end one)."""
    return len(re.findall(r"[.!?](?=\s+[A-Z\"`(]|\s*$)", text.strip()))


def write_lesson(tmp_path: Path, *steps: str, head: str = 'title = "A test lesson"') -> Path:
    path = tmp_path / "lesson.toml"
    path.write_text(head + "\n" + "\n".join(f"[[step]]\n{s}" for s in steps), encoding="utf-8")
    return path


GOOD = '''title = "Good"
view = "Overview"
look = "The figures."
text = "The network costs {macs} multiply-adds."
question = "Why?"
'''


# --- the shipped lesson ----------------------------------------------------------------------

def test_the_shipped_lesson_is_valid_and_covers_the_paper_in_order():
    assert SHIPPED.problems == () and SHIPPED.count == len(SHIPPED.steps) == len(TOPICS)
    for step, (view, topic) in zip(SHIPPED.steps, TOPICS):
        assert step.view == view and topic in step.title, step
    assert SHIPPED.steps[-1].task == "fashion-mnist" and SHIPPED.steps[5].view == "Accuracy"


@pytest.mark.parametrize("step", SHIPPED.steps, ids=lambda s: f"step{s.number}")
def test_every_step_is_a_network_the_sidebar_and_a_link_can_show(step):
    task = ui_state.TASK_BY_KEY[step.task]
    params = url.query_params_for(step.config, task, step.view)
    state, warns = url.parse_query_params(params)
    assert warns == [] and ui_state.config_from_state(state) == step.config and state["view"] == step.view
    for key, value in step.choices.items():
        entry = url.VIEW_KEYS[key]
        assert entry.view == step.view and entry.parse(entry.text(value), step.config, state) == value


@pytest.mark.parametrize("step", SHIPPED.steps, ids=lambda s: f"step{s.number}")
def test_every_step_says_where_to_look_a_few_sentences_and_a_question(step):
    summary = None if not lesson_file.uses_measured(step.text) else {"cells": []}
    text = lesson_file.step_text(step, summary)
    assert 3 <= sentences(text) <= 5, text
    assert step.question.endswith("?") and step.look
    for part in (text, step.title, step.look, step.question):
        assert not lesson_file.PLACEHOLDER.search(lesson_file.fill(part, step.config) or text), part


def test_placeholders_are_the_librarys_numbers():
    figures = analysis.key_figures(ShuffleNetConfig(groups=1))
    one = SHIPPED.steps[0]
    text = lesson_file.step_text(one, None)
    assert fmt.count(figures["macs"]) in text
    share = analysis.costs_by(ShuffleNetConfig(groups=1), "op").set_index("op").loc["conv1x1", "MACs %"]
    assert f"{share:.1f} %" in text
    # The g8_ prefix quotes the same network with g = 8; a layer's figures come from its row.
    g8_width = ShuffleNetConfig(groups=8).stage_widths[0]
    assert lesson_file.figure("g8_stage2_channels", ShuffleNetConfig()) == str(g8_width)
    layers = analysis.layer_costs(ShuffleNetConfig(groups=8)).set_index("name")
    assert lesson_file.figure("stage3_unit2_gconv1_macs", ShuffleNetConfig(groups=8)) == fmt.count(
        layers.loc["stage3_unit2_gconv1", "MACs"])
    paper_g8 = f"{paper.TABLE2_ERROR[0.5][8]:.1f} %"
    assert lesson_file.figure("paper_error", ShuffleNetConfig(groups=8, scale=0.5)) == paper_g8
    assert lesson_file.figure("paper_error", ShuffleNetConfig(groups=8, scale=0.75)) is None  # no such row
    assert lesson_file.figure("nonsense", ShuffleNetConfig()) is None


def _summary(errors: dict[int, list[float]], scale: float = 0.5) -> dict:
    runs = [{"groups": g, "scale": scale, "shuffle": True, "seed": seed, "test_error": e, "macs": 1, "params": 1,
             "training_seconds": 1.0} for g, es in errors.items() for seed, e in enumerate(es)]
    return {"cells": experiment.summarize(runs)}


def test_the_accuracy_step_quotes_measured_results_or_says_there_are_none():
    step = next(s for s in SHIPPED.steps if s.view == "Accuracy")
    measured = lesson_file.step_text(step, _summary({1: [0.101, 0.103], 8: [0.095, 0.097]}, step.config.scale))
    assert "9.60 %" in measured and "10.20 %" in measured and "2 training runs" in measured
    for missing in (None, _summary({1: [0.1]}, 0.25)):  # no results at all, or none for this cell
        text = lesson_file.step_text(step, missing)
        assert "no measured results" in text and "%" in text and "{" not in text


# --- a broken lesson file: every problem named, the other steps kept --------------------------

#: A broken step -> what its message must say (besides "step 2").
BROKEN = {
    'view = "Graphs"': ("`view = \"Graphs\"` is not a view", "Overview, Architecture"),
    'config = { groups = 5 }': ("`config`", "`groups` must be one of 1, 2, 3, 4, 8", "Received: groups=5"),
    'config = { scale = 0.3 }': ("`config.scale = 0.3`", "controls can show", "in steps of 0.25"),
    'config = { width = 2 }': ("unknown field(s) `width`", "groups, blocks"),
    'config = { groups = "eight" }': ("`groups` must be one of", "'eight'"),
    'task = "cifar"': ("`task = \"cifar\"` is not a task", "imagenet, fashion-mnist"),
    'choices = { flops = "1" }': ("`choices.flops` is a choice of the Complexity view, not of the Overview view",),
    'colour = "red"': ("unknown key(s) `colour`", "a step may have title, look"),
}


@pytest.mark.parametrize("change", list(BROKEN))
def test_a_bad_step_is_named_with_its_field_and_left_out(tmp_path, change):
    bad = GOOD.replace('title = "Good"', f'title = "Bad"\n{change}') if "view" not in change else GOOD.replace(
        'view = "Overview"', change)
    read = read_lesson(write_lesson(tmp_path, GOOD, bad, GOOD))
    (problem,) = read.problems
    assert "step 2 (Bad) is left out" in problem or "step 2 (Good) is left out" in problem
    assert all(part in problem for part in BROKEN[change]), problem
    assert "Fix the file" in problem
    assert [s.number for s in read.steps] == [1, 3] and read.count == 3


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace('question = "Why?"\n', ""), "`question` is missing or empty: every step needs its question"),
    (GOOD.replace('text = "The network costs {macs} multiply-adds."', 'text = "  "'), "`text` is missing or empty"),
    (GOOD.replace("{macs}", "{mcas}"),
     "quotes {mcas}, a figure this step's network does not have. Did you mean {macs}"),
    (GOOD.replace("{macs}", "{g5_macs}"), "a g5_ prefix needs g to be one of 1, 2, 3, 4, 8"),
    (GOOD.replace("{macs}", "{measured_error}"), "has no `without_results` text"),
    (GOOD.replace('look = "The figures."', 'look = "Error {measured_error}."'), "only `text` may"),
    (GOOD.replace('view = "Overview"', 'view = "Complexity"\nchoices = { flops = "2" }'),
     "`choices.flops = \"2\"` is not valid: it must be 1 or 0"),
    (GOOD.replace('view = "Overview"', 'view = "Overview"\nchoices = { lesson = 2 }'), "the teacher's, not a step's"),
    (GOOD.replace('question = "Why?"', "question = 42"), "`question` is missing or empty"),
])
def test_a_missing_or_unknown_text_field_is_named(tmp_path, text, expected):
    read = read_lesson(write_lesson(tmp_path, text, GOOD))
    (problem,) = read.problems
    assert "step 1" in problem and expected in problem, problem
    assert [s.number for s in read.steps] == [2]


@pytest.mark.parametrize(("content", "expected"), [
    ('title = "x"\n[[step]\n', "is not valid TOML"),
    ('title = "x"\n', "has no steps"),
    ("[[step]]\n" + GOOD, "`title` is missing"),
])
def test_a_broken_file_says_what_to_do(tmp_path, content, expected):
    path = tmp_path / "lesson.toml"
    path.write_text(content, encoding="utf-8")
    read = read_lesson(path)
    assert any(expected in p and "lesson.toml" in p for p in read.problems), read.problems
    assert read_lesson(tmp_path / "missing.toml").problems[0].startswith("The lesson file `missing.toml` "
                                                                               "cannot be read")


def test_unknown_top_level_keys_are_reported_but_the_lesson_runs(tmp_path):
    read = read_lesson(write_lesson(tmp_path, GOOD, head='title = "T"\nsteps_per_hour = 3'))
    (problem,) = read.problems
    assert "unknown key(s) `steps_per_hour` at the top" in problem and len(read.steps) == 1


# --- the app --------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_step_opens_its_view_and_network_and_next_walks_the_lesson(no_dot):
    at = make_app(lesson="1")
    for step in SHIPPED.steps:
        no_exception(at)
        assert f"step {step.number} of {SHIPPED.count}" in panel(at)
        assert at.radio(key="view").value == step.view
        assert ui_state.config_from_state(at.session_state) == step.config
        assert ui_state.task_for(at.session_state).key == step.task
        assert at.query_params["lesson"] == [str(step.number)] or at.query_params["lesson"] == str(step.number)
        for key, value in step.choices.items():
            assert at.session_state[url.VIEW_KEYS[key].state(step.config, at.session_state)] == value
        assert "{" not in " ".join(m.value for m in at.markdown if "Lesson" in m.value)
        if step is SHIPPED.steps[-1]:
            assert at.button(key="lesson_next").disabled
        else:
            at.button(key="lesson_next").click().run()
    at.button(key="lesson_previous").click().run()
    assert f"step {SHIPPED.steps[-2].number} of" in panel(at) and at.radio(key="view").value == "Latency"


@pytest.mark.slow
def test_a_link_to_a_step_opens_it_and_its_url_reopens_it():
    at = make_app(lesson="3")
    no_exception(at)
    assert "step 3 of" in panel(at) and at.radio(key="view").value == "Compare"
    assert at.session_state["cmp_b_groups"] == 8 and at.selectbox(key="groups").value == 1
    params = dict(at.query_params)
    assert params["lesson"] == "3" and params["b_groups"] == "8" and params["view"] == "compare"
    fresh = make_app(**params)  # the whole link: the same page
    no_exception(fresh)
    assert "step 3 of" in panel(fresh) and dict(fresh.query_params) == params and not fresh.warning


@pytest.mark.slow
def test_a_link_that_names_the_network_keeps_it_beside_the_steps_text():
    at = make_app(lesson="2", view="overview", groups="4")
    no_exception(at)
    assert "step 2 of" in panel(at)
    assert at.radio(key="view").value == "Overview" and at.selectbox(key="groups").value == 4
    assert any("moved on from this step's network" in c.value for c in at.caption)
    at.button(key="lesson_again").click().run()
    assert at.radio(key="view").value == "Complexity" and at.selectbox(key="groups").value == 8
    assert at.multiselect(key="cx_ops").value == ["gconv1x1"]


@pytest.mark.slow
def test_the_sidebar_starts_and_ends_the_lesson():
    at = make_app()
    no_exception(at)
    assert panel(at) == "" and "lesson" not in at.query_params
    at.button(key="lesson_start").click().run()
    assert "step 1 of" in panel(at) and at.radio(key="view").value == "Complexity"
    assert at.button(key="lesson_previous").disabled
    at.button(key="lesson_end").click().run()
    no_exception(at)
    assert panel(at) == "" and "lesson" not in at.query_params and at.button(key="lesson_start")


@pytest.mark.parametrize("value", ["99", "abc", "0", "-1"])
def test_a_bad_lesson_number_warns_and_the_lesson_stays_off(value):
    at = make_app(lesson=value)
    no_exception(at)
    assert (f"URL parameter `lesson={value}` is not valid: it must be the number of a step of the lesson, from 1 to "
            f"{SHIPPED.count}. Using the default lesson off (start it from the sidebar) instead.") in warnings(at)
    assert panel(at) == "" and at.radio(key="view").value == "Overview" and "lesson" not in at.query_params


@pytest.mark.slow
def test_a_bad_step_in_the_lesson_file_warns_and_the_link_opens_the_first_valid_step(tmp_path, monkeypatch):
    broken = GOOD.replace('title = "Good"', 'title = "Broken"\nconfig = { groups = 5 }')
    second = GOOD.replace('view = "Overview"', 'view = "Complexity"\nconfig = { groups = 2 }')
    monkeypatch.setattr(lesson_file, "LESSON_FILE", write_lesson(tmp_path, broken, second))
    at = make_app(lesson="1")
    no_exception(at)
    text = warnings(at)
    assert "Lesson file `lesson.toml`, step 1 (Broken) is left out: `config`: `groups` must be one of" in text
    assert "showing step 2, its first valid step, instead" in text
    assert "step 2 of 2" in panel(at) and at.radio(key="view").value == "Complexity"
    assert at.selectbox(key="groups").value == 2 and at.query_params["lesson"] == "2"
    assert at.button(key="lesson_previous").disabled  # step 1 is left out, so there is nothing before


@pytest.mark.slow
def test_a_lesson_file_without_valid_steps_warns_and_the_lesson_stays_off(tmp_path, monkeypatch):
    monkeypatch.setattr(lesson_file, "LESSON_FILE", write_lesson(tmp_path, GOOD.replace('view = "Overview"', "")))
    at = make_app(lesson="1")
    no_exception(at)
    assert "`view` is missing: every step opens a view" in warnings(at) and "the lesson is off" in warnings(at)
    assert panel(at) == "" and "lesson" not in at.query_params
    at.button(key="lesson_start").click().run()
    no_exception(at)
    assert "has no step that can be shown" in warnings(at) and panel(at) == ""
