"""Train a ShuffleNet on Fashion-MNIST and evaluate checkpoints.

`train` serves the CLI (progress bar) and the app (a per-batch callback for live charts and a
cooperative stop). A checkpoint is a folder with `model.weights.h5` and `manifest.json`
(see `shufflenet.checkpoints`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import data
from .checkpoints import WEIGHTS_NAME, manifest_header, read_checkpoint, save_checkpoint
from .config import ShuffleNetConfig
from .settings import ENGINES
from .tensorboard_log import LOG_DIR_NAME, EpochLog

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
#: Largest batch: the activations of a batch must fit in memory (4,096 images at 64x64 need
#: several GB during a training step).
MAX_BATCH_SIZE = 4096


def check_arguments(epochs=1, limit=None, batch_size=256, learning_rate=2e-3, eval_limit=None, seed=0) -> None:
    """Raise ValueError, naming the argument, what was received and what is allowed, before any
    data is read or model built (the CLI turns it into a one-line usage error)."""
    _whole("epochs", epochs, 1)
    _whole("limit", limit, 1, allow_none=True)
    _whole("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    _whole("eval_limit", eval_limit, 1, allow_none=True)
    _whole("seed", seed, 0, MAX_SEED)
    if (isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
            or not math.isfinite(learning_rate) or not 0 < learning_rate <= 1):
        raise ValueError(f"`learning_rate` must be a number above 0 and at most 1 (e.g. 2e-3). "
                         f"Received: learning_rate={learning_rate!r}")


def check_recipe(warmup=0.0, label_smoothing=0.0) -> None:
    """Raise ValueError unless `warmup` and `label_smoothing` are numbers from 0 to under 1."""
    for name, value in (("warmup", warmup), ("label_smoothing", label_smoothing)):
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not 0 <= value < 1):
            raise ValueError(f"`{name}` must be a number from 0 to under 1 (e.g. 0.1). Received: {name}={value!r}")


def predict_probabilities(model, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Softmax outputs for a preprocessed batch, in inference mode, through the model's one
    compiled `inference.Predictor` (made once per model and kept on it)."""
    from .inference import Predictor

    predictor = getattr(model, "_shufflenet_predictor", None)
    if predictor is None:
        predictor = model._shufflenet_predictor = Predictor(model, warm_up=False)
    out = [predictor(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
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


#: How `train` runs its epochs: "fast" (the training graph in a compiled loop over uint8 data in
#: memory) or "keras-fit" (the model itself through `model.fit`, the earlier path, kept for
#: comparison in bench/train_speed.py and for inputs too large to keep in memory).
#: Augmentation of the fast engine: a random horizontal flip and a random shift of up to this
#: many pixels each way (zeros shifted in), per image.
SHIFT_PIXELS = 2


def onednn_enabled() -> bool:
    """Whether TensorFlow runs with oneDNN (read when TensorFlow is first imported; its default
    on x86 Linux is on). The fast engine's grouped-conv training path needs it."""
    import os

    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip() not in ("0", "false", "False")


def default_group_conv() -> str:
    """The 1x1 group conv training path `train` uses: "conv" with oneDNN, else "split"."""
    return "conv" if onednn_enabled() else "split"


def uint8_inputs(images: np.ndarray, config: ShuffleNetConfig) -> np.ndarray:
    """The model inputs of uint8 28x28 images as uint8 (n, S, S, C): `data.preprocess` times 255,
    rounded (exact at input 32, where preprocessing only pads)."""
    out = np.empty((len(images), config.input_size, config.input_size, config.channels), np.uint8)
    step = _chunk(config)
    for i in range(0, len(images), step):
        out[i:i + step] = np.rint(data.preprocess(images[i:i + step], config) * 255.0).astype(np.uint8)
    return out


def _augment(x, seed):
    """Random horizontal flip and shift (up to SHIFT_PIXELS, zeros shifted in) per image,
    stateless: the same seed gives the same batch."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    flip = tf.random.stateless_uniform([n], seed) < 0.5
    x = tf.where(flip[:, None, None, None], tf.reverse(x, [2]), x)
    shift = tf.random.stateless_uniform([n, 2], seed + 1, -SHIFT_PIXELS, SHIFT_PIXELS + 1, dtype=tf.int32)
    shift = tf.cast(shift, tf.float32)
    ones, zeros = tf.ones([n]), tf.zeros([n])
    transforms = tf.stack([ones, zeros, shift[:, 0], zeros, ones, shift[:, 1], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=transforms, output_shape=tf.shape(x)[1:3],
                                                 fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT")


class _Loop:
    """Per-batch bookkeeping shared by both engines: running means, progress, stop, history."""

    def __init__(self, epochs, steps_per_epoch, on_batch, on_epoch, stop):
        self.epochs, self.batches = epochs, steps_per_epoch
        self.on_batch, self.on_epoch, self.stop = on_batch, on_epoch, stop
        self.start = time.perf_counter()
        self.history: list[EpochResult] = []
        self.epoch, self.steps, self.stopped = 0, 0, False

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batch_end(self, batch: int, loss: float, accuracy: float) -> bool:
        """Record one batch (1-based); True when training should stop."""
        self.steps += 1
        if self.on_batch is not None:
            self.on_batch(BatchProgress(
                epoch=self.epoch, epochs=self.epochs, batch=batch, batches=self.batches,
                step=(self.epoch - 1) * self.batches + batch, steps=self.batches * self.epochs,
                loss=loss, accuracy=accuracy, seconds=time.perf_counter() - self.start))
        if _is_stop_requested(self.stop):
            self.stopped = True
        return self.stopped

    def end_epoch(self, loss: float, accuracy: float) -> None:
        result = EpochResult(self.epoch, loss, accuracy, time.perf_counter() - self.start)
        self.history.append(result)
        if self.on_epoch is not None:
            self.on_epoch(result)


def _fit_keras(model, config, images, labels, batch_size, seed, optimizer, loop: _Loop) -> None:
    """The earlier path: `model.fit` on float32 inputs (in memory when they fit)."""
    import keras

    class _Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            loop.begin_epoch(epoch + 1)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            if loop.batch_end(batch + 1, float(logs.get("loss", float("nan"))),
                              float(logs.get("accuracy", float("nan")))):
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            loop.end_epoch(float(logs.get("loss", float("nan"))), float(logs.get("accuracy", float("nan"))))

    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if len(labels) * config.input_size ** 2 * config.channels * 4 <= IN_MEMORY_BYTES:
        x, y = data.preprocess(images, config), np.asarray(labels, dtype=np.int32)
        model.fit(x, y, batch_size=batch_size, epochs=loop.epochs, shuffle=True, verbose=0, callbacks=[_Progress()])
        del x
    else:
        model.fit(_batches(images, labels, config, batch_size, seed), epochs=loop.epochs, verbose=0,
                  callbacks=[_Progress()])


def make_step(graph, optimizer, dtype: str = "uint8", augment: bool = False, jit_compile: bool = False,
              label_smoothing: float = 0.0):
    """One compiled training step of `graph`: `step(x, y, seed) -> (mean loss, correct)` for a
    batch of any size of uint8 inputs (cast on the fly) or float32 inputs in [0, 1]; traced
    once (a fixed signature, so a short last batch does not trace it again). With
    `label_smoothing` e the target is (1 - e) on the label plus e spread evenly over all classes,
    so the loss is (1 - e) * cross-entropy + e * the mean of -log p over the classes."""
    import keras
    import tensorflow as tf

    variables = graph.trainable_variables
    optimizer.build(variables)  # inside the traced step, building it would triple the trace time
    signature = [tf.TensorSpec((None, *graph.input_shape[1:]), dtype), tf.TensorSpec((None,), tf.int32),
                 tf.TensorSpec((2,), tf.int32)]

    @tf.function(input_signature=signature, jit_compile=jit_compile)
    def step(x, y, seed):
        if x.dtype == tf.uint8:
            x = tf.cast(x, tf.float32) * (1.0 / 255.0)
        if augment:
            x = _augment(x, seed)
        with tf.GradientTape() as tape:
            p = graph(x, training=True)
            loss = keras.losses.sparse_categorical_crossentropy(y, p)
            if label_smoothing:
                spread = -tf.reduce_mean(tf.math.log(tf.clip_by_value(p, 1e-7, 1.0)), axis=-1)
                loss = (1.0 - label_smoothing) * loss + label_smoothing * spread
            loss = tf.reduce_mean(loss)
        optimizer.apply(tape.gradient(loss, variables), variables)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, -1, output_type=tf.int32), y), tf.float32))
        return loss, correct

    return step


def _fit_fast(graph, inputs_u8: np.ndarray, labels, batch_size, seed, augment: bool, optimizer, loop: _Loop,
              label_smoothing: float = 0.0) -> None:
    """The training graph in a compiled step over uint8 inputs held in memory, cast on the fly."""
    import tensorflow as tf

    x_all = tf.constant(inputs_u8)
    y_all = tf.constant(np.asarray(labels, dtype=np.int32))
    step = make_step(graph, optimizer, dtype="uint8", augment=augment, label_smoothing=label_smoothing)
    rng = np.random.default_rng(seed)
    n = len(labels)
    for epoch in range(1, loop.epochs + 1):
        loop.begin_epoch(epoch)
        order = rng.permutation(n).astype(np.int32)
        loss_sum = correct_sum = seen = 0.0
        for b, i in enumerate(range(0, n, batch_size), start=1):
            index = tf.constant(order[i:i + batch_size])
            loss, correct = step(tf.gather(x_all, index), tf.gather(y_all, index),
                                 tf.constant([seed, loop.steps], tf.int32))
            k = int(index.shape[0])
            loss_sum, correct_sum, seen = loss_sum + float(loss) * k, correct_sum + float(correct), seen + k
            if loop.batch_end(b, loss_sum / seen, correct_sum / seen):
                break
        loop.end_epoch(loss_sum / seen, correct_sum / seen)
        if loop.stopped:
            return


#: Images whose batch statistics replace the BN moving averages after fast training.
RECALIBRATION_IMAGES = 2048


def recalibrate_batchnorm(model, inputs_u8: np.ndarray, batch_size: int = 512) -> int:
    """Set every BN layer's moving mean and variance to the average of its batch statistics over
    `inputs_u8` (uint8 model inputs) with the final weights ("precise BN"). The moving averages of
    a short run trail weights that changed quickly: after one epoch on 10,000 images a model
    scored 9 % with them and 60 % after this. Returns the number of images used."""
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in bns]
    used = 0
    try:
        for i, start in enumerate(range(0, len(inputs_u8), batch_size)):
            for layer in bns:
                layer.momentum = i / (i + 1)  # a running mean of the batches' statistics
            batch = inputs_u8[start:start + batch_size].astype(np.float32) * np.float32(1 / 255)
            model(batch, training=True)
            used += len(batch)
    finally:
        for layer, m in zip(bns, momenta):
            layer.momentum = m
    return used


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
    engine: str = "fast",
    augment: bool = False,
    group_conv: str | None = None,
    log_dir: Path | str | None = None,
    warmup: float = 0.0,
    label_smoothing: float = 0.0,
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
        learning_rate: Adam's initial rate, decayed by a cosine to 0 over the run (the peak rate
            when `warmup` is given).
        eval_limit: evaluate on the first `eval_limit` test images (None: all 10,000).
        record_subset: also record the accuracy on the first `SUBSET_SIZE` test images.
        data_dir: Fashion-MNIST folder (see `data.load_fashion_mnist` for the search order).
        seed: seeds weights initialisation, shuffling and augmentation.
        engine: "fast" or "keras-fit" (see `ENGINES`); "fast" falls back to "keras-fit" when the
            uint8 inputs would take more than `IN_MEMORY_BYTES`.
        augment: random flips and shifts (fast engine only; see `_augment`).
        group_conv: the 1x1 group conv training path of the fast engine (default
            `default_group_conv()`).
        log_dir: TensorBoard event files go there (see `tensorboard_log`); by default into
            `out_dir/tensorboard` when `out_dir` is given, and nowhere otherwise.
        warmup: the fraction of the run's steps (0 to under 1) over which the rate rises linearly
            from 0 to `learning_rate`, before the cosine decay over the rest; 0: no warm-up.
        label_smoothing: from 0 to under 1 (fast engine only; see `make_step`); 0: plain
            cross-entropy.
    """
    check_task_config(config)
    check_arguments(epochs, limit, batch_size, learning_rate, eval_limit, seed)
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {', '.join(ENGINES)}. Received: engine={engine!r}")
    if augment and engine != "fast":
        raise ValueError("`augment` needs engine='fast'.")
    check_recipe(warmup, label_smoothing)
    if label_smoothing and engine != "fast":
        raise ValueError("`label_smoothing` needs engine='fast'.")
    dataset = data.load_fashion_mnist(data_dir)  # a bad or missing file fails before TensorFlow loads

    import keras

    from .model import build_model, copy_weights, training_graph

    train_images, train_labels = dataset.train
    if limit is not None:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
    if engine == "fast" and len(train_labels) * config.input_size ** 2 * config.channels > IN_MEMORY_BYTES:
        engine = "keras-fit"
    group_conv = (group_conv or default_group_conv()) if engine == "fast" else None

    steps_per_epoch = -(-len(train_labels) // batch_size)
    total_steps = steps_per_epoch * epochs
    warmup_steps = min(round(warmup * total_steps), total_steps - 1)  # at least one step of decay
    if warmup_steps:
        schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total_steps - warmup_steps,
                                                          warmup_target=learning_rate, warmup_steps=warmup_steps)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    optimizer = keras.optimizers.Adam(schedule)
    with _SEED_LOCK:  # the seeds are process-wide: another thread's run must not draw from ours
        keras.utils.set_random_seed(seed)
        model = build_model(config)
        graph = None
        if engine == "fast":
            graph = training_graph(config, group_conv=group_conv)
            copy_weights(model, graph)

    if log_dir is None and out_dir is not None:
        log_dir = Path(out_dir) / LOG_DIR_NAME
    log = EpochLog(log_dir) if log_dir is not None else None

    def epoch_done(result: EpochResult) -> None:
        if log is not None:  # the rate the schedule reached at the epoch's last step
            log.epoch(result.epoch, result.loss, result.accuracy, float(schedule(loop.steps)))
        if on_epoch is not None:
            on_epoch(result)

    loop = _Loop(epochs, steps_per_epoch, on_batch, epoch_done, stop)
    try:
        if engine == "fast":
            inputs = uint8_inputs(train_images, config)
            _fit_fast(graph, inputs, train_labels, batch_size, seed, augment, optimizer, loop, label_smoothing)
            order = np.random.default_rng(seed + 1).permutation(len(inputs))[:RECALIBRATION_IMAGES]
            recalibrated = recalibrate_batchnorm(graph, inputs[np.sort(order)])
            del inputs
            copy_weights(graph, model)
        else:
            _fit_keras(model, config, train_images, train_labels, batch_size, seed, optimizer, loop)
    except BaseException:
        if log is not None:
            log.close()
        raise
    seconds = time.perf_counter() - loop.start
    history, state = loop.history, {"stopped": loop.stopped, "steps": loop.steps}
    if engine != "fast":
        recalibrated = 0

    test_images, test_labels = dataset.test
    if eval_limit is not None:
        test_images, test_labels = test_images[:eval_limit], test_labels[:eval_limit]
    test_accuracy = accuracy_on(model, config, test_images, test_labels)
    if log is not None:
        log.test(len(history), test_accuracy)
        log.close()
    manifest = build_manifest(
        config, dataset=dataset, epochs=epochs, epochs_completed=len(history), limit=limit,
        train_images=len(train_labels), batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        seconds=seconds, stopped=state["stopped"], steps_completed=state["steps"], test_accuracy=test_accuracy,
        test_images=len(test_labels), history=history, engine=engine, augment=augment, group_conv=group_conv,
        recalibrated=recalibrated,
    )
    if warmup_steps:
        manifest["training"]["schedule"] = f"linear warm-up over {warmup_steps} steps, then cosine decay to 0"
    if label_smoothing:
        manifest["training"]["label_smoothing"] = label_smoothing
    if record_subset:
        n = min(SUBSET_SIZE, len(dataset.test.labels))
        if eval_limit is not None and eval_limit == n:
            manifest["subset_accuracy"] = {"n": n, "accuracy": test_accuracy}
        else:
            acc = accuracy_on(model, config, dataset.test.images[:n], dataset.test.labels[:n])
            manifest["subset_accuracy"] = {"n": n, "accuracy": acc}
    if log is not None:  # beside the checkpoint: relative, so the folder can move
        inside = out_dir is not None and Path(log_dir).resolve().is_relative_to(Path(out_dir).resolve())
        manifest["tensorboard"] = str(Path(log_dir).resolve().relative_to(Path(out_dir).resolve())) if inside \
            else str(log_dir)
    out = None
    if out_dir is not None:
        out = save_checkpoint(model, manifest, out_dir)
    return TrainResult(model, manifest, out, state["stopped"])


def build_manifest(config: ShuffleNetConfig, *, dataset: data.FashionMNIST, epochs: int, epochs_completed: int,
                   limit: int | None, train_images: int, batch_size: int, learning_rate: float, seed: int,
                   seconds: float, stopped: bool, steps_completed: int, test_accuracy: float, test_images: int,
                   history: list[EpochResult], engine: str = "fast", augment: bool = False,
                   group_conv: str | None = None, recalibrated: int = 0) -> dict:
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
            "augmentation": (f"random horizontal flip, random shift of up to {SHIFT_PIXELS} pixels"
                             if augment else "none"),
            "engine": engine,
            "group_conv_training": group_conv,
            "batchnorm_statistics": (f"recomputed on {recalibrated} training images after training" if recalibrated
                                     else "moving averages of training"),
            "seed": seed,
            "history": [r._asdict() for r in history],
        },
        "training_seconds": round(seconds, 1),
        "test_accuracy": test_accuracy,
        "test_images": test_images,
        "weights": WEIGHTS_NAME,
    }


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
    return {"accuracy": accuracy_on(model, checkpoint.config, images, labels), "n": len(labels)}
