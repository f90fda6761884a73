"""Work from several sessions at once (the app serves each session in its own thread): trainings,
dataset reads and weights loads in parallel threads must not see or spoil each other's results."""

from __future__ import annotations

import gzip
import json
import struct
import threading

import numpy as np
import pytest

from shufflenet import ShuffleNetConfig, build_model, checkpoints, data, training

A = ShuffleNetConfig(groups=1, blocks=(1, 1, 1), scale=0.25, input_size=32, channels=1, num_classes=10)
B = A.replace(groups=2)


def run_threads(targets, timeout: float = 300) -> list:
    """Run each callable in its own thread at the same time; their results (or exceptions)."""
    results: list = [None] * len(targets)
    start = threading.Barrier(len(targets))

    def run(i, fn):
        start.wait()
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish in time"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


# --- the dataset cache ------------------------------------------------------------------------

def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion_mnist(folder, n: int, fill: int):
    folder.mkdir()
    images = np.full((n, 28, 28), fill, np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    for key, array in (("train_images", images), ("train_labels", labels), ("test_images", images),
                       ("test_labels", labels)):
        _write_idx(folder / data.FASHION_MNIST_FILES[key], array)
    return folder


def test_dataset_cache_serves_each_thread_its_own_folder(tmp_path):
    # The cache keeps one folder; two sessions reading different folders used to race between
    # "clear, store" and "return the stored entry" (a KeyError, or the other folder's data).
    one = _fake_fashion_mnist(tmp_path / "one", 20, 1)
    two = _fake_fashion_mnist(tmp_path / "two", 30, 2)

    def reader(folder, n, fill):
        def read():
            for _ in range(40):
                ds = data.load_fashion_mnist(folder, download=False)
                assert len(ds.train.labels) == n and int(ds.train.images[0, 0, 0]) == fill
            return True
        return read

    run_threads([reader(one, 20, 1), reader(two, 30, 2)] * 2)


# --- weights loads --------------------------------------------------------------------------

@pytest.mark.slow
def test_concurrent_weights_loads_accept_the_good_file_and_refuse_the_bad_one(tmp_path):
    # Loading used to record warnings through process-wide filters, which threads overwrite;
    # now each load checks its own file against its own model.
    source = build_model(A)
    good = tmp_path / "good.weights.h5"
    source.save_weights(good)
    bad = tmp_path / "bad.weights.h5"
    build_model(A.replace(num_classes=5)).save_weights(bad)
    expected = [w.numpy() for w in source.weights]

    def load(path, ok: bool):
        def run():
            for _ in range(3):
                model = build_model(A)
                if ok:
                    checkpoints.load_weights(model, path)
                    for a, b in zip(model.weights, expected):
                        np.testing.assert_array_equal(a.numpy(), b)
                else:
                    with pytest.raises(checkpoints.CheckpointError, match="classifier_fc/kernel needs shape"):
                        checkpoints.load_weights(model, path)
            return True
        return run

    run_threads([load(good, True), load(bad, False), load(good, True)])


# --- trainings ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.usefixtures("requires_fashion_mnist")
def test_two_trainings_in_threads_write_valid_independent_checkpoints(tmp_path):
    outs = {"a": tmp_path / "a", "b": tmp_path / "b"}
    configs = {"a": A, "b": B}
    seeds = {"a": 1, "b": 2}

    def job(key):
        return lambda: training.train(configs[key], 1, limit=256, out_dir=outs[key], batch_size=128,
                                      eval_limit=200, record_subset=False, seed=seeds[key])

    results = dict(zip("ab", run_threads([job("a"), job("b")])))
    for key in "ab":
        result, out = results[key], outs[key]
        manifest = json.loads((out / checkpoints.MANIFEST_NAME).read_text())
        assert manifest == json.loads(json.dumps(result.manifest))  # what this run trained, nobody else's
        checkpoint = checkpoints.read_checkpoint(out)  # validates the manifest
        assert checkpoint.config == configs[key]
        assert manifest["training"]["seed"] == seeds[key] and manifest["dataset"]["train_images"] == 256
        assert manifest["training"]["steps_completed"] == 2
        # The saved weights are this run's model, and they reproduce its recorded accuracy.
        model = checkpoints.load_checkpoint_model(checkpoint, configs[key])
        for saved, trained in zip(model.weights, result.model.weights):
            np.testing.assert_array_equal(saved.numpy(), trained.numpy())
        again = training.evaluate(out, limit=200)
        assert again == {"accuracy": manifest["test_accuracy"], "n": 200}

