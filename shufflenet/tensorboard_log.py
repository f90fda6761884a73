"""TensorBoard event files for training runs.

Every training run that saves a checkpoint also writes TensorBoard events beside it, in
`<checkpoint>/tensorboard/`: per epoch the training loss, the training accuracy and the learning
rate the schedule had reached, and at the end the test accuracy. Open them with
`tensorboard --logdir <folder>` (a grid's folder shows every run side by side).

`EpochLog` writes (TensorFlow's `tf.summary`, in the training process); `read_scalars` reads a
folder back into plain numbers, for tests and for tools that do not want TensorBoard itself.
"""

from __future__ import annotations

from pathlib import Path

#: The sub-folder of a checkpoint that holds its event files.
LOG_DIR_NAME = "tensorboard"
TAGS = ("epoch/loss", "epoch/accuracy", "epoch/learning_rate", "test/accuracy")


class EpochLog:
    """Write one training run's scalars; `epoch()` after each epoch, `test()` once, `close()`."""

    def __init__(self, log_dir: Path | str):
        import tensorflow as tf

        self._tf = tf
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        with self._writer.as_default():
            for tag, value in values.items():
                self._tf.summary.scalar(tag, float(value), step=step)
        self._writer.flush()  # a run that is killed later still leaves its finished epochs

    def epoch(self, epoch: int, loss: float, accuracy: float, learning_rate: float) -> None:
        self._scalars(epoch, {"epoch/loss": loss, "epoch/accuracy": accuracy, "epoch/learning_rate": learning_rate})

    def test(self, epoch: int, accuracy: float) -> None:
        self._scalars(epoch, {"test/accuracy": accuracy})

    def close(self) -> None:
        self._writer.close()


def read_scalars(log_dir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `log_dir`: tag -> [(step, value), ...] in step order."""
    import tensorflow as tf

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, []).append((int(event.step), number))
    return {tag: sorted(points) for tag, points in out.items()}
