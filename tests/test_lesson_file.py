"""The lesson file reader (explorer/lesson_file.py) on its own: steps checked against a view-choice
table given to it, step counting for the URL, and the lesson's URL key. No page is drawn."""

from __future__ import annotations

from pathlib import Path

from explorer import lesson_file
from explorer.state import switch
from shufflenet import ShuffleNetConfig

#: A view-choice table of one choice, standing in for the URL's.
KEYS = {"flops": switch("Complexity", "cx_flops", False, "FLOPs counting")}


def write(tmp_path: Path, *steps: str) -> Path:
    path = tmp_path / "lesson.toml"
    path.write_text('title = "T"\n' + "\n".join(f"[[step]]\n{s}" for s in steps), encoding="utf-8")
    return path


STEP = '''title = "Costs"
view = "complexity"
look = "The table."
text = "{macs} multiply-adds at g = {groups}."
question = "Why?"
config = { groups = 8 }
'''


def test_a_step_is_read_with_its_network_and_choices(tmp_path):
    read = lesson_file.load_lesson(write(tmp_path, STEP + 'choices = { flops = "1" }'), KEYS)
    assert read.problems == () and read.count == 1
    (step,) = read.steps
    assert (step.view, step.task, step.config) == ("Complexity", "imagenet", ShuffleNetConfig(groups=8))
    assert step.choices == {"flops": True}
    assert lesson_file.step_text(step, None) == f"{lesson_file.figure('macs', step.config)} multiply-adds at g = 8."


def test_a_choice_outside_the_given_table_leaves_the_step_out(tmp_path):
    read = lesson_file.load_lesson(write(tmp_path, STEP + 'choices = { color = "macs" }', STEP), KEYS)
    assert [s.number for s in read.steps] == [2] and read.count == 2
    (problem,) = read.problems
    assert "step 1 (Costs) is left out" in problem and "`choices.color` is not a choice of any view" in problem
    assert "the Complexity view's are flops" in problem


def test_a_value_off_the_sidebars_grid_is_named_with_what_is_allowed(tmp_path):
    read = lesson_file.load_lesson(write(tmp_path, STEP.replace("groups = 8", "scale = 0.33")), KEYS)
    assert read.steps == ()
    assert "`config.scale = 0.33` is not a value the sidebar's controls can show" in read.problems[0]


def test_step_count_counts_every_step_table_and_follows_edits(tmp_path):
    path = write(tmp_path, STEP, "not = 'a valid step'")
    assert lesson_file.step_count(path) == 2
    path.write_text(path.read_text(encoding="utf-8") + "\n[[step]]\ntitle = 'x'\n", encoding="utf-8")
    assert lesson_file.step_count(path) == 3
    path.write_text("title = ", encoding="utf-8")  # not TOML: nothing a link may open
    assert lesson_file.step_count(path) == 0
    assert lesson_file.step_count(tmp_path / "missing.toml") == 0


def test_the_lessons_url_key_accepts_the_files_step_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(lesson_file, "LESSON_FILE", write(tmp_path, STEP, STEP))
    entry = lesson_file.URL_KEYS[lesson_file.LESSON_URL_KEY]
    config = ShuffleNetConfig()
    assert [entry.parse(text, config, {}) for text in ("1", "2", "3", "0", "x")] == [1, 2, None, None, None]
    assert entry.allowed(config, {}) == "it must be the number of a step of the lesson, from 1 to 2"
    assert entry.state(config, {}) == lesson_file.STEP_KEY and not entry.widget
