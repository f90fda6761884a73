"""The classroom benchmark (bench/classroom.py) and its browserless Streamlit client
(bench/st_protocol.py).

The pure parts are tested on hand-made ForwardMsgs: which widget states a rerun carries (what a
browser would send), and that the page checks catch a wrong number or a wrong page. The slow test
is a short class (3 sessions x 3 changes) against a real server, and then a session that lies
about its choices, to show on the real server that the checks do fire.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

import classroom
import pytest
import st_protocol
from st_protocol import FINISHED, Page, ProtocolError
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Slider_pb2 import Slider

from explorer.state import TASKS, config_from_state
from shufflenet import ShuffleNetConfig, complexity

SIDEBAR, MAIN = 1, 0


# --- building ForwardMsgs by hand -------------------------------------------------------------

def wid(key: str) -> str:
    return f"$$ID-0123456789abcdef-{key}"


def element(path, etype: str, **fields) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path[:] = path
    el = getattr(msg.delta.new_element, etype)
    el.SetInParent()
    for name, value in fields.items():
        if isinstance(value, (list, tuple)):
            getattr(el, name).extend(value)
        else:
            setattr(el, name, value)
    return msg


def expander(path, expanded: bool) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path[:] = path
    msg.delta.add_block.expandable.label = "Advanced"
    msg.delta.add_block.expandable.expanded = expanded
    return msg


def run(page: Page, *messages: ForwardMsg, status=FINISHED.FINISHED_SUCCESSFULLY) -> Page:
    page.begin_run()
    for msg in messages:
        page.handle(msg)
    page.finish_run(status)
    return page


def sidebar_messages(groups_set: str | None = None, collapsed: bool = True) -> list[ForwardMsg]:
    """A sidebar like the app's: view radio, g select box, sliders, a switch, an expander with
    number inputs, a button; and a main area with a select slider."""
    groups = dict(raw_value=groups_set, set_value=True) if groups_set else {}
    return [
        element([SIDEBAR, 0], "radio", id=wid("view"), label="View", options=["Overview", "Compare"], default=0),
        element([SIDEBAR, 1], "selectbox", id=wid("groups"), label="Groups g", options=["1", "2", "3", "4", "8"],
                default=2, **groups),
        element([SIDEBAR, 2], "slider", id=wid("scale"), label="Width scale s", min=0.25, max=3.0, step=0.25,
                default=[1.0], data_type=Slider.FLOAT),
        element([SIDEBAR, 3], "slider", id=wid("blocks_stage2"), label="Units in stage 2", min=1, max=16, step=1,
                default=[4], value=[6], set_value=True, data_type=Slider.INT),
        element([SIDEBAR, 4], "checkbox", id=wid("shuffle"), label="Channel shuffle", default=True),
        expander([SIDEBAR, 5], expanded=not collapsed),
        element([SIDEBAR, 5, 0], "number_input", id=wid("input_size"), label="Input size", default=224,
                data_type=NumberInput.INT),
        element([SIDEBAR, 6], "button", id=wid("None"), label="Reset"),
        element([MAIN, 0], "slider", id=wid("shuffle_width_g3"), label="Layer width", options=["6", "12", "24"],
                default=[1], type=Slider.SELECT_SLIDER),
        element([MAIN, 1], "metric", label="MACs with FC", body="1,000"),
    ]


def sent(page: Page) -> dict[str, object]:
    """What the next rerun_script carries: widget key -> value."""
    states = page.rerun_message("http://127.0.0.1:1").rerun_script.widget_states.widgets
    out = {}
    for ws in states:
        which = ws.WhichOneof("value")
        value = getattr(ws, which)
        out[st_protocol.widget_key(ws.id)] = list(value.data) if which.endswith("_array_value") else value
    assert len(out) == len(states), "one state per widget"
    return out


# --- the protocol client ---------------------------------------------------------------------

def test_a_rerun_carries_every_mounted_widget_as_the_frontend_sends_it():
    page = run(Page(), *sidebar_messages())
    assert sent(page) == {
        "view": "Overview",  # radio: its default option, as text
        "groups": "3",  # select box: the formatted option
        "scale": [1.0],  # slider: default, as a double array
        "blocks_stage2": [6.0],  # the server set it: its value, not its default
        "shuffle": True,
        "shuffle_width_g3": ["12"],  # select slider: the option strings
    }  # neither the number input in the collapsed expander nor the button
    opened = run(Page(), *sidebar_messages(collapsed=False))
    assert sent(opened)["input_size"] == 224
    ws = next(w for w in opened.rerun_message().rerun_script.widget_states.widgets if w.id == wid("input_size"))
    assert ws.WhichOneof("value") == "int_value"  # an integer number input sends int_value


def test_set_widget_changes_that_widget_only_and_refuses_what_no_user_could_send():
    page = run(Page(), *sidebar_messages())
    before = sent(page)
    page.set_widget("groups", "8")
    page.set_widget("scale", 2.5)
    assert sent(page) == {**before, "groups": "8", "scale": [2.5]}
    with pytest.raises(ValueError, match="not an option"):
        page.set_widget("groups", "5")
    with pytest.raises(ValueError, match="outside"):
        page.set_widget("scale", 3.25)
    with pytest.raises(ProtocolError, match="input_size"):  # in the collapsed expander: not mounted
        page.set_widget("input_size", 64)
    with pytest.raises(ProtocolError, match="cmp_groups"):
        page.set_widget("cmp_groups", "2")
    assert sent(page) == {**before, "groups": "8", "scale": [2.5]}  # the refused ones changed nothing


def test_a_user_change_survives_reruns_unless_the_server_sets_the_widget():
    page = run(Page(), *sidebar_messages())
    page.set_widget("groups", "8")
    page.set_widget("scale", 2.5)
    run(page, *sidebar_messages())  # elements without set_value: the frontend keeps the user's values
    assert sent(page)["groups"] == "8" and sent(page)["scale"] == [2.5]
    run(page, *sidebar_messages(groups_set="1"))  # e.g. a reset button's callback
    assert sent(page)["groups"] == "1"
    run(page, *sidebar_messages()[:2])  # widgets the run no longer sent are dropped
    assert set(sent(page)) == {"view", "groups"}
    run(page, sidebar_messages()[0], status=FINISHED.FINISHED_EARLY_FOR_RERUN)  # an interrupted run keeps the page
    assert set(sent(page)) == {"view", "groups"}


def test_cached_messages_are_resolved_offered_back_and_expire():
    big = element([MAIN, 0], "metric", label="MACs with FC", body="7")
    big.hash, big.metadata.cacheable = "h1", True
    page = run(Page(), big)
    assert list(page.rerun_message().rerun_script.cached_message_hashes) == ["h1"]
    ref = ForwardMsg(ref_hash="h1")
    ref.metadata.delta_path[:] = [MAIN, 3]
    run(page, ref)
    assert page.metrics() == {"MACs with FC": ["7"]} and (MAIN, 3) in page.elements
    for _ in range(st_protocol.DEFAULT_CACHE_AGE + 1):
        run(page)
    assert list(page.rerun_message().rerun_script.cached_message_hashes) == []
    page.begin_run()
    with pytest.raises(ProtocolError, match="h1"):
        page.handle(ref)


def test_the_address_bar_follows_the_server_and_reads_back_exceptions_and_headings():
    page = Page()
    info = ForwardMsg()
    info.page_info_changed.query_string = "view=compare&groups=2"
    run(page, info, element([MAIN, 0], "heading", body="ShuffleNet Explorer · Compare"),
        element([MAIN, 1], "exception", type="ValueError", message="boom"))
    assert page.rerun_message().rerun_script.query_string == "view=compare&groups=2"
    assert page.headings() == ["ShuffleNet Explorer · Compare"]
    assert page.exceptions() == ["ValueError: boom"]


def test_widget_keys_are_read_from_widget_ids():
    assert st_protocol.widget_key("$$ID-c27140b190a41c122b63c954b6c3a710-view") == "view"
    assert st_protocol.widget_key("$$ID-abc-cmp_scale") == "cmp_scale"
    assert st_protocol.widget_key("$$ID-abc-None") is None  # a widget without a key
    assert st_protocol.widget_key("") is None


# --- the checks --------------------------------------------------------------------------------

CONFIG = ShuffleNetConfig(groups=8, blocks=(2, 3, 1), scale=0.5, reduction=0.3)


def right_metrics(config=CONFIG) -> dict[str, list[str]]:
    totals = complexity.totals(config)
    return {"MACs without FC (Table 1)": [f"{totals['conv_macs']:,}"], "MACs with FC": [f"{totals['macs']:,}"]}


def test_check_numbers_accepts_the_library_s_figures_and_catches_a_wrong_one():
    assert classroom.check_numbers(right_metrics(), CONFIG, "Overview") == ([], 2)
    totals = complexity.totals(CONFIG)
    other_g = complexity.totals(CONFIG.replace(groups=4))["macs"]
    for wrong in (f"{totals['macs'] + 1:,}", str(totals["macs"]), f"{other_g:,}"):  # off by one, unformatted, g = 4
        shown = {**right_metrics(), "MACs with FC": [wrong]}
        problems, checked = classroom.check_numbers(shown, CONFIG, "Overview")
        assert checked == 2 and len(problems) == 1 and wrong in problems[0], (wrong, problems)


def test_check_numbers_on_the_overview_needs_the_figures():
    problems, checked = classroom.check_numbers({}, CONFIG, "Overview")
    assert checked == 0 and len(problems) == 2 and all("missing" in p for p in problems)
    assert classroom.check_numbers({}, CONFIG, "Compare") == ([], 0)  # other views need not show them
    shown = {"MACs with FC": ["1"]}  # ...but what they show is checked
    assert len(classroom.check_numbers(shown, CONFIG, "Compare")[0]) == 1


def test_check_state_catches_a_wrong_view_or_a_wrong_address_bar():
    for seed in range(20):  # the links students open are valid
        assert classroom.state_from_query(classroom.random_link(random.Random(seed)))[1] == []
    link = "view=overview&task=imagenet&groups=8&blocks=2%2C3%2C1&reduction=0.3&scale=0.5"
    state, _ = classroom.state_from_query(link)
    title = [classroom.TITLE.format(view="Overview")]
    assert classroom.check_state(title, link, state) == []
    assert len(classroom.check_state(["ShuffleNet Explorer · Compare"], link, state)) == 1
    other = classroom.apply_change(state, "groups", 1 if state["groups"] != 1 else 2)
    assert len(classroom.check_state(title, link, other)) == 1
    assert len(classroom.check_state(title, link + "&groups=5", state)) == 2  # a warning, then the fallback


def test_students_always_change_something_to_a_valid_configuration():
    page = Page()
    state, _ = classroom.state_from_query(classroom.random_link(random.Random(0)))
    task_options = [t.label + t.display for t in TASKS]
    run(page, element([SIDEBAR, 0], "radio", id=wid("view"), label="View", options=list(classroom.BASE_VIEWS),
                      default=0),
        element([SIDEBAR, 1], "selectbox", id=wid("groups"), label="Groups g", options=["1", "2", "3", "4", "8"],
                default=0),
        element([SIDEBAR, 2], "slider", id=wid("scale"), label="Width scale s", min=0.25, max=3.0, step=0.25,
                default=[1.0], data_type=Slider.FLOAT),
        element([SIDEBAR, 3], "slider", id=wid("reduction"), label="Bottleneck", min=0.05, max=1.0, step=0.05,
                default=[0.25], data_type=Slider.FLOAT),
        element([SIDEBAR, 4], "selectbox", id=wid("task"), label="Task", options=task_options, default=0),
        element([MAIN, 0], "selectbox", id=wid("cmp_groups"), label="B: groups g", options=["1", "2"], default=0))
    choices = classroom.controls(page, state, classroom.BASE_VIEWS)
    assert set(choices) == {"view", "groups", "scale", "reduction", "task"}  # not Compare's B
    assert 0.3 in {v for v, _ in choices["reduction"]}  # on the grid, rounded as the sidebar rounds
    rng = random.Random(1)
    seen = set()
    for _ in range(300):
        key, value, shown = classroom.next_change(rng, state, choices)
        assert value != state[key]
        assert shown in {w for _, w in choices[key]}
        state = classroom.apply_change(state, key, value)
        config_from_state(state)  # raises on an invalid configuration
        seen.add(key)
    assert seen == set(choices)


def test_a_new_task_brings_its_presets():
    state, _ = classroom.state_from_query("view=overview&task=imagenet&groups=2&size=64&classes=7")
    other = next(t for t in TASKS if t.key != "imagenet")
    after = classroom.apply_change(state, "task", other.label)
    assert (after["input_size"], after["num_classes"]) == (other.input_size, other.num_classes)
    assert config_from_state(after).channels == other.channels and after["groups"] == 2


def test_the_keras_check_accepts_the_library_s_counts_and_catches_a_wrong_one():
    totals = complexity.totals(CONFIG)
    right = (f":material/check_circle: Checked against the built Keras model: {totals['params']:,} trainable "
             f"parameters and {totals['layers']:,} layers, as above.")
    assert classroom.check_keras([right, "other text"], CONFIG) == ([], 1)
    queued = ":material/hourglass_top: queued for a background build"
    assert classroom.check_keras([queued], CONFIG) == ([], 0)  # not built yet: fine
    wrong = right.replace(f"{totals['layers']:,} layers", f"{totals['layers'] + 1:,} layers")
    problems, checked = classroom.check_keras([wrong], CONFIG)
    assert checked == 1 and len(problems) == 1 and f"{totals['layers'] + 1:,} layers" in problems[0]
    problems, _ = classroom.check_keras(["The built Keras model disagrees with the analysis: ..."], CONFIG)
    assert len(problems) == 1  # the page's own alarm counts as a wrong number


def test_server_memory_and_cpu_cover_the_processes_below_it():
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(80 * 2**20); time.sleep(60)"])
    try:
        deadline = classroom.time.monotonic() + 30
        while classroom.time.monotonic() < deadline and (classroom.rss_mb(child.pid) or 0) < 80:
            classroom.time.sleep(0.1)
        assert child.pid in classroom.process_tree(os.getpid())
        alone = classroom.rss_mb(child.pid)
        assert alone >= 80 and classroom.rss_mb(os.getpid()) >= alone + 20  # this process and its child
        assert classroom.cpu_seconds(os.getpid()) >= classroom.cpu_seconds(child.pid) > 0
    finally:
        child.kill()
        child.wait()
    assert classroom.process_tree(child.pid) == [] and classroom.rss_mb(child.pid) is None


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    random.Random(0).shuffle(values)
    assert classroom.percentile(values, 0.5) == 10.0
    assert classroom.percentile(values, 0.95) == 19.0
    assert classroom.percentile([4.0], 0.95) == 4.0 and classroom.percentile([], 0.5) is None
    assert classroom.summary([1.0, 3.0]) == {"n": 2, "p50": 1.0, "p95": 3.0, "max": 3.0, "mean": 2.0}


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "http://192.168.1.20:8501"], "loopback"),
    (["--url", "http://example.com"], "loopback"),
    (["--url", "ftp://127.0.0.1:21"], "http://"),
    (["--sessions", "0"], "at least 1"),
    (["--pause", "-1"], "at least 0"),
    (["--changes", "two"], "not a whole number"),
    (["--max-seconds", "0"], "more than 0"),
    (["--pid", "12"], "--pid only goes with --url"),
])
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        classroom.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_loopback_urls_are_accepted():
    assert classroom.loopback_url("http://127.0.0.1:8501/") == "http://127.0.0.1:8501"
    assert classroom.loopback_url("http://localhost:8501") == "http://localhost:8501"
    assert classroom.loopback_url("http://[::1]:8501") == "http://[::1]:8501"


# --- against a real server -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from browser_support import start_server, stop_server, wait_healthy

    proc, url = start_server(tmp_path_factory.mktemp("classroom") / "server.log")
    try:
        wait_healthy(proc, url, timeout_s=120)
        yield proc, url
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_a_short_class_sees_the_right_numbers(server):
    proc, url = server
    result = classroom.classroom(3, 3, url=url, pid=proc.pid, max_seconds=150, timeout=60)
    problems = {k: result[k] for k in ("errors", "exceptions", "wrong_numbers", "wrong_state", "disconnects")}
    assert problems == dict.fromkeys(problems, 0), result["samples"]
    assert not result["stopped_by_time"] and result["changes_done"] == 9, result
    assert result["latency_s"]["n"] == 9 and sum(v["n"] for v in result["per_view"].values()) == 9
    assert 0 < result["p50_s"] <= result["p95_s"] <= result["max_s"] < 60
    assert result["first_load_s"]["n"] == 3
    assert result["numbers_checked"] >= 3 * 2, result  # every student's first page is the Overview
    assert result["server"]["cpu_per_rerun_ms"] > 0 and result["server"]["rss_mb"]["after"] > 50
    assert not classroom.failed(result)


@pytest.mark.slow
def test_the_checks_fire_on_the_real_server_when_the_page_differs_from_the_choice(server):
    """A student that sends one g and believes it chose another: the MACs it is shown and the
    address bar are then not those of its belief, and both checks say so."""
    _, url = server
    link = "view=overview&task=imagenet&groups=3&blocks=4%2C8%2C4&reduction=0.25&scale=1.0"

    def lie(student, page, step):
        return "groups", (1, 2)[step - 1], ("8", "4")[step - 1]

    student = classroom.Student("liar", url, random.Random(0), lie, timeout=60,
                                deadline=classroom.time.monotonic() + 120, link=link)
    tally = asyncio.run(student.run(2))
    assert tally.errors == [] and tally.exceptions == [] and tally.changes == 2
    assert len(tally.wrong_numbers) == 2 * 2, tally.wrong_numbers  # both figures, both changes
    assert len(tally.wrong_state) == 2, tally.wrong_state
    assert tally.numbers_checked == 3 * 2
