"""The Compare view's "another family" section through `AppTest`: A (the sidebar's network) beside
a network of any family, with the library's figures."""

from __future__ import annotations

import functools
import json

import apptest_support
import pytest
from apptest_support import no_exception, table_with

from shufflenet import ShuffleNetConfig
from shufflenet.families import FAMILIES
from shufflenet.families.side_by_side import compare_networks, like, ratios

make_app = functools.partial(apptest_support.make_app, timeout_s=120)


def networks(at):
    return table_with(at, "network").set_index("network")


def test_compare_shows_a_network_of_another_family():
    at = make_app(view="compare", groups="8")
    no_exception(at)
    assert at.selectbox(key="cmpfam_family").value == "mobilenet-v1"  # ShuffleNet's Table 5 pairing
    a = ShuffleNetConfig(groups=8)
    shown = networks(at)
    expected = compare_networks(a, like(a, "mobilenet-v1", 0.5)).set_index("network")
    for column in ("macs", "conv_macs", "params", "traffic_bytes", "intensity", "layers"):
        assert shown.loc["A", column] == expected.loc["A", column]
        assert shown.loc["B", column] == expected.loc["B", column]
    assert shown.loc["B", "label"] == "MobileNet v1 0.5x"
    (ratio,) = [df.value for df in at.dataframe if "intensity" in df.value.columns and "network" not in df.value]
    expected_ratio = ratios(a, like(a, "mobilenet-v1", 0.5))
    assert list(ratio.columns) == list(expected_ratio.columns)
    assert ratio.loc[0, "traffic_bytes"] == pytest.approx(expected_ratio.loc[0, "traffic_bytes"])
    assert ratio.loc[0, "traffic_bytes"] < 1  # MobileNet 0.5 moves fewer bytes than ShuffleNet 1x g=8

    at.selectbox(key="cmpfam_family").set_value("shufflenet-v2").run()
    no_exception(at)
    scale = at.selectbox(key="cmpfam_scale_shufflenet-v2")
    assert scale.options == [f"{s:g}x" for s in FAMILIES["shufflenet-v2"].scales] and scale.value == 1.0
    scale.set_value(2.0).run()
    no_exception(at)
    shown = networks(at)
    b = like(a, "shufflenet-v2", 2.0)
    assert shown.loc["B", "label"] == b.label
    assert shown.loc["B", "macs"] == compare_networks(a, b).set_index("network").loc["B", "macs"]
    assert any("B = ShuffleNet v2 2x" in c.value for c in at.caption)


def test_b_takes_a_input_and_classes():
    at = make_app(view="compare", size="64", classes="10")
    no_exception(at)
    at.selectbox(key="cmpfam_family").set_value("mobilenet-v2").run()
    no_exception(at)
    b = networks(at).loc["B"]
    assert b["label"] == "MobileNet v2 1x (64 px)"
    assert b["params"] == compare_networks(ShuffleNetConfig(input_size=64, num_classes=10),
                                           like(ShuffleNetConfig(input_size=64, num_classes=10), "mobilenet-v2",
                                                1.0)).set_index("network").loc["B", "params"]


def test_family_column_is_named_family():
    at = make_app(view="compare")
    df = next(d for d in at.dataframe if "network" in d.value.columns)
    labels = {name: c.get("label") or name for name, c in json.loads(df.proto.columns).items()}
    assert labels["family"] == "family" and labels["label"] == "network name"
