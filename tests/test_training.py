"""Training and evaluation (library and CLI) on a tiny subset, and the shipped checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

from explorer.state import TASKS
from shufflenet import ShuffleNetConfig, checkpoints, data, training
from shufflenet.settings import quiet_tensorflow_env

ROOT = Path(__file__).resolve().parent.parent
needs_data = pytest.mark.usefixtures("requires_fashion_mnist")

# A small network so that building and compiling stays quick; the mechanics are the same.
ENV = {**os.environ, **quiet_tensorflow_env()}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shufflenet", *args], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch on 256 images, evaluated on 200 test images, saved to a temp folder."""
    out = tmp_path_factory.mktemp("trained")
    progress = []
    result = training.train(TINY, 1, limit=256, out_dir=out, on_batch=progress.append, batch_size=64,
                            eval_limit=200)
    return result, progress, out


@needs_data
@pytest.mark.slow
def test_train_saves_weights_and_manifest(trained):
    result, _progress, out = trained
    assert (out / "model.weights.h5").is_file() and not result.stopped
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["config"] == TINY.to_dict() and manifest["task"] == "fashion-mnist"
    assert manifest["class_names"] == list(data.FASHION_MNIST_CLASSES)
    assert manifest["dataset"]["name"] == "Fashion-MNIST" and manifest["dataset"]["train_images"] == 256
    assert manifest["preprocessing"]["function"] == "shufflenet.data.preprocess"
    assert manifest["preprocessing"]["input_size"] == 32
    assert manifest["epochs"] == 1 and manifest["training"]["limit"] == 256
    assert manifest["test_images"] == 200 and 0 <= manifest["test_accuracy"] <= 1
    assert manifest["training_seconds"] > 0
    import shufflenet

    assert manifest["library_version"] == shufflenet.__version__
    assert manifest["subset_accuracy"]["n"] == training.SUBSET_SIZE
    checkpoints.validate_manifest(manifest)


@needs_data
@pytest.mark.slow
def test_tensorboard_events_beside_the_checkpoint_hold_the_runs_numbers(trained):
    """Read back with TensorBoard's own event reader, not the library's."""
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
    from tensorflow import make_ndarray

    result, _progress, out = trained
    assert result.manifest["tensorboard"] == "tensorboard"
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={TENSORS: 0}).Reload()

    def scalars(tag):
        return [(e.step, float(make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]

    history = result.manifest["training"]["history"]
    assert scalars("epoch/loss") == [(h["epoch"], pytest.approx(h["loss"])) for h in history]
    assert scalars("epoch/accuracy") == [(h["epoch"], pytest.approx(h["accuracy"])) for h in history]
    rate = scalars("epoch/learning_rate")
    assert len(rate) == 1 and rate[0][1] == pytest.approx(0.0, abs=1e-9)  # cosine decay ends at 0
    assert scalars("test/accuracy") == [(1, pytest.approx(result.manifest["test_accuracy"]))]


@needs_data
@pytest.mark.slow
def test_progress_reports_every_batch(trained):
    _, progress, _ = trained
    assert [p.batch for p in progress] == [1, 2, 3, 4]
    assert progress[-1].step == progress[-1].steps == 4 and progress[-1].batches == 4
    assert all(p.loss > 0 and 0 <= p.accuracy <= 1 for p in progress)


@needs_data
@pytest.mark.slow
def test_evaluate_reproduces_the_manifest(trained):
    result, _, out = trained
    assert training.evaluate(out, limit=200) == {"accuracy": result.manifest["test_accuracy"], "n": 200}


@needs_data
@pytest.mark.slow
def test_evaluate_cli_prints_json(trained):
    result, _, out = trained
    done = run_cli("evaluate", str(out), "--limit", "200", "--format", "json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == {"accuracy": pytest.approx(result.manifest["test_accuracy"]), "n": 200}


@needs_data
@pytest.mark.slow
def test_config_mismatch_is_explained(trained):
    _, _, out = trained
    with pytest.raises(checkpoints.ConfigMismatchError, match=r"groups: 2 in checkpoint .*, 3 in the model"):
        checkpoints.load_checkpoint_model(out, TINY.replace(groups=3))


@needs_data
@pytest.mark.slow
def test_cooperative_stop(tmp_path):
    stop = threading.Event()
    seen = []

    def on_batch(p):
        seen.append(p.step)
        if p.step == 2:
            stop.set()

    result = training.train(TINY, 3, limit=256, on_batch=on_batch, stop=stop, batch_size=32, eval_limit=50,
                            record_subset=False, out_dir=tmp_path / "stopped")
    assert result.stopped and seen == [1, 2]
    assert result.manifest["training"]["stopped_early"] is True
    assert result.manifest["training"]["steps_completed"] == 2
    assert (tmp_path / "stopped" / "manifest.json").is_file()


def test_train_rejects_wrong_class_count_and_epochs():
    with pytest.raises(ValueError, match="num_classes` must be 10"):
        training.train(TINY.replace(num_classes=1000), 1)
    with pytest.raises(ValueError, match="epochs"):
        training.train(TINY, 0)


def test_cli_usage_errors_are_one_line():
    done = run_cli("train", "--task", "fashion-mnist", "--epochs", "1", "--out", "x", timeout=60)
    assert done.returncode == 2 and "num_classes` must be 10" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_cli("train", "--task", "cifar", "--epochs", "1", "--out", "x", timeout=60)
    assert done.returncode == 2 and "invalid choice: 'cifar'" in done.stderr
    done = run_cli("evaluate", "/nonexistent", "--format", "json", timeout=60)
    assert done.returncode == 1 and "No checkpoint at /nonexistent" in done.stderr


# --- the shipped checkpoints -------------------------------------------------------------------------
SHIPPED = checkpoints.shipped_checkpoints()


def test_one_shipped_checkpoint_per_cell_of_the_grid():
    """The published grid: one checkpoint per cell of the small Tables 2 and 3 (every g at 0.25x and
    0.5x with the shuffle, g = 3 and 8 without), all at the Fashion-MNIST preset's input."""
    from shufflenet import experiment

    cells = sorted((c.config.scale, c.config.shuffle, c.config.groups) for c in SHIPPED)
    want = sorted((scale, True, g) for scale in (0.25, 0.5) for g in (1, 2, 3, 4, 8))
    want += sorted((scale, False, g) for scale in (0.25, 0.5) for g in (3, 8))
    assert cells == sorted(want)
    preset = next(t for t in TASKS if t.key == "fashion-mnist")
    for c in SHIPPED:
        assert c.config.blocks == (4, 8, 4) and c.config.reduction == 0.25
        assert (c.config.input_size, c.config.channels, c.config.num_classes) == (
            preset.input_size, preset.channels, preset.num_classes)
        assert c.manifest["test_images"] == 10000 and c.test_accuracy >= 0.84
        assert c.manifest["epochs"] == experiment.RECIPE["epochs"]
        assert checkpoints.find_shipped_checkpoint(c.config).path == c.path
    assert checkpoints.find_shipped_checkpoint(SHIPPED[0].config.replace(scale=2.0)) is None
    total = sum(f.stat().st_size for f in checkpoints.SHIPPED_DIR.rglob("*") if f.is_file())
    assert total < 40e6


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", SHIPPED, ids=lambda c: c.path.name)
def test_shipped_accuracy_is_reproduced(checkpoint):
    """evaluate() reproduces the recorded accuracy within 0.5 points, on the full test set when
    SHUFFLENET_FULL_EVAL=1, else on the recorded subset (first 1,000 test images)."""
    if os.environ.get("SHUFFLENET_FULL_EVAL") == "1":
        expected, limit = checkpoint.test_accuracy, None
    else:
        subset = checkpoint.manifest["subset_accuracy"]
        expected, limit = subset["accuracy"], subset["n"]
    result = training.evaluate(checkpoint.path, limit=limit)
    assert abs(result["accuracy"] - expected) <= 0.005


# --- the fast engine -----------------------------------------------------------------------------------

def test_uint8_inputs_are_the_preprocessed_inputs():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    at32 = TINY
    np.testing.assert_array_equal(training.uint8_inputs(images, at32)[:, 2:30, 2:30, 0], images)  # padding only
    np.testing.assert_allclose(training.uint8_inputs(images, at32).astype(np.float32) / 255,
                               data.preprocess(images, at32), rtol=0, atol=1e-7)  # x / 255 vs x * (1 / 255)
    at64 = TINY.replace(input_size=64)
    diff = np.abs(training.uint8_inputs(images, at64).astype(np.float32) / 255 - data.preprocess(images, at64))
    assert diff.max() <= 0.5 / 255 + 1e-7  # rounding to uint8 only


def test_augmentation_flips_and_shifts_per_image_and_is_seeded():
    import tensorflow as tf

    x = np.zeros((64, 8, 8, 1), np.float32)
    x[:, 3, 1] = 1.0  # one bright pixel left of centre
    seed = tf.constant([7, 3], tf.int32)
    a, b = training._augment(tf.constant(x), seed).numpy(), training._augment(tf.constant(x), seed).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, training._augment(tf.constant(x), tf.constant([7, 4], tf.int32)).numpy())
    assert a.shape == x.shape and set(np.unique(a)) <= {0.0, 1.0}
    cols = np.array([np.argwhere(im[..., 0] == 1.0)[0][1] for im in a if im.max() == 1.0])
    rows = np.array([np.argwhere(im[..., 0] == 1.0)[0][0] for im in a if im.max() == 1.0])
    assert (cols > 4).any() and (cols < 4).any()  # some flipped to the right half, some not
    assert np.abs(rows - 3).max() <= training.SHIFT_PIXELS and len(set(rows)) > 1


def test_batch_size_has_an_upper_limit():
    with pytest.raises(ValueError, match=r"`batch_size` must be a whole number from 1 to 4096"):
        training.check_arguments(batch_size=10**9)
    done = run_cli("train", "--task", "fashion-mnist", "--classes", "10", "--epochs", "1", "--out", "x",
                   "--batch-size", str(10**9), timeout=60)
    assert done.returncode == 2 and "batch_size" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@needs_data
@pytest.mark.slow
def test_fast_engine_recalibrates_batch_norm_and_saves_the_standard_model(trained):
    result, _, _out = trained
    m = result.manifest["training"]
    assert m["engine"] == "fast" and m["batchnorm_statistics"].startswith("recomputed on 256 training images")
    from shufflenet.model import build_model

    names = {layer.name for layer in result.model.layers}
    assert names == {layer.name for layer in build_model(TINY).layers}  # the paper's graph, pads included


@needs_data
@pytest.mark.slow
def test_keras_fit_engine_still_trains(tmp_path):
    progress = []
    result = training.train(TINY, 1, limit=256, batch_size=64, eval_limit=50, record_subset=False,
                            engine="keras-fit", on_batch=progress.append, out_dir=tmp_path)
    assert result.manifest["training"]["engine"] == "keras-fit" and [p.batch for p in progress] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="augment"):
        training.train(TINY, 1, engine="keras-fit", augment=True)
    with pytest.raises(ValueError, match="engine"):
        training.train(TINY, 1, engine="turbo")


def test_warmup_and_label_smoothing_are_checked_before_any_data_is_read():
    for name, bad in (("warmup", 1.0), ("warmup", -0.1), ("label_smoothing", float("nan")), ("label_smoothing", True)):
        with pytest.raises(ValueError, match=rf"`{name}` must be a number from 0 to under 1.*Received: {name}="):
            training.train(TINY, 1, **{name: bad})
    with pytest.raises(ValueError, match="label_smoothing"):
        training.train(TINY, 1, engine="keras-fit", label_smoothing=0.1)


def test_label_smoothing_mixes_the_cross_entropy_with_the_mean_log_probability():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    graph = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    x = np.random.default_rng(0).random((8, 4, 4, 1)).astype(np.float32)
    y = np.arange(8, dtype=np.int32)
    p = graph(x).numpy()
    ce = -np.log(p[np.arange(8), y])
    seed = tf.constant([0, 0], tf.int32)
    for e in (0.0, 0.1, 0.5):
        step = training.make_step(graph, keras.optimizers.SGD(0.0), dtype="float32", label_smoothing=e)
        loss, correct = step(x, y, seed)
        expected = np.mean((1 - e) * ce + e * -np.log(p).mean(axis=-1))
        assert float(loss) == pytest.approx(expected, rel=1e-5), e
        assert float(correct) == (p.argmax(-1) == y).sum()


@needs_data
@pytest.mark.slow
def test_warmup_raises_the_rate_to_its_peak_then_the_cosine_takes_it_to_zero(tmp_path):
    from shufflenet import tensorboard_log

    result = training.train(TINY, 2, limit=256, batch_size=64, learning_rate=4e-3, warmup=0.5, label_smoothing=0.1,
                            eval_limit=50, record_subset=False, log_dir=tmp_path)
    m = result.manifest["training"]
    assert m["schedule"] == "linear warm-up over 4 steps, then cosine decay to 0" and m["label_smoothing"] == 0.1
    rates = [v for _, v in tensorboard_log.read_scalars(tmp_path)["epoch/learning_rate"]]
    assert rates == pytest.approx([4e-3, 0.0], abs=1e-9)  # the peak after epoch 1's 4 steps, 0 at the end
    plain = training.train(TINY, 1, limit=64, batch_size=64, eval_limit=10, record_subset=False).manifest["training"]
    assert plain["schedule"] == "cosine decay to 0" and "label_smoothing" not in plain  # the default recipe


@needs_data
@pytest.mark.slow
def test_the_smallest_training_the_page_offers_beats_chance():
    """The training panel's smallest choice (its fewest images, one epoch, its recipe) on the
    Fashion-MNIST preset learns something: well above the 10 % of guessing, on the panel's 1,000
    test images."""
    from explorer.views import training_panel as panel

    preset = next(t for t in TASKS if t.key == "fashion-mnist")
    config = ShuffleNetConfig(input_size=preset.input_size, channels=preset.channels,
                              num_classes=preset.num_classes, scale=preset.scale)
    result = training.train(config, epochs=panel.EPOCHS_RANGE[0], limit=panel.SUBSET_RANGE[0],
                            eval_limit=panel.EVAL_IMAGES, record_subset=False, **panel.RECIPE)
    assert result.manifest["test_accuracy"] > 0.3, result.manifest["test_accuracy"]
