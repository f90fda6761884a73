"""Training in a separate process, for interactive front ends.

A `TrainingJob` runs `training.train` in its own process (multiprocessing, spawn start method),
so the training never competes with the front end for the GIL: a web server that collects
garbage after every page update would otherwise starve a training thread (measured: a 500-image
job took 150-300 s in a thread with the page open, 32 s on its own). Progress comes back over
a queue, every batch; `stop()` asks the child to end after the current batch (the model trained
so far is still evaluated and saved). The trained model is saved as a checkpoint folder that
`result.load_model()` reads back.

No orphans: the child stops itself when its parent dies, and the job stops it when nobody has
asked for a `snapshot()` for `abandon_after` seconds (the page that polled it was closed) or
when the job object is garbage-collected. At most `MAX_RUNNING` jobs run at once per process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, NamedTuple

from .config import ShuffleNetConfig

#: Trainings one server runs at once (each wants the machine's cores).
MAX_RUNNING = 1
#: Environment variable that overrides `ABANDON_AFTER_S` for a server (tests use a few seconds).
ABANDON_ENV = "SHUFFLENET_TRAINING_ABANDON_S"


def _abandon_after() -> float:
    """`ABANDON_ENV` as seconds (more than 0), else 60; a bad value is ignored with a warning."""
    text = os.environ.get(ABANDON_ENV, "").strip()
    if text:
        try:
            value = float(text)
            if value > 0 and value != float("inf"):
                return value
        except ValueError:
            pass
        import warnings

        warnings.warn(f"{ABANDON_ENV}={text!r} is not a number of seconds above 0; using 60 s.", stacklevel=2)
    return 60.0


#: A job nobody has looked at for this long is stopped (its page is gone).
ABANDON_AFTER_S = _abandon_after()
#: TensorFlow threads of a training process.
THREADS = 2

_running: weakref.WeakSet = weakref.WeakSet()
_running_lock = threading.Lock()


class JobState(NamedTuple):
    status: str  # "starting", "running", "stopping", "done", "failed"
    progress: list  # training.BatchProgress, one per batch so far
    epochs: list  # training.EpochResult
    result: Any  # JobResult when done
    error: str | None  # a message for people when failed


class JobResult(NamedTuple):
    manifest: dict
    out_dir: Path
    stopped: bool  # True when the stop request ended training early

    def load_model(self):
        """The trained Keras model, read from the checkpoint the job saved."""
        from .checkpoints import load_checkpoint_model

        return load_checkpoint_model(self.out_dir)


def phase_seconds(times: dict[str, float], progress: list, manifest: dict | None = None) -> dict[str, float]:
    """Seconds per phase of a job, from the wall-clock marks `times` (start, child_started,
    tensorflow_imported, first_batch, train_returned, result_received), the batches so far and,
    once done, the manifest; a phase whose marks have not arrived yet is left out.

    spawn: start() until the child runs; tensorflow_import: importing TensorFlow and setting its
    threads; data_and_model: from there to the training loop's start (the dataset read, the model
    and the training graph built); first_batch: the loop's first batch (tracing the step, the uint8
    inputs); batches: the other batches; batchnorm_and_copy: after the last batch until the loop's
    clock stops (batch-norm recalibration, copying the weights back); evaluate_and_save: scoring on
    the test images and writing the checkpoint; result_message: the result reaching the parent;
    total: start() until the parent has the result."""
    out: dict[str, float] = {}

    def span(name, a, b):
        if a in times and b in times:
            out[name] = times[b] - times[a]

    span("spawn", "start", "child_started")
    span("tensorflow_import", "child_started", "tensorflow_imported")
    first = progress[0] if progress else None
    if first is not None and "first_batch" in times:
        loop_start = times["first_batch"] - first.seconds
        if "tensorflow_imported" in times:
            out["data_and_model"] = loop_start - times["tensorflow_imported"]
        out["first_batch"] = first.seconds
        out["batches"] = progress[-1].seconds - first.seconds
        if manifest is not None:
            out["batchnorm_and_copy"] = manifest["training_seconds"] - progress[-1].seconds
            if "train_returned" in times:
                out["evaluate_and_save"] = times["train_returned"] - loop_start - manifest["training_seconds"]
    span("result_message", "train_returned", "result_received")
    span("total", "start", "result_received")
    return {k: round(v, 2) for k, v in out.items()}


class BusyError(RuntimeError):
    """Another training is running on this server; the message says to wait."""


def _child(config_dict: dict, epochs: int, limit, train_kwargs: dict, out_dir: str, queue, stop, parent: int) -> None:
    """The training process: train, report every batch, save, and end. Wall-clock times of its
    phases go on the queue too (see `TrainingJob.timings`)."""

    def mark(name: str) -> None:
        queue.put(("time", (name, time.time())))

    mark("child_started")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from . import training

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    config = ShuffleNetConfig.from_dict(config_dict)
    mark("tensorflow_imported")

    def should_stop() -> bool:
        return stop.is_set() or os.getppid() != parent  # parent gone: nobody will read the result

    def on_batch(p) -> None:
        if p.step == 1:
            mark("first_batch")
        queue.put(("batch", tuple(p)))

    try:
        result = training.train(config, epochs, limit=limit, out_dir=out_dir, stop=should_stop, on_batch=on_batch,
                                on_epoch=lambda e: queue.put(("epoch", tuple(e))), **train_kwargs)
    except Exception as exc:  # reported to the user through snapshot().error
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))
        return
    mark("train_returned")
    queue.put(("done", (result.manifest, result.stopped)))


class TrainingJob:
    """`TrainingJob(config, epochs=1, limit=3000).start()`; then poll `snapshot()`."""

    def __init__(self, config: ShuffleNetConfig, epochs: int = 1, limit: int | None = 3000,
                 abandon_after: float | None = None, **train_kwargs):
        from .training import check_arguments, check_recipe, check_task_config

        check_task_config(config)  # fail in the caller's thread, with the message
        check_arguments(epochs, limit, train_kwargs.get("batch_size", 256), train_kwargs.get("learning_rate", 2e-3),
                        train_kwargs.get("eval_limit"), train_kwargs.get("seed", 0))
        check_recipe(train_kwargs.get("warmup", 0.0), train_kwargs.get("label_smoothing", 0.0))
        self.config, self.epochs, self.limit = config, epochs, limit
        self.train_kwargs = dict(train_kwargs)
        self.abandon_after = ABANDON_AFTER_S if abandon_after is None else abandon_after
        self._ctx = mp.get_context("spawn")
        self._queue = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._lock = threading.Lock()
        self._progress: list = []
        self._epochs: list = []
        self._result: JobResult | None = None
        self._error: str | None = None
        self._times: dict[str, float] = {}
        self._out = Path(tempfile.mkdtemp(prefix="shufflenet-training-"))
        self._process = None
        self._seen = time.monotonic()
        self._reader: threading.Thread | None = None
        self._finalizer = weakref.finalize(self, TrainingJob._cleanup, self._stop, self._holder)

    @property
    def tensorboard_dir(self) -> Path:
        """Where the training writes its TensorBoard events (`tensorboard --logdir` it), while
        the job's temporary folder lives."""
        from .tensorboard_log import LOG_DIR_NAME

        return self._out / LOG_DIR_NAME

    # The process is kept in a one-item list so that the finalizer can stop it without
    # holding the job itself alive.
    @property
    def _holder(self) -> list:
        if not hasattr(self, "_holder_list"):
            self._holder_list: list = []
        return self._holder_list

    @staticmethod
    def _cleanup(stop, holder) -> None:
        stop.set()
        for process in holder:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)

    def start(self) -> TrainingJob:
        """Start the training process; `BusyError` when `MAX_RUNNING` jobs already run."""
        from .training import ENGINES  # noqa: F401  (fails here, not in the child, if the module is broken)

        with _running_lock:
            alive = [j for j in _running if j._process is not None and j._process.is_alive()]
            if len(alive) >= MAX_RUNNING:
                raise BusyError(f"{len(alive)} training(s) already run on this server, the most it runs at once. "
                                "Try again when it has finished.")
            env = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)  # read by the spawned child when it imports TensorFlow
            started = time.time()
            try:
                self._process = self._ctx.Process(
                    target=_child, name=f"train-{self.config.label}", daemon=True,
                    args=(self.config.to_dict(), self.epochs, self.limit, self.train_kwargs, str(self._out),
                          self._queue, self._stop, os.getpid()))
                self._process.start()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            self._holder.append(self._process)
            _running.add(self)
        self._times["start"] = started
        self._seen = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="train-progress", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        from .training import BatchProgress, EpochResult

        while True:
            # Checked on every message too: a fast training reports batches more often than the
            # timeout below, and was never found abandoned while it only was checked on a timeout.
            if time.monotonic() - self._seen > self.abandon_after:
                self._stop.set()  # nobody is watching: end after the current batch
            try:
                kind, payload = self._queue.get(timeout=0.5)
            except Exception:  # queue.Empty, or the queue closed
                if self._process is not None and not self._process.is_alive() and self._queue.empty():
                    with self._lock:
                        if self._result is None and self._error is None:
                            code = self._process.exitcode
                            self._error = f"the training process ended unexpectedly (exit code {code})"
                    return
                continue
            with self._lock:
                if kind == "time":
                    self._times[payload[0]] = payload[1]
                elif kind == "batch":
                    self._progress.append(BatchProgress(*payload))
                elif kind == "epoch":
                    self._epochs.append(EpochResult(*payload))
                elif kind == "failed":
                    self._error = payload
                elif kind == "done":
                    self._times["result_received"] = time.time()
                    manifest, stopped = payload
                    self._result = JobResult(manifest, self._out, stopped)
            if kind in ("failed", "done"):
                self._process.join(timeout=30)
                return

    def timings(self) -> dict[str, float]:
        """Where the time went so far, in seconds, from `start()` on: the phases the child
        reported (see `phase_seconds`), empty before the child has said anything."""
        with self._lock:
            times, progress = dict(self._times), list(self._progress)
            manifest = self._result.manifest if self._result is not None else None
        return phase_seconds(times, progress, manifest)

    def stop(self) -> None:
        """Ask training to end after the current batch."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the job has finished (or failed); True when it has."""
        if self._reader is None:
            return True
        self._reader.join(timeout)
        return not self._reader.is_alive()

    @property
    def running(self) -> bool:
        return self._process is not None and (self._process.is_alive() or
                                              (self._reader is not None and self._reader.is_alive()))

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def snapshot(self) -> JobState:
        self._seen = time.monotonic()
        with self._lock:
            if self._error is not None:
                status = "failed"
            elif self._result is not None:
                status = "done"
            elif self._stop.is_set():
                status = "stopping"
            elif not self._progress:
                status = "starting"
            else:
                status = "running"
            return JobState(status, list(self._progress), list(self._epochs), self._result, self._error)

    def discard(self) -> None:
        """Stop the job and delete its checkpoint folder (once its model has been loaded)."""
        self.stop()
        self.join(timeout=30)
        shutil.rmtree(self._out, ignore_errors=True)
