"""Train a ShuffleNet on Fashion-MNIST and evaluate checkpoints.

`train` serves the CLI (progress bar) and the app (a per-batch callback for live charts and a
cooperative stop). A checkpoint is a folder with `model.weights.h5` and `manifest.json`
(see `shufflenet.checkpoints`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import data
from .checkpoints import MANIFEST_NAME, WEIGHTS_NAME, manifest_header, read_checkpoint
from .config import ShuffleNetConfig

TASK = "fashion-mnist"
#: Shipped manifests also record the accuracy on the first `SUBSET_SIZE` test images, which a
#: quick test can reproduce in seconds.
SUBSET_SIZE = 1000
EVAL_BATCH = 500


class BatchProgress(NamedTuple):
    """What a UI needs to draw one step of a live training chart."""

    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based, within the epoch
    batches: int  # per epoch
    step: int  # 1-based, over the whole run
    steps: int
    loss: float  # running mean over the epoch so far (Keras's logs)
    accuracy: float
    seconds: float  # since training started


class EpochResult(NamedTuple):
    epoch: int
    loss: float
    accuracy: float
    seconds: float


class TrainResult(NamedTuple):
    model: Any  # keras.Model
    manifest: dict
    out_dir: Path | None
    stopped: bool  # True when the stop request ended training early


def _is_stop_requested(stop) -> bool:
    if stop is None:
        return False
    if hasattr(stop, "is_set"):  # threading.Event
        return bool(stop.is_set())
    return bool(stop())


def check_task_config(config: ShuffleNetConfig) -> None:
    if config.num_classes != len(data.FASHION_MNIST_CLASSES):
        raise ValueError(
            f"Fashion-MNIST has {len(data.FASHION_MNIST_CLASSES)} classes, so `num_classes` must be 10. "
            f"Received: num_classes={config.num_classes}. Use config.replace(num_classes=10) (CLI: --classes 10)."
        )


def _whole(name: str, value, low: int, high: int | None = None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        allowed = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"`{name}` must be a whole number {allowed}{', or None' if allow_none else ''}. "
                         f"Received: {name}={value!r}")


_SEED_LOCK = threading.Lock()

#: Largest seed NumPy (and so Keras's set_random_seed) accepts.
MAX_SEED = 2**32 - 1


def check_arguments(epochs=1, limit=None, batch_size=256, learning_rate=2e-3, eval_limit=None, seed=0) -> None:
    """Raise ValueError, naming the argument, what was received and what is allowed, before any
    data is read or model built (the CLI turns it into a one-line usage error)."""
    _whole("epochs", epochs, 1)
    _whole("limit", limit, 1, allow_none=True)
    _whole("batch_size", batch_size, 1)
    _whole("eval_limit", eval_limit, 1, allow_none=True)
    _whole("seed", seed, 0, MAX_SEED)
    if (isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
            or not math.isfinite(learning_rate) or not 0 < learning_rate <= 1):
        raise ValueError(f"`learning_rate` must be a number above 0 and at most 1 (e.g. 2e-3). "
                         f"Received: learning_rate={learning_rate!r}")


def predict_probabilities(model, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Softmax outputs for a preprocessed batch, in inference mode, without `predict`'s overhead."""
    import tensorflow as tf

    fn = getattr(model, "_shufflenet_infer", None)
    if fn is None:
        fn = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
        model._shufflenet_infer = fn
    out = [fn(tf.constant(x[i:i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


#: Preprocessed float32 data up to this size is held in memory; larger inputs go batch by batch.
IN_MEMORY_BYTES = 1 << 30


def _chunk(config: ShuffleNetConfig, cap: int = 5000) -> int:
    per_image = config.input_size ** 2 * config.channels * 4
    return max(1, min(cap, (256 << 20) // per_image))


def accuracy_on(model, config: ShuffleNetConfig, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of `model` on uint8 images, preprocessed in chunks to bound memory."""
    if len(images) == 0:
        return float("nan")
    correct, step = 0, _chunk(config)
    for i in range(0, len(images), step):
        x = data.preprocess(images[i:i + step], config)
        correct += int((predict_probabilities(model, x).argmax(-1) == labels[i:i + step]).sum())
    return correct / len(images)


def _batches(images: np.ndarray, labels: np.ndarray, config: ShuffleNetConfig, batch_size: int, seed: int):
    """A shuffled Keras PyDataset preprocessing each batch on the fly (for large inputs)."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(labels))

        def __len__(self):
            return -(-len(labels) // batch_size)

        def __getitem__(self, i):
            idx = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            return data.preprocess(images[idx], config), labels[idx].astype(np.int32)

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(labels))

    return Batches()


def train(
    config: ShuffleNetConfig,
    epochs: int = 3,
    *,
    limit: int | None = None,
    out_dir: Path | str | None = None,
    on_batch: Callable[[BatchProgress], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    stop=None,
    batch_size: int = 256,
    learning_rate: float = 2e-3,
    eval_limit: int | None = None,
    record_subset: bool = True,
    data_dir: Path | str | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train `config` on Fashion-MNIST with Adam, evaluate it on the test set, and save it.

    Args:
        config: the network; `num_classes` must be 10 (any input size, 1 or 3 channels).
        epochs: passes over the training images.
        limit: train on the first `limit` training images only (None: all 60,000).
        out_dir: when given, `model.weights.h5` and `manifest.json` are written there.
        on_batch: called after every batch with a `BatchProgress` (live charts, progress bars).
        on_epoch: called after every epoch with an `EpochResult`.
        stop: a `threading.Event` or a no-argument callable; when it turns true, training ends
            after the current batch (cooperative stop) and the model is still evaluated and saved.
        learning_rate: Adam's initial rate, decayed by a cosine to 0 over the run.
        eval_limit: evaluate on the first `eval_limit` test images (None: all 10,000).
        record_subset: also record the accuracy on the first `SUBSET_SIZE` test images.
        data_dir: Fashion-MNIST folder (see `data.load_fashion_mnist` for the search order).
        seed: seeds weights initialisation and shuffling.
    """
    check_task_config(config)
    check_arguments(epochs, limit, batch_size, learning_rate, eval_limit, seed)
    dataset = data.load_fashion_mnist(data_dir)  # a bad or missing file fails before TensorFlow loads

    import keras

    from .model import build_model

    train_images, train_labels = dataset.train
    if limit is not None:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
    in_memory = len(train_labels) * config.input_size ** 2 * config.channels * 4 <= IN_MEMORY_BYTES

    with _SEED_LOCK:  # the seeds are process-wide: another thread's run must not draw from ours
        keras.utils.set_random_seed(seed)
        model = build_model(config)
    steps_per_epoch = -(-len(train_labels) // batch_size)
    total_steps = steps_per_epoch * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    start = time.perf_counter()
    history: list[EpochResult] = []
    state = {"epoch": 0, "stopped": False, "steps": 0}

    class _Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"] = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            state["steps"] += 1
            if on_batch is not None:
                on_batch(BatchProgress(
                    epoch=state["epoch"], epochs=epochs, batch=batch + 1, batches=steps_per_epoch,
                    step=(state["epoch"] - 1) * steps_per_epoch + batch + 1, steps=total_steps,
                    loss=float(logs.get("loss", float("nan"))), accuracy=float(logs.get("accuracy", float("nan"))),
                    seconds=time.perf_counter() - start,
                ))
            if _is_stop_requested(stop):
                state["stopped"] = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            result = EpochResult(epoch + 1, float(logs.get("loss", float("nan"))),
                                 float(logs.get("accuracy", float("nan"))), time.perf_counter() - start)
            history.append(result)
            if on_epoch is not None:
                on_epoch(result)

    if in_memory:
        x, y = data.preprocess(train_images, config), np.asarray(train_labels, dtype=np.int32)
        model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[_Progress()])
        del x
    else:
        model.fit(_batches(train_images, train_labels, config, batch_size, seed), epochs=epochs, verbose=0,
                  callbacks=[_Progress()])
    seconds = time.perf_counter() - start

    test_images, test_labels = dataset.test
    if eval_limit is not None:
        test_images, test_labels = test_images[:eval_limit], test_labels[:eval_limit]
    test_accuracy = accuracy_on(model, config, test_images, test_labels)
    manifest = build_manifest(
        config, dataset=dataset, epochs=epochs, epochs_completed=len(history), limit=limit,
        train_images=len(train_labels), batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        seconds=seconds, stopped=state["stopped"], steps_completed=state["steps"], test_accuracy=test_accuracy,
        test_images=len(test_labels), history=history,
    )
    if record_subset:
        n = min(SUBSET_SIZE, len(dataset.test.labels))
        if eval_limit is not None and eval_limit == n:
            manifest["subset_accuracy"] = {"n": n, "accuracy": test_accuracy}
        else:
            acc = accuracy_on(model, config, dataset.test.images[:n], dataset.test.labels[:n])
            manifest["subset_accuracy"] = {"n": n, "accuracy": acc}
    out = None
    if out_dir is not None:
        out = save_checkpoint(model, manifest, out_dir)
    return TrainResult(model, manifest, out, state["stopped"])


def build_manifest(config: ShuffleNetConfig, *, dataset: data.FashionMNIST, epochs: int, epochs_completed: int,
                   limit: int | None, train_images: int, batch_size: int, learning_rate: float, seed: int,
                   seconds: float, stopped: bool, steps_completed: int, test_accuracy: float, test_images: int,
                   history: list[EpochResult]) -> dict:
    return {
        **manifest_header(config, TASK),
        "dataset": {
            "name": "Fashion-MNIST",
            "source": dataset.source,
            "licence": "MIT, (c) Zalando SE",
            "train_images": train_images,
            "test_images": test_images,
        },
        "class_names": list(dataset.class_names),
        "preprocessing": dict(data.PREPROCESSING, input_size=config.input_size, channels=config.channels),
        "epochs": epochs,
        "training": {
            "epochs_completed": epochs_completed,
            "steps_completed": steps_completed,
            "stopped_early": stopped,
            "limit": limit,
            "batch_size": batch_size,
            "optimizer": "Adam",
            "learning_rate": learning_rate,
            "schedule": "cosine decay to 0",
            "augmentation": "none",
            "seed": seed,
            "history": [r._asdict() for r in history],
        },
        "training_seconds": round(seconds, 1),
        "test_accuracy": test_accuracy,
        "test_images": test_images,
        "weights": WEIGHTS_NAME,
    }


def save_checkpoint(model, manifest: dict, out_dir: Path | str) -> Path:
    """Write `model.weights.h5` and `manifest.json` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(out / WEIGHTS_NAME)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def evaluate(path: Path | str, limit: int | None = None, *, data_dir: Path | str | None = None) -> dict:
    """Accuracy of the checkpoint at `path` on the Fashion-MNIST test set (the first `limit`
    images when given): {"accuracy": float, "n": int}."""
    from .checkpoints import load_checkpoint_model

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be a whole number of at least 1, or None. Received: limit={limit!r}")
    checkpoint = read_checkpoint(path)
    if checkpoint.manifest.get("task", TASK) != TASK:
        raise ValueError(f"Checkpoint {checkpoint.path} was trained for task {checkpoint.manifest['task']!r}, "
                         f"not {TASK!r}; evaluate only knows {TASK!r}.")
    model = load_checkpoint_model(checkpoint)
    images, labels = data.load_fashion_mnist(data_dir).test
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return {"accuracy": accuracy_on(model, checkpoint.config, images, labels), "n": int(len(labels))}
