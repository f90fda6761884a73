"""Property-based test (hypothesis) over random valid configurations: the model builds, the two
cost counters agree layer by layer, the diagrams render to DOT, the tables sum to the totals.
And over random bad input: no URL, file name or uploaded bytes gets past the explorer's checks as
anything but a clear message."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import format as fmt
from explorer import state as ui_state
from explorer import url
from shufflenet import ShuffleNetConfig, build_model, cost_table, stage_table, totals, unit_table
from shufflenet.complexity import keras_cost_table
from shufflenet.config import SHUFFLE_LAYOUTS
from shufflenet.diagrams import dot_available, full_diagram, macro_diagram, micro_diagram, to_svg
from shufflenet.inference import ImageDecodeError, decode_image

configs = st.builds(
    ShuffleNetConfig,
    groups=st.sampled_from([1, 2, 3, 4, 8]),
    blocks=st.tuples(*(st.integers(1, 4),) * 3),
    reduction=st.sampled_from([0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0]),
    scale=st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.25, 2.0]),
    input_size=st.sampled_from([32, 64]),
    channels=st.sampled_from([1, 3]),
    num_classes=st.integers(2, 50),
    fc_bias=st.booleans(),
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_random_configurations_build_and_their_costs_agree(config):
    model = build_model(config)
    analytic = cost_table(config).set_index("name").sort_index()
    walked = keras_cost_table(model).set_index("name").sort_index()
    pd.testing.assert_frame_equal(analytic, walked)
    t = totals(config)
    for table in (cost_table(config), unit_table(config), stage_table(config)):
        assert int(table["macs"].sum()) == t["macs"]
        assert int(table["params"].sum()) == t["params"]
    assert t["params"] + t["non_trainable"] == model.count_params()


@settings(max_examples=40, deadline=None)
@given(configs)
def test_random_configurations_render_to_dot(config):
    for graph in (macro_diagram(config), micro_diagram(config, stage=2, stride=2), full_diagram(config)):
        assert graph.source.startswith("digraph")
    for stage, units in zip((2, 3, 4), config.blocks):
        if units > 1:
            assert "Add" in micro_diagram(config, stage=stage, stride=1).source


# The fields the strategy above leaves at their defaults: an explicit stem, megvii's shuffle
# layout, and widths / bottlenecks off the sliders' grids (the library accepts any in range).
other_fields = st.builds(
    ShuffleNetConfig,
    groups=st.sampled_from([1, 2, 3, 4, 8]),
    blocks=st.tuples(*(st.integers(1, 2),) * 3),
    reduction=st.floats(0.05, 1.0),
    scale=st.floats(0.25, 3.0),
    input_size=st.just(32),
    shuffle_layout=st.sampled_from(SHUFFLE_LAYOUTS),
    num_classes=st.integers(2, 50),
).flatmap(  # an explicit stem: a multiple of every g, narrower than stage 2 (the config's rule)
    lambda c: st.sampled_from([None, *(24 * k for k in range(1, 5) if 24 * k < c.stage_widths[0])]).map(
        lambda stem: c.replace(stem_channels=stem)))


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(other_fields)
def test_explicit_stems_layouts_and_off_grid_widths_build_and_agree(config):
    model = build_model(config)
    pd.testing.assert_frame_equal(cost_table(config).set_index("name").sort_index(),
                                  keras_cost_table(model).set_index("name").sort_index())
    t = totals(config)
    table = cost_table(config)
    for column in ("params", "non_trainable", "macs", "activations"):
        assert int(table[column].sum()) == t[column], column
    assert t["fc_macs"] == int(table.loc[table["op"] == "fc", "macs"].sum())
    if dot_available():  # Graphviz itself accepts the DOT
        assert "<svg" in to_svg(macro_diagram(config))


# --- bad input never gets through as anything but a message ---------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=60)
url_values = st.one_of(text, st.lists(text, max_size=3), st.floats().map(str), st.integers().map(str))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(url.URL_FIELDS), text), url_values, max_size=12))
def test_any_url_gives_a_valid_configuration_and_safe_warnings(params):
    state, warnings = url.parse_query_params(params)
    ui_state.config_from_state(state)  # never raises: every field is valid or its default
    assert state["view"] in ui_state.VIEWS
    assert len(warnings) <= len(url.URL_FIELDS) + 1
    for warning in warnings:
        # Quoted user text sits in code spans that it cannot end early, on one line.
        assert warning.count("`") % 2 == 0 and "\n" not in warning and len(warning) < 800


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_upload_name_is_shown_without_markdown_or_paths(name):
    shown = fmt.upload_name(name)
    assert shown and len(shown.replace("\\", "")) <= 60
    assert "/" not in shown and all(c.isprintable() for c in shown)
    assert not re.search(r"(?<!\\)[`*_\[\]()<>!|~$#{}+:]", shown), shown  # every Markdown character escaped


SIGNATURES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBP", b"<svg",
              b"II*\0"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SIGNATURES), st.binary(max_size=400))
def test_any_bytes_decode_or_give_a_message(prefix, body):
    try:
        picture = decode_image(prefix + body, "upload.png")
    except ImageDecodeError as exc:
        assert str(exc).startswith("upload.png") and "Traceback" not in str(exc)  # noqa: PT017 - or it decodes
    else:
        assert picture.mode == "RGB" and np.asarray(picture).dtype == np.uint8
