"""What the user sees is what the link shares: every choice on a page, the sidebar's and the views'
(`url.VIEW_KEYS`), goes into the URL and comes back from it. The pure URL functions first,
then the app through `AppTest`: set every widget, read the URL, open a fresh app with that URL
and compare."""

from __future__ import annotations

import functools

import apptest_support
import pytest
from apptest_support import no_exception
from streamlit.testing.v1 import AppTest

from explorer import lesson_file, url
from explorer import state as ui_state
from shufflenet import ShuffleNetConfig

make_app = functools.partial(apptest_support.make_app, timeout_s=120)


def url_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "URL parameter" in w.value]


# --- the views' keys, without a UI ---------------------------------------------------------

#: URL key -> (the view it belongs to, a valid value that is not the default, extra parameters).
SAMPLES = {
    "b_groups": ("compare", "8", {}),
    "b_blocks": ("compare", "2,3,2", {}),
    "b_reduction": ("compare", "0.5", {}),
    "b_scale": ("compare", "0.5", {}),
    "flops": ("complexity", "1", {}),
    "fc": ("complexity", "0", {}),
    "stages": ("complexity", "stage3,stage4", {}),
    "ops": ("complexity", "gconv1x1,dwconv3x3", {}),
    "color": ("architecture", "traffic_bytes", {}),
    "lr": ("architecture", "1", {}),
    "arch_stage": ("architecture", "4", {}),
    "part": ("architecture", "stage4", {}),
    "units": ("architecture", "2-4", {"part": "stage3"}),
    "rf_units": ("architecture", "1", {}),
    "width": ("shuffle", "24", {"groups": "8"}),
    "stage": ("inside", "4", {}),
    "unit": ("inside", "3", {}),
    "axis": ("accuracy", "macs", {}),
    "lesson": ("overview", "2", {}),  # on every view, as `present`
    "present": ("architecture", "1", {}),
}
#: URL key -> a value it must refuse, and what the warning must say is allowed.
BAD = {
    "b_groups": ("5", "g must be one of 1, 2, 3, 4, 8"),
    "b_blocks": ("4,x,4", "three whole numbers from 1 to 16"),
    "b_reduction": ("0.33", "in steps of 0.05"),
    "b_scale": ("9", "from 0.25 to 3.0"),
    "flops": ("2", "1 or 0"),
    "fc": ("maybe", "1 or 0"),
    "stages": ("stage9", "some of stem, stage2, stage3, stage4, classifier"),
    "ops": ("conv7x7", "some of pad, conv3x3"),
    "color": ("rainbow", "one of default, macs, params"),
    "lr": ("sideways", "1 or 0"),
    "arch_stage": ("5", "one of 2, 3, 4"),
    "part": ("stage5", "one of stem, stage2, stage3, stage4, classifier"),
    "units": ("3-12", "units 1 to 8"),
    "rf_units": ("every", "1 or 0"),
    "width": ("25", "a multiple of g = 8 from 8 to 96"),
    "stage": ("1", "one of 2, 3, 4"),
    "unit": ("17", "a whole number from 1 to 16"),
    "axis": ("flops", "one of groups, macs"),
    "lesson": ("99", "the number of a step of the lesson, from 1 to"),
    "present": ("big", "1 or 0"),
}


def test_every_view_key_has_a_sample_and_a_bad_value():
    assert set(SAMPLES) == set(BAD) == set(url.VIEW_KEYS)
    assert set(url.URL_FIELDS) == {*url.SIDEBAR_URL_FIELDS, *url.VIEW_KEYS}


@pytest.mark.parametrize("key", list(SAMPLES))
def test_a_view_key_goes_into_the_state_and_back_into_the_url(key):
    view, text, extra = SAMPLES[key]
    state, warns = url.parse_query_params({"view": view, key: text, **extra})
    assert warns == []
    config = ui_state.config_from_state(state)
    params = url.query_params_for(config, ui_state.task_for(state), state["view"], state)
    assert params[key] == text
    # Only on its own view: another view's link leaves it out (a key of every view stays in).
    other = "Overview" if view != "overview" else "Compare"
    on_every_view = url.VIEW_KEYS[key].view is None
    assert (key in url.query_params_for(config, ui_state.task_for(state), other, state)) is on_every_view


@pytest.mark.parametrize("key", list(BAD))
def test_a_bad_view_key_warns_and_falls_back_on_its_own(key):
    view, _, extra = SAMPLES[key]
    bad, allowed = BAD[key]
    kept = "flops" if key != "flops" else "fc"
    state, warns = url.parse_query_params({"view": view, key: bad, kept: SAMPLES[kept][1], **extra})
    (warning,) = warns
    assert f"`{key}={bad}` is not valid" in warning and allowed in warning and "Using the default" in warning
    assert warning.count("`") % 2 == 0
    entry = url.VIEW_KEYS[key]
    config = ui_state.config_from_state(state)
    assert entry.state(config, state) not in state  # the view shows its default
    kept_entry = url.VIEW_KEYS[kept]
    assert state[kept_entry.state(config, state)] == kept_entry.parse(SAMPLES[kept][1], config, state)


def test_defaults_are_left_out_of_links():
    state, _ = url.parse_query_params({"view": "complexity", "flops": "0", "fc": "1", "stages": ""})
    config = ui_state.config_from_state(state)
    params = url.query_params_for(config, ui_state.task_for(state), "Complexity", state)
    assert set(params) == {"view", "task", "groups", "blocks", "reduction", "scale"}


def test_the_layer_width_must_fit_g():
    state, warns = url.parse_query_params({"view": "shuffle", "groups": "8", "width": "24"})
    assert warns == [] and state["shuffle_width_g8"] == 24
    state, (warning,) = url.parse_query_params({"view": "shuffle", "groups": "8", "width": "12"})
    assert "multiple of g = 8" in warning and "Using the default layer width for g = 8, 64 instead" in warning
    # A width kept from another g is not written for this g: the view shows its default.
    state = {**url.parse_query_params({"groups": "4"})[0], "shuffle_width_g4": 12}
    assert "width" in url.view_params(ShuffleNetConfig(groups=4), "Channel shuffle", state)
    state["shuffle_width_g4"] = 10
    assert "width" not in url.view_params(ShuffleNetConfig(groups=4), "Channel shuffle", state)


def test_b_keys_name_only_what_b_changes():
    state, warns = url.parse_query_params({"view": "compare", "b_groups": "8", "b_scale": "0.5"})
    assert warns == []
    assert {k: v for k, v in state.items() if k.startswith("cmp_b_")} == {"cmp_b_groups": 8, "cmp_b_scale": 0.5}
    params = url.query_params_for(ui_state.config_from_state(state), ui_state.task_for(state), "Compare", state)
    assert {k for k in params if k.startswith("b_")} == {"b_groups", "b_scale"}
    _, (warning,) = url.parse_query_params({"view": "compare", "groups": "4", "b_groups": "5"})
    assert "Using the default for B, the sidebar's g = 4 instead" in warning


# --- the app: set every widget, read the URL, open it afresh --------------------------------

#: The sidebar: every field away from its default (the task first: it presets input, classes, width).
SIDEBAR = [
    ("selectbox", "task", "Fashion-MNIST"), ("selectbox", "groups", 8), ("slider", "blocks_stage2", 3),
    ("slider", "blocks_stage3", 3), ("slider", "blocks_stage4", 2), ("slider", "reduction", 0.5),
    ("slider", "scale", 0.75), ("number_input", "input_size", 64), ("number_input", "num_classes", 12),
    ("toggle", "shuffle", False),
]
SIDEBAR_KEYS = {"view", "task", "groups", "blocks", "reduction", "scale", "size", "classes", "shuffle"}
#: Each view's widgets, away from their defaults, and the URL keys they must write.
VIEWS = {
    "Compare": [("selectbox", "cmp_groups", 2), ("slider", "cmp_blocks_stage3", 5), ("slider", "cmp_reduction", 0.3),
                ("slider", "cmp_scale", 1.5)],
    "Complexity": [("toggle", "cx_flops", True), ("toggle", "cx_include_fc", False),
                   ("multiselect", "cx_stages", ["stage3", "stage4"]), ("multiselect", "cx_ops", ["gconv1x1", "add"])],
    # blocks 3/3/2: stage 3 has three units, so the units slider's key is arch_units_stage3_3.
    "Architecture": [("selectbox", "arch_metric", "params"), ("toggle", "arch_lr", True),
                     ("selectbox", "arch_stage", 4), ("selectbox", "arch_full_stage", "stage3"),
                     ("slider", "arch_units_stage3_3", (2, 3)), ("toggle", "arch_rf_units", True)],
    "Channel shuffle": [("select_slider", "shuffle_width_g8", 24)],
    "Inside": [("selectbox", "inside_stage", 3), ("number_input", "inside_unit", 3)],
    "Accuracy": [("segmented_control", "acc_axis", "macs")],
}
#: Widgets of the keys every view writes (`ViewKey.view` None), set before each view's own; the
#: lesson's step is plain session state, set by the lesson's buttons.
EVERY_VIEW: list = [("toggle", "present", True), ("session_state", lesson_file.STEP_KEY, 2)]
URL_OF_VIEW = {view: {k for k, e in url.VIEW_KEYS.items() if e.view in (None, view)} for view in VIEWS}


def test_every_view_key_is_set_by_a_widget_below():
    assert set().union(*URL_OF_VIEW.values()) == set(url.VIEW_KEYS)
    assert all(e.view is None or e.view in VIEWS for e in url.VIEW_KEYS.values())


def _set(at: AppTest, widgets) -> None:
    for kind, key, value in widgets:
        if kind == "session_state":
            at.session_state[key] = value
            at.run()
        else:
            getattr(at, kind)(key=key).set_value(value).run()
        no_exception(at)


def _values(at: AppTest, widgets) -> dict:
    return {key: at.session_state[key] if kind == "session_state" else getattr(at, kind)(key=key).value
            for kind, key, _ in widgets}


@pytest.mark.slow
@pytest.mark.parametrize("view", list(VIEWS))
def test_every_choice_round_trips_through_the_url(view, no_dot):
    at = make_app()
    _set(at, SIDEBAR)
    at.radio(key="view").set_value(view).run()
    _set(at, EVERY_VIEW + VIEWS[view])
    params = dict(at.query_params)
    assert set(params) == SIDEBAR_KEYS | URL_OF_VIEW[view], params  # every choice, nothing else
    fresh = make_app(**params)
    no_exception(fresh)
    assert url_warnings(fresh) == []
    assert fresh.radio(key="view").value == view
    widgets = SIDEBAR + EVERY_VIEW + VIEWS[view]
    expected = {key: value for _, key, value in widgets}
    got = _values(fresh, widgets)
    assert {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in got.items()} == {
        k: tuple(v) if isinstance(v, list | tuple) else v for k, v in expected.items()}
    assert dict(fresh.query_params) == params  # and the fresh app writes the same link


@pytest.mark.slow
def test_a_choice_survives_a_visit_to_another_view():
    at = make_app(view="complexity")
    at.toggle(key="cx_flops").set_value(True).run()
    assert at.query_params["flops"] == "1"
    at.radio(key="view").set_value("Overview").run()
    assert "flops" not in at.query_params  # a link to the Overview says nothing of Complexity
    at.radio(key="view").set_value("Complexity").run()
    no_exception(at)
    assert at.toggle(key="cx_flops").value is True and at.query_params["flops"] == "1"
    assert int(next(df.value for df in at.dataframe if "units" in df.value.columns)["FLOPs"].sum()) == 2 * 137_460_672


@pytest.mark.slow
def test_bad_view_values_in_a_link_warn_and_fall_back_each_on_its_own(no_dot):
    at = make_app(view="architecture", color="rainbow", lr="1", arch_stage="9", part="stage2", units="1-3")
    no_exception(at)
    text = " ".join(url_warnings(at))
    assert "`color=rainbow`" in text and "`arch_stage=9`" in text and "units" not in text
    assert at.selectbox(key="arch_metric").value == "default" and at.selectbox(key="arch_stage").value == 3
    assert at.toggle(key="arch_lr").value is True and at.slider(key="arch_units_stage2_4").value == (1, 3)
    assert at.query_params["lr"] == "1" and at.query_params["units"] == "1-3" and "color" not in at.query_params
    at = make_app(view="shuffle", groups="8", width="12")
    assert "`width=12`" in " ".join(url_warnings(at)) and at.select_slider(key="shuffle_width_g8").value == 64
