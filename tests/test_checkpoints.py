"""Checkpoint manifests and weights files: validation and the messages that explain problems."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY

from shufflenet import ShuffleNetConfig, build_model, checkpoints, data


def manifest_for(config: ShuffleNetConfig) -> dict:
    return {
        "format": "shufflenet-checkpoint", "format_version": 1, "library_version": "0.1.0",
        "config": config.to_dict(), "task": "fashion-mnist", "dataset": {"name": "Fashion-MNIST"},
        "class_names": list(data.FASHION_MNIST_CLASSES), "preprocessing": dict(data.PREPROCESSING),
        "epochs": 1, "test_accuracy": 0.5, "training_seconds": 1.0, "weights": checkpoints.WEIGHTS_NAME,
    }


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(TINY)


@pytest.fixture
def checkpoint_dir(tmp_path, tiny_model):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    tiny_model.save_weights(folder / checkpoints.WEIGHTS_NAME)
    (folder / checkpoints.MANIFEST_NAME).write_text(json.dumps(manifest_for(TINY)))
    return folder


def test_read_and_load_round_trip(checkpoint_dir, tiny_model):
    checkpoint = checkpoints.read_checkpoint(checkpoint_dir)
    assert checkpoint.config == TINY and checkpoint.class_names[0] == "T-shirt/top"
    assert checkpoints.read_checkpoint(checkpoint_dir / "manifest.json").path == checkpoint_dir
    model = checkpoints.load_checkpoint_model(checkpoint, TINY)
    for a, b in zip(model.weights, tiny_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_config_mismatch_names_each_field(checkpoint_dir):
    other = TINY.replace(groups=4, scale=0.5)
    with pytest.raises(checkpoints.ConfigMismatchError) as info:
        checkpoints.load_checkpoint_model(checkpoint_dir, other)
    message = str(info.value)
    assert "groups: 2 in checkpoint ckpt, 4 in the model" in message
    assert "scale: 0.25 in checkpoint ckpt, 0.5 in the model" in message
    assert "input_size" not in message
    assert [d[0] for d in info.value.differences] == ["groups", "scale"]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ("{}", "lacks field(s) config, class_names"),
])
def test_unreadable_manifests(checkpoint_dir, text, expected):
    (checkpoint_dir / "manifest.json").write_text(text)
    with pytest.raises(checkpoints.CheckpointError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        checkpoints.read_checkpoint(checkpoint_dir)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("epochs", "three", "'epochs' must be a whole number"),
    ("test_accuracy", True, "'test_accuracy' must be a whole number or a number"),
    ("config", {"groups": 5}, "not a valid configuration: `groups` must be one of"),
    ("config", {"colour": 1}, "Unknown configuration field"),
    ("class_names", ["a", "b"], "'class_names' must be 10 strings"),
])
def test_wrong_types_are_named(checkpoint_dir, field, value, expected):
    manifest = manifest_for(TINY)
    manifest[field] = value
    (checkpoint_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(checkpoints.CheckpointError, match=expected):
        checkpoints.read_checkpoint(checkpoint_dir)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="No checkpoint at"):
        checkpoints.read_checkpoint(tmp_path)


def test_non_hdf5_weights(checkpoint_dir):
    (checkpoint_dir / checkpoints.WEIGHTS_NAME).write_bytes(b"PK\x03\x04 a zip, not HDF5")
    with pytest.raises(checkpoints.CheckpointError, match="is not an HDF5 file"):
        checkpoints.load_checkpoint_model(checkpoint_dir)


def test_truncated_weights(checkpoint_dir):
    path = checkpoint_dir / checkpoints.WEIGHTS_NAME
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(checkpoints.CheckpointError, match="truncated or damaged"):
        checkpoints.load_checkpoint_model(checkpoint_dir)


def test_weights_of_another_architecture(checkpoint_dir):
    # The manifest claims g=4, the weights file holds a g=2 network: Keras's error is wrapped.
    wrong = TINY.replace(groups=4)
    (checkpoint_dir / "manifest.json").write_text(json.dumps(manifest_for(wrong)))
    with pytest.raises(checkpoints.CheckpointError, match="does not fit model"):
        checkpoints.load_checkpoint_model(checkpoint_dir)


def test_find_shipped_checkpoint_in_a_folder(tmp_path, checkpoint_dir):
    root = checkpoint_dir.parent
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("nope")
    assert checkpoints.find_shipped_checkpoint(TINY, root).path == checkpoint_dir
    assert checkpoints.find_shipped_checkpoint(TINY.replace(groups=3), root) is None
    assert checkpoints.shipped_checkpoints(tmp_path / "none") == []


def test_parse_uploaded_manifest_bytes():
    manifest, config = checkpoints.parse_manifest(json.dumps(manifest_for(TINY)).encode(), "upload.json")
    assert config == TINY and manifest["task"] == "fashion-mnist"
    with pytest.raises(checkpoints.CheckpointError, match=r"upload.json is not valid JSON"):
        checkpoints.parse_manifest(b"\xff\xfe", "upload.json")


def test_shipped_results_document_is_current():
    from shufflenet import experiment

    results = checkpoints.SHIPPED_DIR / "RESULTS.md"
    assert results.read_text() == experiment.results_document(experiment.shipped_results()), (
        "assets/checkpoints/RESULTS.md is stale: `python -m shufflenet publish runs/grid` writes it with results.json")


def test_data_and_checkpoints_import_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys, shufflenet.data, shufflenet.checkpoints, shufflenet.training, shufflenet.cli; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
