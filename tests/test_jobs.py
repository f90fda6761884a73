import pytest

from shufflenet import ShuffleNetConfig
from shufflenet.jobs import TrainingJob

TINY = ShuffleNetConfig(groups=2, blocks=(1, 1, 1), scale=0.25, input_size=32, channels=1, num_classes=10)


def test_job_trains_in_background_and_reports_every_batch():
    job = TrainingJob(TINY, epochs=1, limit=256, batch_size=64, eval_limit=100, record_subset=False).start()
    assert job.join(timeout=300)
    state = job.snapshot()
    assert state.status == "done", state.error
    assert [p.batch for p in state.progress] == [1, 2, 3, 4]
    assert len(state.epochs) == 1
    assert 0.0 <= state.result.manifest["test_accuracy"] <= 1.0
    assert state.result.manifest["test_images"] == 100


def test_stop_ends_after_the_current_batch_and_keeps_the_model():
    job = TrainingJob(TINY, epochs=5, limit=640, batch_size=64, eval_limit=50, record_subset=False)
    job.stop()  # asked before the first batch ends: training ends right after it
    job.start()
    assert job.join(timeout=300)
    state = job.snapshot()
    assert state.status == "done" and state.result.stopped
    assert len(state.progress) == 1
    assert state.result.model is not None
    assert state.result.manifest["training"]["stopped_early"] is True


def test_bad_configuration_fails_in_the_callers_thread():
    with pytest.raises(ValueError, match="num_classes"):
        TrainingJob(ShuffleNetConfig(num_classes=1000, input_size=32))
