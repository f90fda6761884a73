"""Training jobs for the app: in their own process, every batch reported, stop, no orphans."""

import os
import time

import pytest
from conftest import TINY

from shufflenet import ShuffleNetConfig, jobs, tensorboard_log
from shufflenet.jobs import BusyError, TrainingJob


def _wait_for(predicate, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split()[2] != "Z"


@pytest.mark.slow
def test_job_trains_in_its_own_process_and_reports_every_batch():
    job = TrainingJob(TINY, epochs=1, limit=256, batch_size=64, eval_limit=100, record_subset=False).start()
    assert job.pid is not None and job.pid != os.getpid()
    assert job.join(timeout=300)
    state = job.snapshot()
    assert state.status == "done", state.error
    assert [p.batch for p in state.progress] == [1, 2, 3, 4]
    assert len(state.epochs) == 1
    assert 0.0 <= state.result.manifest["test_accuracy"] <= 1.0
    assert state.result.manifest["test_images"] == 100
    model = state.result.load_model()
    assert model.count_params() > 0 and not _alive(job.pid)
    phases = job.timings()
    assert set(phases) == {"spawn", "tensorflow_import", "data_and_model", "first_batch", "batches",
                           "batchnorm_and_copy", "evaluate_and_save", "result_message", "total"}
    assert all(v >= -0.1 for v in phases.values()), phases  # the training clock is rounded to 0.1 s
    parts = sum(v for k, v in phases.items() if k != "total")
    assert parts == pytest.approx(phases["total"], abs=0.3), phases  # the phases cover the whole job
    logged = tensorboard_log.read_scalars(job.tensorboard_dir)  # the in-app run's TensorBoard events
    assert [v for _, v in logged["epoch/loss"]] == pytest.approx([e.loss for e in state.epochs])
    assert logged["test/accuracy"][-1][1] == pytest.approx(state.result.manifest["test_accuracy"])
    job.discard()
    assert not state.result.out_dir.exists()


@pytest.mark.slow
def test_stop_ends_after_the_current_batch_and_keeps_the_model():
    job = TrainingJob(TINY, epochs=5, limit=640, batch_size=64, eval_limit=50, record_subset=False)
    job.stop()  # asked before the first batch ends: training ends right after it
    job.start()
    assert job.join(timeout=300)
    state = job.snapshot()
    assert state.status == "done" and state.result.stopped
    assert len(state.progress) == 1
    assert state.result.load_model() is not None
    assert state.result.manifest["training"]["stopped_early"] is True


@pytest.mark.slow
def test_a_job_nobody_watches_stops_by_itself_and_leaves_no_process():
    job = TrainingJob(TINY, epochs=20, limit=6400, batch_size=64, eval_limit=50, record_subset=False,
                      abandon_after=3.0).start()
    assert _wait_for(lambda: job.snapshot().progress)  # training is under way; then nobody looks
    pid = job.pid
    assert job.join(timeout=120)
    assert not _alive(pid)
    state = job.snapshot()
    assert state.status == "done" and state.result.stopped


@pytest.mark.slow
def test_one_training_at_a_time_and_the_next_can_start():
    # batches of 1024 take over 0.1 s, much longer than a progress message takes to reach the parent
    first = TrainingJob(TINY, epochs=20, limit=6400, batch_size=1024, eval_limit=50, record_subset=False).start()
    with pytest.raises(BusyError, match="already run on this server"):
        TrainingJob(TINY, epochs=1, limit=256, batch_size=64).start()
    assert _wait_for(lambda: len(first.snapshot().progress) >= 2)  # training is under way
    seen = len(first.snapshot().progress)
    first.stop()
    assert first.join(timeout=300)
    state = first.snapshot()
    assert state.status == "done" and state.result.stopped
    # the batch it was on when stopped, and at most one more that the parent had not read yet
    assert seen <= len(state.progress) <= seen + 2, (seen, len(state.progress))
    assert state.result.manifest["training"]["steps_completed"] == len(state.progress)
    second = TrainingJob(TINY, epochs=1, limit=128, batch_size=64, eval_limit=20, record_subset=False).start()
    assert second.join(timeout=300) and second.snapshot().status == "done"


@pytest.mark.slow
def test_the_cleanup_of_a_collected_job_ends_its_process():
    """What runs when the job object is garbage-collected (its session is gone): the training
    process is asked to stop, and terminated if it does not end within a few seconds."""
    job = TrainingJob(TINY, epochs=20, limit=6400, batch_size=64, eval_limit=50, record_subset=False).start()
    assert _wait_for(lambda: job.snapshot().progress)
    pid = job.pid
    job._finalizer()
    assert not _alive(pid) and not job._finalizer.alive


@pytest.mark.slow
def test_a_failing_training_reports_its_error(tmp_path):
    # an explicit folder that lacks the files falls back to the installed copy, so make one that is bad
    folder = tmp_path / "bad"
    folder.mkdir()
    from shufflenet import data

    for name in data.FASHION_MNIST_FILES.values():
        (folder / name).write_bytes(b"not gzip")
    job = TrainingJob(TINY, epochs=1, limit=64, batch_size=64, data_dir=str(folder)).start()
    assert job.join(timeout=300)
    state = job.snapshot()
    assert state.status == "failed" and "Bad dataset file" in state.error


def test_phase_seconds_from_the_marks_the_child_sends():
    from shufflenet.training import BatchProgress

    times = {"start": 100.0, "child_started": 100.5, "tensorflow_imported": 103.0, "first_batch": 112.0,
             "train_returned": 140.0, "result_received": 140.25}
    progress = [BatchProgress(1, 1, 1, 3, 1, 3, 2.0, 0.1, 8.0), BatchProgress(1, 1, 3, 3, 3, 3, 1.0, 0.5, 30.0)]
    phases = jobs.phase_seconds(times, progress, {"training_seconds": 32.0})
    # the loop started at 112 - 8 = 104 and its clock stopped at 104 + 32 = 136
    assert phases == {"spawn": 0.5, "tensorflow_import": 2.5, "data_and_model": 1.0, "first_batch": 8.0,
                      "batches": 22.0, "batchnorm_and_copy": 2.0, "evaluate_and_save": 4.0, "result_message": 0.25,
                      "total": 40.25}
    assert jobs.phase_seconds({"start": 1.0, "child_started": 1.5}, []) == {"spawn": 0.5}  # still starting


def test_bad_configuration_and_arguments_fail_in_the_callers_thread():
    with pytest.raises(ValueError, match="num_classes"):
        TrainingJob(ShuffleNetConfig(num_classes=1000, input_size=32))
    with pytest.raises(ValueError, match="batch_size"):
        TrainingJob(TINY, batch_size=10**9)
    with pytest.raises(ValueError, match="warmup"):
        TrainingJob(TINY, warmup=2.0)
    assert jobs.MAX_RUNNING == 1
