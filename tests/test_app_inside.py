"""The Inside view through `AppTest`: a unit's real activations framed by group, the shuffle's
order, the messages for g = 1, the ablation, a unit the configuration lacks and a bad upload;
random, imported and (once they ship) trained weights."""

from __future__ import annotations

import base64
import functools
import io
import json

import apptest_support
import numpy as np
import pytest
from apptest_support import fake_import, no_exception, texts
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import cache, url
from explorer import state as ui_state
from shufflenet import activations, imagenet
from shufflenet.checkpoints import find_shipped_checkpoint
from shufflenet.plan import shuffle_permutation

make_app = functools.partial(apptest_support.make_app, timeout_s=300)
FASHION = {"task": "fashion-mnist", "view": "inside"}


def _array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or Plotly 7's {"dtype", "bdata"[, "shape"]} base64 encoding."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape)
        return a
    return np.asarray(value)


def figure(at: AppTest, layer: str) -> dict:
    """The spec of the tile figure of `layer`."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if (spec["layout"].get("meta") or {}).get("layer") == layer:
            return spec
    raise AssertionError(f"no tile figure of {layer}")


def frames(spec: dict) -> list[dict]:
    return [s for s in spec["layout"].get("shapes", []) if str(s.get("name", "")).startswith("frame")]


def tile_channels(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(channel of the layer, channel of the first 1x1 conv it came from) of every tile, in order."""
    hover = next(t for t in spec["data"] if "customdata" in t)
    data = _array(hover["customdata"]).reshape(-1, 4)
    return data[:, 0].astype(int), data[:, 1].astype(int)


def config_of(at: AppTest):
    return ui_state.config_from_state(at.session_state)


def _fashion_config(groups: int, scale: float = 0.5):
    """The configuration `?task=fashion-mnist&groups=G&scale=S` gives."""
    state, _ = url.parse_query_params({"task": "fashion-mnist", "groups": str(groups), "scale": str(scale)})
    return ui_state.config_from_state(state)


@pytest.mark.parametrize("groups", [1, 3, 8])
def test_inside_renders_with_one_frame_per_group_and_the_shuffle_order(groups):
    at = make_app(**FASHION, groups=str(groups))
    no_exception(at)
    config = config_of(at)
    assert (config.groups, config.input_size, config.channels) == (groups, 32, 1)
    taps = activations.unit_taps(config, 2, 2)  # the unit shown first
    first = figure(at, taps.gconv1)
    assert len(frames(first)) == groups
    channels, _ = tile_channels(first)
    assert list(channels) == list(range(taps.bottleneck))  # 0.5x: all of them fit in 64 tiles
    if groups == 1:
        assert any("nothing to shuffle" in m for m in texts(at, "info"))
        assert not any((json.loads(c.proto.spec)["layout"].get("meta") or {}).get("layer", "").endswith("_shuffle")
                       for c in at.get("plotly_chart"))
    else:
        positions, sources = tile_channels(figure(at, taps.shuffle))
        assert list(positions) == list(range(taps.bottleneck))
        assert list(sources) == list(shuffle_permutation(taps.bottleneck, groups))
    if find_shipped_checkpoint(config) is None:
        assert any("random" in w and "untrained filters" in w for w in texts(at, "warning"))


def test_fewer_channels_per_group_keeps_the_shuffle_order_and_says_how_many():
    at = make_app(**FASHION, groups="3")
    taps = activations.unit_taps(config_of(at), 2, 2)
    n = taps.group_size
    at.slider(key=f"inside_per_group_{n}").set_value(2).run()
    no_exception(at)
    assert any(f"Showing 6 of {taps.bottleneck} channels" in m for m in texts(at, "markdown"))
    positions, sources = tile_channels(figure(at, taps.shuffle))
    assert list(positions) == [0, 1, n, n + 1, 2 * n, 2 * n + 1]
    assert list(sources) == list(shuffle_permutation(taps.bottleneck, 3)[positions])
    assert len(frames(figure(at, taps.gconv1))) == 3


def test_the_ablation_says_the_shuffle_is_off():
    at = make_app(**FASHION, groups="3", shuffle="0")
    no_exception(at)
    assert any("shuffle is switched off" in m and "ablation" in m for m in texts(at, "info"))
    taps = activations.unit_taps(config_of(at), 2, 2)
    assert taps.shuffle is None and len(frames(figure(at, taps.gconv1))) == 3


def test_a_unit_the_stage_lacks_gives_a_message_not_an_exception():
    at = make_app(**FASHION, groups="3")
    at.number_input(key="inside_unit").set_value(7).run()  # stage 2 has 4 units
    no_exception(at)
    assert any("Stage 2 has 4 units" in w and "from 1 to 4" in w for w in texts(at, "warning"))
    assert not list(at.get("plotly_chart"))
    # a unit kept from a stage with more units, after the stage changed
    at.number_input(key="inside_unit").set_value(8)
    at.selectbox(key="inside_stage").set_value(3).run()
    no_exception(at)
    assert list(at.get("plotly_chart"))
    at.slider(key="blocks_stage3").set_value(5).run()  # the sidebar takes units away
    no_exception(at)
    assert any("Stage 3 has 5 units" in w and "no unit 8" in w for w in texts(at, "warning"))
    at.button(key="inside_last_unit").click().run()
    no_exception(at)
    assert at.number_input(key="inside_unit").value == 5
    assert not any("no unit" in w for w in texts(at, "warning"))
    figure(at, activations.unit_taps(config_of(at), 3, 5).output)


@pytest.mark.slow
def test_a_stride_2_unit_shows_the_pooled_shortcut():
    at = make_app(**FASHION, groups="2")
    at.selectbox(key="inside_stage").set_value(3)
    at.number_input(key="inside_unit").set_value(1).run()
    no_exception(at)
    taps = activations.unit_taps(config_of(at), 3, 1)
    assert taps.shortcut == "stage3_unit1_shortcut_pool"
    figure(at, taps.shortcut)
    output = figure(at, taps.output)
    assert len(frames(output)) == 1 + taps.groups  # the pooled shortcut, then the groups of the second conv
    assert any("average-pooled" in c for c in texts(at, "caption"))


def test_a_bad_upload_shows_the_decode_message():
    at = make_app(**FASHION, groups="3")
    at.file_uploader(key="inside_upload").set_value(("notes.png", b"hello, not a picture", "image/png")).run()
    no_exception(at)
    assert any("notes.png" in e and "not an image" in e for e in texts(at, "error"))
    assert not list(at.get("plotly_chart"))
    picture = io.BytesIO()
    Image.new("RGB", (40, 60), (250, 250, 250)).save(picture, format="PNG")
    at.file_uploader(key="inside_upload").set_value(("photo.png", picture.getvalue(), "image/png")).run()
    no_exception(at)
    assert not texts(at, "error")
    assert any("photo.png" in c and "inverted" in c for c in texts(at, "caption"))  # a light photo, as in training
    assert len(frames(figure(at, activations.unit_taps(config_of(at), 2, 2).gconv1))) == 3


def test_a_damaged_shipped_checkpoint_falls_back_to_random_weights(tmp_path, monkeypatch):
    from shufflenet import checkpoints

    config = _fashion_config(2)
    folder = tmp_path / "broken_g2"
    folder.mkdir()
    manifest = {"config": config.to_dict(), "class_names": [f"c{i}" for i in range(10)], "task": "fashion-mnist",
                "dataset": {"name": "test"}, "preprocessing": {}, "epochs": 1, "test_accuracy": 0.5,
                "training_seconds": 1.0, "library_version": "test"}
    (folder / checkpoints.MANIFEST_NAME).write_text(json.dumps(manifest))
    (folder / checkpoints.WEIGHTS_NAME).write_bytes(b"not weights")
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", tmp_path)
    at = make_app(**FASHION, groups="2")
    no_exception(at)
    assert any("not an HDF5 file" in e and "random weights instead" in e for e in texts(at, "error"))
    assert any("untrained filters" in w for w in texts(at, "warning"))
    assert not texts(at, "success")
    assert len(frames(figure(at, activations.unit_taps(config, 2, 2).gconv1))) == 2


def test_a_warm_rerun_reuses_the_tap_model_and_the_maps():
    before = dict(cache.WORK_DONE)
    at = make_app(**FASHION, groups="4", blocks="2,2,2")  # a network no other test here shows
    assert cache.WORK_DONE["taps"] == before.get("taps", 0) + 1
    assert cache.WORK_DONE["activations"] == before.get("activations", 0) + 1
    builds = dict(cache.WORK_DONE)
    at.run()
    no_exception(at)
    assert cache.WORK_DONE["taps"] == builds.get("taps", 0)
    assert cache.WORK_DONE["activations"] == builds.get("activations", 0)
    at.selectbox(key="inside_stage").set_value(3).run()  # another unit: the same maps, already computed
    no_exception(at)
    assert cache.WORK_DONE["activations"] == builds.get("activations", 0)


def test_imagenet_without_imported_weights_offers_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(imagenet, "IMPORT_ROOT", tmp_path)  # nothing imported
    at = make_app(view="inside", task="imagenet", groups="3", scale="0.25", blocks="1,1,1")
    no_exception(at)
    assert any("Only random weights exist" in m for m in texts(at, "info"))
    assert at.selectbox(key="inside_sample").value in imagenet_samples()
    at.button(key="inside_to_fashion").click().run()
    no_exception(at)
    assert at.session_state["task"] == ui_state.TASK_BY_KEY["fashion-mnist"].label
    assert at.selectbox(key="inside_fashion").value


def imagenet_samples():
    from shufflenet.inference import SAMPLE_IMAGES

    return list(SAMPLE_IMAGES)


@pytest.mark.slow
def test_imported_imagenet_weights_use_their_shuffle_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(imagenet, "IMPORT_ROOT", tmp_path)
    folder = fake_import(tmp_path, 3, 0.5)
    at = make_app(view="inside", task="imagenet", groups="3", scale="0.5")
    no_exception(at)
    assert any("megvii" in s for s in texts(at, "success"))
    assert not any("untrained" in w for w in texts(at, "warning"))
    config = imagenet.megvii_config(3, 0.5)
    taps = activations.unit_taps(config, 2, 2)
    assert config.shuffle_layout == "transposed"
    positions, sources = tile_channels(figure(at, taps.shuffle))
    assert list(positions) == list(range(taps.bottleneck))
    assert list(sources) == list(shuffle_permutation(taps.bottleneck, 3, "transposed"))
    assert folder.name in " ".join(texts(at, "success"))


# --- the trained Fashion-MNIST checkpoints (skipped until they ship) ----------------------------

def _check_trained(at: AppTest, checkpoint, config) -> None:
    no_exception(at)
    assert any("Trained weights" in s and checkpoint.path.name in s for s in texts(at, "success"))
    assert not any("untrained" in w for w in texts(at, "warning"))
    # a trained network gets the shipped trouser image right (Fashion-MNIST's easiest class)
    trousers = [o for o in at.selectbox(key="inside_fashion").options if o.startswith("Trouser")]
    at.selectbox(key="inside_fashion").set_value(trousers[0]).run()
    assert any("answer: **Trouser**" in c for c in texts(at, "caption"))
    taps = activations.unit_taps(config, 2, 2)
    assert len(frames(figure(at, taps.gconv1))) == config.groups
    _, sources = tile_channels(figure(at, taps.shuffle if taps.shuffle else taps.depthwise))
    assert list(sources) == list(taps.permutation)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_the_shipped_checkpoint_is_used_when_it_matches(groups):
    config = _fashion_config(groups)
    checkpoint = find_shipped_checkpoint(config)
    if checkpoint is None:
        pytest.skip(f"no shipped checkpoint for the Fashion-MNIST preset at g = {groups} (0.5x, 32x32x1) yet: "
                    "assets/checkpoints/ holds other configurations until the new ones are trained")
    _check_trained(make_app(**FASHION, groups=str(groups)), checkpoint, config)


@pytest.mark.slow
def test_the_shipped_quarter_width_checkpoints_are_used():
    found = [(g, find_shipped_checkpoint(_fashion_config(g, 0.25))) for g in (1, 2, 3, 4, 8)]
    found = [(g, c) for g, c in found if c is not None]
    if not found:
        pytest.skip("no shipped checkpoint for the Fashion-MNIST preset at 0.25x (32x32x1) yet: assets/checkpoints/ "
                    "holds other configurations until the new ones are trained")
    for groups, checkpoint in found:
        _check_trained(make_app(**FASHION, groups=str(groups), scale="0.25"), checkpoint, checkpoint.config)
