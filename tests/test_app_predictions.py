"""Predictions view: weights selector (random, shipped, uploaded, trained in this session),
the Fashion-MNIST gallery with true labels, and in-app training end to end."""

import functools
import io
import json

import apptest_support
import numpy as np
import pytest
from apptest_support import no_exception

from shufflenet import ShuffleNetConfig
from shufflenet.checkpoints import shipped_checkpoints

make_app = functools.partial(apptest_support.make_app, timeout_s=180)
metric = functools.partial(apptest_support.metric, prefix=True)  # "Accuracy on the first 500 ... images"
TINY = {"view": "predictions", "task": "fashion-mnist", "groups": "2", "scale": "0.25", "blocks": "1,1,1"}


def test_random_weights_say_so_and_score_about_chance():
    at = make_app(**TINY)
    no_exception(at)
    assert at.selectbox(key="pred_weights").value == "Random initialisation"
    assert any("random" in w.value for w in at.warning)
    assert metric(at, "True label") == "T-shirt/top"
    acc = float(metric(at, "Accuracy on the first 500").rstrip(" %"))
    assert 0 <= acc <= 30


@pytest.mark.slow
def test_training_in_the_app_end_to_end():
    at = make_app(**TINY)
    at.slider(key="train_subset").set_value(2000).run()
    at.button(key="train_start").click().run()
    no_exception(at)
    job = at.session_state["train_job"]
    assert job.join(timeout=600)
    at.run()  # the progress fragment sees the finished job and reruns the page
    no_exception(at)
    assert at.selectbox(key="pred_weights").value == "Trained in this session"
    assert any("Trained in" in s.value and "test accuracy" in s.value for s in at.success)
    assert not any("random" in w.value for w in at.warning)
    assert metric(at, "Accuracy on the first 500").endswith("%")


@pytest.mark.slow
def test_stop_button_ends_training_within_a_couple_of_batches():
    import time

    at = make_app(**TINY)
    at.number_input(key="train_epochs").set_value(20).run()
    at.slider(key="train_subset").set_value(60_000).run()
    at.button(key="train_start").click().run()
    job = at.session_state["train_job"]
    deadline = time.monotonic() + 300
    while len(job.snapshot().progress) < 3 and time.monotonic() < deadline:  # training is under way
        time.sleep(0.2)
    seen = len(job.snapshot().progress)
    assert seen >= 3
    at.button(key="train_stop").click().run()
    assert job.join(timeout=300)
    state = job.snapshot()
    assert state.status == "done" and state.result.stopped
    # the child stops after the batch it is on; the parent may not yet have seen one or two more
    assert state.result.manifest["training"]["steps_completed"] <= seen + 3


@pytest.mark.slow
@pytest.mark.skipif(not shipped_checkpoints(), reason="no shipped checkpoints")
def test_shipped_checkpoint_is_chosen_automatically_and_labels_the_gallery_correctly():
    ck = shipped_checkpoints()[0]
    c = ck.config
    at = make_app(view="predictions", task="fashion-mnist", groups=str(c.groups), scale=str(c.scale),
                  blocks=",".join(map(str, c.blocks)), reduction=str(c.reduction), size=str(c.input_size))
    no_exception(at)
    assert at.selectbox(key="pred_weights").value.startswith(f"Shipped checkpoint {ck.path.name}")
    correct = 0
    names = at.selectbox(key="pred_fashion").options
    for name in names:
        at.selectbox(key="pred_fashion").set_value(name).run()
        delta = next(m for m in at.metric if m.label == "True label").proto.delta
        correct += "correct" in delta
    assert correct >= 0.8 * len(names)
    assert float(metric(at, "Accuracy on the first 500").rstrip(" %")) > 80


def _checkpoint_bytes(tmp_path, config):
    from shufflenet import build_model

    model = build_model(config)
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    manifest = {"config": config.to_dict(), "class_names": [f"c{i}" for i in range(10)], "task": "fashion-mnist",
                "dataset": {"name": "test"}, "preprocessing": {}, "epochs": 1, "test_accuracy": 0.5,
                "training_seconds": 1.0, "library_version": "test"}
    return path.read_bytes(), json.dumps(manifest).encode()


def test_uploaded_weights_good_and_mismatched(tmp_path):
    at = make_app(**TINY)
    at.selectbox(key="pred_weights").set_value("Upload weights (.weights.h5 + manifest.json)").run()
    no_exception(at)
    config = ShuffleNetConfig(groups=2, scale=0.25, blocks=(1, 1, 1), input_size=32, channels=1, num_classes=10)
    weights, manifest = _checkpoint_bytes(tmp_path, config)
    at.file_uploader(key="pred_weights_file").set_value(("mine.weights.h5", weights, "application/octet-stream"))
    at.file_uploader(key="pred_manifest_file").set_value(("manifest.json", manifest, "application/json")).run()
    no_exception(at)
    assert not at.error
    assert any("Uploaded mine.weights.h5" in s.value for s in at.success)
    assert at.dataframe[-1].value["label"].str.startswith("c").all()  # the manifest's class names
    _other, other_manifest = _checkpoint_bytes(tmp_path, config.replace(groups=4))
    at.file_uploader(key="pred_manifest_file").set_value(("m.json", other_manifest, "application/json")).run()
    no_exception(at)
    assert at.error and "groups: 4 in the checkpoint, 2 in the model" in at.error[0].value
    at.file_uploader(key="pred_manifest_file").set_value(("m.json", b"{not json", "application/json")).run()
    assert at.error and "not valid JSON" in at.error[0].value
    at.file_uploader(key="pred_manifest_file").set_value(("manifest.json", manifest, "application/json"))
    at.file_uploader(key="pred_weights_file").set_value(("bad.weights.h5", b"nonsense", "application/octet-stream"))
    at.run()
    assert at.error and "'bad.weights.h5'" in at.error[0].value and "HDF5" in at.error[0].value
    assert "/tmp" not in at.error[0].value  # the private temporary path is not shown
    assert len(at.dataframe[-1].value) == 5  # the page still predicts, with random weights


def test_fashion_upload_is_converted_and_explained():
    from PIL import Image

    at = make_app(**TINY)
    buf = io.BytesIO()
    im = np.full((60, 40), 250, np.uint8)
    im[10:50, 10:30] = 30  # a dark item on a light background
    Image.fromarray(im).save(buf, "PNG")
    at.file_uploader(key="pred_upload").set_value(("shirt.png", buf.getvalue(), "image/png")).run()
    no_exception(at)
    assert any("inverted" in c.value for c in at.caption)


@pytest.mark.skipif(not shipped_checkpoints(), reason="no shipped checkpoints")
@pytest.mark.slow
def test_switch_button_selects_the_checkpoints_weights():
    at = make_app(view="predictions", task="fashion-mnist", groups="3", scale="1.0")
    no_exception(at)
    assert at.selectbox(key="pred_weights").value == "Random initialisation"
    at.button(key="pred_switch").click().run()
    no_exception(at)
    assert at.selectbox(key="pred_weights").value.startswith("Shipped checkpoint")
    assert not any("random" in w.value for w in at.warning)
    acc = float(metric(at, "Accuracy on the first 500").rstrip(" %"))
    assert acc >= 80


@pytest.mark.skipif(not shipped_checkpoints(), reason="no shipped checkpoints")
@pytest.mark.slow
def test_imagenet_without_weights_leads_to_the_trained_fashion_network():
    at = make_app(view="predictions", groups="8")
    no_exception(at)
    assert any("No ImageNet weights are imported" in i.value for i in at.info)
    at.button(key="pred_to_fashion").click().run()
    no_exception(at)
    assert at.selectbox(key="task").value.startswith("Fashion-MNIST")
    assert at.selectbox(key="groups").value == 8
    assert at.selectbox(key="pred_weights").value.startswith("Shipped checkpoint")
