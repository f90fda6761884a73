"""Training and evaluation (library and CLI) on a tiny subset, and the shipped checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shufflenet import ShuffleNetConfig, checkpoints, data, training

ROOT = Path(__file__).resolve().parent.parent
HAVE_DATA = (data.DEBIAN_DIR / data.FASHION_MNIST_FILES["test_labels"]).is_file() or bool(
    os.environ.get(data.ENV_VAR))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST not available offline "
                                                      "(apt-get install dataset-fashion-mnist)")

# A small network so that building and compiling stays quick; the mechanics are the same.
TINY = ShuffleNetConfig(groups=2, blocks=(1, 1, 1), scale=0.25, input_size=32, channels=1, num_classes=10)
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}


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
    result, progress, out = trained
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


def test_one_shipped_checkpoint_per_group_setting():
    assert sorted(c.config.groups for c in SHIPPED) == [1, 2, 3, 4, 8]
    assert len({(c.config.scale, c.config.input_size) for c in SHIPPED}) == 1
    for c in SHIPPED:
        assert c.config.blocks == (4, 8, 4) and c.config.reduction == 0.25
        assert c.config.channels == 1 and c.config.num_classes == 10
        assert c.manifest["test_images"] == 10000 and c.test_accuracy >= 0.87
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
