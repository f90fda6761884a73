"""Training in a background thread, for interactive front ends.

A `TrainingJob` runs `training.train` in its own thread and records every batch, so a UI can
redraw live charts from `snapshot()` while the user keeps working, and `stop()` ends training
after the current batch (the model trained so far is still evaluated and kept).
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from .config import ShuffleNetConfig


class JobState(NamedTuple):
    status: str  # "running", "stopping", "done", "failed"
    progress: list  # training.BatchProgress, one per batch so far
    epochs: list  # training.EpochResult
    result: Any  # training.TrainResult when done
    error: str | None  # a message for people when failed


class TrainingJob:
    """`TrainingJob(config, epochs=1, limit=3000).start()`; then poll `snapshot()`."""

    def __init__(self, config: ShuffleNetConfig, epochs: int = 1, limit: int | None = 3000, **train_kwargs):
        from .training import check_task_config

        check_task_config(config)  # fail in the caller's thread, with the message
        self.config = config
        self.epochs = epochs
        self.limit = limit
        self.train_kwargs = dict(train_kwargs)
        self.started_at: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress: list = []
        self._epochs: list = []
        self._result = None
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"train-{config.label}", daemon=True)

    def start(self) -> TrainingJob:
        self.started_at = time.time()
        self._thread.start()
        return self

    def _run(self) -> None:
        from .training import train

        def on_batch(p):
            with self._lock:
                self._progress.append(p)

        def on_epoch(e):
            with self._lock:
                self._epochs.append(e)

        try:
            result = train(self.config, self.epochs, limit=self.limit, on_batch=on_batch, on_epoch=on_epoch,
                           stop=self._stop, **self.train_kwargs)
        except Exception as exc:  # reported to the user through snapshot().error
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._result = result

    def stop(self) -> None:
        """Ask training to end after the current batch."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobState:
        with self._lock:
            if self._error is not None:
                status = "failed"
            elif self._result is not None:
                status = "done"
            elif self._stop.is_set():
                status = "stopping"
            else:
                status = "running"
            return JobState(status, list(self._progress), list(self._epochs), self._result, self._error)
