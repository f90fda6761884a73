"""The Streamlit app through `AppTest` (no browser): every view renders, the numbers follow the
controls, the URL is honoured and bad URL values warn per field. The sidebar's pure URL
functions are tested directly."""

from __future__ import annotations

import io
import json

import pytest
from apptest_support import charts, make_app, metric, no_exception, table_with, texts
from PIL import Image

from explorer import state as ui_state
from explorer import url
from shufflenet import ShuffleNetConfig

VIEWS = list(ui_state.VIEWS)
TABLE1_MACS = {1: "142,502,976", 2: "140,036,512", 3: "136,500,672", 4: "133,251,776", 8: "136,829,952"}
MACS_LABEL = "MACs without FC (Table 1)"


# --- the URL, without a UI -----------------------------------------------------------------

def test_parse_query_params_defaults_are_the_paper():
    state, warns = url.parse_query_params({})
    assert warns == []
    assert ui_state.config_from_state(state) == ShuffleNetConfig()
    assert state["view"] == "Overview"


def test_parse_query_params_reads_every_field():
    state, warns = url.parse_query_params({
        "groups": "8", "blocks": "2,4,3", "reduction": "0.5", "scale": "1.5", "task": "fashion-mnist",
        "size": "64", "classes": "12", "view": "shuffle",
    })
    assert warns == []
    config = ui_state.config_from_state(state)
    assert config == ShuffleNetConfig(groups=8, blocks=(2, 4, 3), reduction=0.5, scale=1.5, input_size=64,
                                      channels=1, num_classes=12)
    assert state["view"] == "Channel shuffle"


@pytest.mark.parametrize(("field", "value"), [
    ("groups", "5"), ("groups", "three"), ("blocks", "4,x,4"), ("blocks", "4,8"), ("blocks", "4,17,4"),
    ("reduction", "0"), ("reduction", "0.33"), ("scale", "4"), ("scale", "nan"), ("task", "cifar"),
    ("size", "100"), ("classes", "1"), ("view", "nowhere"), ("shuffle", "2"), ("shuffle", "yes"),
])
def test_parse_query_params_bad_value_falls_back_for_that_field_only(field, value):
    state, warns = url.parse_query_params({field: value, "scale": "0.5"} if field != "scale"
                                              else {field: value, "groups": "8"})
    assert len(warns) == 1
    assert f"`{field}={value}`" in warns[0] and "default" in warns[0]
    default, _ = url.parse_query_params({})
    bad_keys = {"blocks": ui_state.BLOCK_KEYS, "size": ("input_size",), "classes": ("num_classes",)}
    for key in bad_keys.get(field, (field,)):
        assert state[key] == default[key]
    if field == "scale":
        assert state["groups"] == 8  # the other field is kept
    else:
        assert state["scale"] == 0.5


def test_query_params_round_trip():
    config = ShuffleNetConfig(groups=4, blocks=(3, 6, 3), reduction=0.3, scale=0.75, input_size=96, channels=3,
                              num_classes=100)
    task = ui_state.TASK_BY_KEY["imagenet"]
    params = url.query_params_for(config, task, "Compare")
    assert params == {"view": "compare", "groups": "4", "blocks": "3,6,3", "reduction": "0.3", "scale": "0.75",
                      "task": "imagenet", "size": "96", "classes": "100"}
    state, warns = url.parse_query_params(params)
    assert warns == [] and ui_state.config_from_state(state) == config


def test_fashion_mnist_presets_the_checkpoints_configuration():
    state, warns = url.parse_query_params({"task": "fashion-mnist"})
    assert warns == []
    assert ui_state.config_from_state(state) == ShuffleNetConfig(scale=0.5, input_size=32, channels=1, num_classes=10)
    assert ui_state.TASK_BY_KEY["fashion-mnist"].display == " (0.5x, 32x32x1, 10 classes)"
    state, _ = url.parse_query_params({"task": "fashion-mnist", "scale": "1.5"})
    assert state["scale"] == 1.5  # the link's own value wins over the preset
    state, (warning,) = url.parse_query_params({"task": "fashion-mnist", "scale": "9"})
    assert state["scale"] == 0.5 and "Using the default scale 0.5 instead" in warning
    # Links keep naming the scale, so they mean the same network whatever the preset.
    fashion = ui_state.TASK_BY_KEY["fashion-mnist"]
    params = url.query_params_for(ui_state.config_from_state(state), fashion, "Overview")
    assert params["scale"] == "0.5" and "size" not in params and "classes" not in params


@pytest.mark.parametrize(("value", "shuffle"), [
    ("0", False), ("1", True), ("false", False), ("TRUE", True), ("off", False), ("On", True),
])
def test_shuffle_in_the_url(value, shuffle):
    state, warns = url.parse_query_params({"shuffle": value, "groups": "8"})
    assert warns == []
    config = ui_state.config_from_state(state)
    assert config == ShuffleNetConfig(groups=8, shuffle=shuffle)
    params = url.query_params_for(config, ui_state.TASKS[0], "Overview")
    assert params.get("shuffle") == (None if shuffle else "0")  # left out when on, as the paper's network


def test_bad_shuffle_in_the_url_warns_and_keeps_it_on():
    state, (warning,) = url.parse_query_params({"shuffle": "maybe", "scale": "0.5"})
    assert state["shuffle"] is True and state["scale"] == 0.5
    assert warning == ("URL parameter `shuffle=maybe` is not valid: it must be 1 or 0 (also true/false, on/off). "
                       "Using the default channel shuffle, on instead.")


def test_slider_float_noise_is_one_configuration():
    state, _ = url.parse_query_params({})
    state["reduction"] = 0.30000000000000004
    assert ui_state.config_from_state(state) == ShuffleNetConfig(reduction=0.3)


# --- the app -------------------------------------------------------------------------------

def test_default_run_shows_the_paper_network():
    at = make_app()
    no_exception(at)
    assert at.radio(key="view").value == "Overview"
    assert at.selectbox(key="groups").value == 3
    assert [at.slider(key=k).value for k in ui_state.BLOCK_KEYS] == [4, 8, 4]
    assert at.slider(key="reduction").value == 0.25 and at.slider(key="scale").value == 1.0
    assert at.selectbox(key="task").value == "ImageNet (224x224x3, 1000 classes)"
    assert metric(at, MACS_LABEL) == TABLE1_MACS[3]
    assert metric(at, "MACs with FC") == "137,460,672"
    assert metric(at, "Parameters") == "1,865,728"
    assert texts(at, "warning") == []
    by_g = table_with(at, "current")
    assert by_g.loc[by_g["current"], "groups"].tolist() == [3]
    assert at.query_params["groups"] == "3" and at.query_params["blocks"] == "4,8,4"


@pytest.mark.parametrize("groups", [1, 2, 4, 8, 3])
def test_changing_groups_shows_table1_macs(groups):
    at = make_app()
    at.selectbox(key="groups").set_value(groups).run()
    no_exception(at)
    assert metric(at, MACS_LABEL) == TABLE1_MACS[groups]
    assert at.query_params["groups"] == str(groups)
    by_g = table_with(at, "current")
    assert by_g.loc[by_g["current"], "groups"].tolist() == [groups]


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders(view):
    # Fashion-MNIST keeps the Predictions model small (32x32); the ImageNet run is tested below.
    at = make_app(view=ui_state.VIEWS[view], task="fashion-mnist" if view == "Predictions" else "imagenet")
    no_exception(at)
    assert at.radio(key="view").value == view
    assert at.title[0].value.endswith(view)


def test_url_parameters_are_honoured():
    at = make_app(groups="8", blocks="2,4,2", reduction="0.5", scale="0.5", task="fashion-mnist", view="overview")
    no_exception(at)
    assert texts(at, "warning") == []
    assert at.selectbox(key="groups").value == 8
    assert [at.slider(key=k).value for k in ui_state.BLOCK_KEYS] == [2, 4, 2]
    assert at.slider(key="reduction").value == 0.5 and at.slider(key="scale").value == 0.5
    assert at.selectbox(key="task").value == "Fashion-MNIST"
    assert at.number_input(key="input_size").value == 32 and at.number_input(key="num_classes").value == 10
    from shufflenet.analysis import key_figures

    expected = key_figures(ShuffleNetConfig(groups=8, blocks=(2, 4, 2), reduction=0.5, scale=0.5, input_size=32,
                                            channels=1, num_classes=10))
    assert metric(at, MACS_LABEL) == f"{expected['conv_macs']:,}"


def test_bad_url_values_warn_and_fall_back_per_field():
    at = make_app(groups="5", blocks="4,x,4", reduction="0.5", scale="9", task="imagenet")
    no_exception(at)
    text = " ".join(texts(at, "warning"))
    assert "`groups=5`" in text and "`blocks=4,x,4`" in text and "`scale=9`" in text
    assert "reduction" not in text
    assert at.selectbox(key="groups").value == 3
    assert [at.slider(key=k).value for k in ui_state.BLOCK_KEYS] == [4, 8, 4]
    assert at.slider(key="scale").value == 1.0
    assert at.slider(key="reduction").value == 0.5  # the valid field is kept
    # The URL now holds the values in use, and the warnings go once the user changes something.
    assert at.query_params["groups"] == "3" and at.query_params["reduction"] == "0.5"
    at.selectbox(key="groups").set_value(4).run()
    assert texts(at, "warning") == []


def test_task_preset_sets_input_classes_and_scale():
    at = make_app()
    at.selectbox(key="task").set_value("Fashion-MNIST").run()
    no_exception(at)
    assert at.number_input(key="input_size").value == 32 and at.number_input(key="num_classes").value == 10
    assert at.slider(key="scale").value == 0.5  # the trained checkpoints' width
    assert at.query_params["task"] == "fashion-mnist" and "size" not in at.query_params
    assert at.query_params["scale"] == "0.5"
    at.number_input(key="input_size").set_value(64).run()
    assert at.query_params["size"] == "64"
    assert "64×64×1" in at.subheader[0].value


def test_controls_are_made_from_the_declaration():
    from shufflenet.config import FIELDS

    at = make_app()
    no_exception(at)
    widgets = {"groups": at.selectbox(key="groups"), "reduction": at.slider(key="reduction"),
               "scale": at.slider(key="scale"), "input_size": at.number_input(key="input_size"),
               "num_classes": at.number_input(key="num_classes"), "shuffle": at.toggle(key="shuffle"),
               **{key: at.slider(key=key) for key in ui_state.BLOCK_KEYS}}
    assert [widgets[k].label for k in ("groups", *ui_state.BLOCK_KEYS, "reduction", "scale", "input_size",
                                       "num_classes", "shuffle")] == [
        "Groups g", "Units in stage 2", "Units in stage 3", "Units in stage 4", "Bottleneck reduction",
        "Width scale s", "Input size (pixels, square)", "Classes", "Channel shuffle"]
    assert widgets["groups"].options == [str(g) for g in FIELDS["groups"].choices]
    for key, widget in widgets.items():
        assert widget.help == FIELDS[key.split("_stage")[0]].help, key
    for key in ("reduction", "scale", *ui_state.BLOCK_KEYS):
        spec = FIELDS[key.split("_stage")[0]]
        assert (widgets[key].min, widgets[key].max, widgets[key].step) == (spec.low, spec.high, spec.step), key
    assert (widgets["input_size"].min, widgets["input_size"].max, widgets["input_size"].step) == (32, 512, 32)
    assert widgets["shuffle"].value is True


def test_shuffle_toggle_follows_the_url_and_writes_it():
    at = make_app(shuffle="0", groups="8")
    no_exception(at)
    assert texts(at, "warning") == [] and at.toggle(key="shuffle").value is False
    assert at.query_params["shuffle"] == "0"
    at.toggle(key="shuffle").set_value(True).run()
    no_exception(at)
    assert "shuffle" not in at.query_params and at.selectbox(key="groups").value == 8
    at.toggle(key="shuffle").set_value(False).run()
    at.button(key="reset").click().run()  # reset to the paper's network: shuffle on again
    assert at.toggle(key="shuffle").value is True and "shuffle" not in at.query_params


def test_reset_button_restores_the_paper_network():
    at = make_app(groups="8", blocks="2,2,2", scale="0.5", view="complexity")
    at.button(key="reset").click().run()
    no_exception(at)
    assert at.selectbox(key="groups").value == 3
    assert [at.slider(key=k).value for k in ui_state.BLOCK_KEYS] == [4, 8, 4]
    assert at.slider(key="scale").value == 1.0
    assert at.radio(key="view").value == "Complexity"  # the view stays


def test_complexity_flops_toggle_doubles_and_fc_toggle_removes_the_classifier():
    at = make_app(view="complexity")
    no_exception(at)
    stages = table_with(at, "units")
    assert int(stages["MACs"].sum()) == 137_460_672
    assert len(charts(at, "plotly_chart")) == 8  # MACs, params, traffic, intensity x2
    at.toggle(key="cx_flops").set_value(True).run()
    assert int(table_with(at, "units")["FLOPs"].sum()) == 2 * 137_460_672
    at.toggle(key="cx_include_fc").set_value(False).run()
    assert int(table_with(at, "units")["FLOPs"].sum()) == 2 * 136_500_672


def test_complexity_layer_filter():
    at = make_app(view="complexity")
    at.multiselect(key="cx_stages").set_value(["stage4"]).run()
    at.multiselect(key="cx_ops").set_value(["gconv1x1"]).run()
    no_exception(at)
    layers = table_with(at, "name")
    assert len(layers) == 8 and set(layers["stage"]) == {"stage4"} and set(layers["op"]) == {"gconv1x1"}


def test_shuffle_view_computes_fig1():
    at = make_app(view="shuffle", groups="3")
    no_exception(at)
    flow = table_with(at, "case").set_index("case")
    assert not flow.loc["without shuffle", "every group mixed"]
    assert flow.loc["with shuffle", "every group mixed"]
    assert flow.loc["without shuffle", "inputs seen per output (max)"] == 3  # one group of 9 / 3
    assert len(charts(at, "plotly_chart")) == 2
    at.select_slider(key="shuffle_width_g3").set_value(6).run()  # n = 2 < g: cannot mix fully
    assert not table_with(at, "case").set_index("case").loc["with shuffle", "every group mixed"]


def _png(size=(40, 30), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_predictions_imagenet_gallery():
    at = make_app(view="predictions")
    no_exception(at)
    assert any("random" in w for w in texts(at, "warning"))
    assert at.selectbox(key="pred_sample").value == "astronaut"
    assert "ms" in metric(at, "Inference time")
    (chart,) = charts(at, "plotly_chart")
    assert "Top-5" in json.loads(chart.proto.spec)["layout"]["title"]["text"]
    top = table_with(at, "probability")
    assert len(top) == 5 and top["probability"].is_monotonic_decreasing


def test_predictions_upload_good_and_bad_files():
    at = make_app(view="predictions", task="fashion-mnist")
    no_exception(at)
    assert at.selectbox(key="pred_fashion").value  # the shipped Fashion-MNIST gallery
    at.file_uploader(key="pred_upload").set_value(("red.png", _png(), "image/png")).run()
    no_exception(at)
    assert not at.error
    assert table_with(at, "probability")["label"].isin(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                                 "Shirt", "Sneaker", "Bag", "Ankle boot"]).all()
    at.file_uploader(key="pred_upload").set_value(("broken.png", b"not a picture", "image/png")).run()
    no_exception(at)
    assert at.error and "broken.png" in at.error[0].value and "PNG, JPEG" in at.error[0].value


def test_each_configuration_s_model_is_built_once_in_the_background():
    """Every view's configuration is built by the background builder after its page (no page
    waits for it); the views that need the model, and later visits, reuse that one build."""
    from explorer import cache

    at = make_app(view="overview", task="fashion-mnist")
    at.slider(key="reduction").set_value(0.5).run()
    assert cache.BUILDER.wait_idle(120)
    builds = cache.WORK_DONE["model"]
    for view in ("Architecture", "Complexity", "Channel shuffle", "Compare", "Predictions", "Overview"):
        at.radio(key="view").set_value(view).run()
        no_exception(at)
    at.radio(key="view").set_value("Predictions").run()
    at.selectbox(key="pred_fashion").set_value(at.selectbox(key="pred_fashion").options[3]).run()
    assert cache.BUILDER.wait_idle(120)
    assert cache.WORK_DONE["model"] == builds  # same configuration: the model built in the background is reused
