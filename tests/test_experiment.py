"""The Table 2 / Table 3 grid: its runs, its results file, resuming, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shufflenet import data, experiment
from shufflenet.experiment import ExperimentError, Run
from shufflenet.settings import quiet_tensorflow_env

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, **quiet_tensorflow_env()}


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shufflenet", *args], capture_output=True, text=True, cwd=ROOT,
                          env=ENV, timeout=timeout)


def _run(groups, scale, shuffle, seed, error):
    return {"groups": groups, "scale": scale, "shuffle": shuffle, "seed": seed, "test_error": error,
            "macs": 1000 * groups, "params": 10 * groups, "training_seconds": 60.0}


def test_grids_hold_every_cell_seed_zero_first():
    t2, t3, both = (experiment.grid_runs(g, 3) for g in ("table2", "table3", "all"))
    assert len(t2) == 30 and len(t3) == 12 and len(both) == 42
    assert {r.cell for r in t2} == {(g, s, True) for g in (1, 2, 3, 4, 8) for s in (0.25, 0.5)}
    assert {r.cell for r in t3} == {(g, s, False) for g in (3, 8) for s in (0.25, 0.5)}
    assert [r.seed for r in both[:14]] == [0] * 14 and both[-1].seed == 2
    assert Run(8, 0.25, False, 2).name == "g8_0.25x_noshuffle_seed2"
    assert Run(3, 0.5, False, 0).config().shuffle is False and Run(3, 0.5, True, 0).config().input_size == 32
    for bad in (-1, 0, 21, True, 1.5):
        with pytest.raises(ExperimentError, match="`seeds` must be a whole number from 1 to 20"):
            experiment.grid_runs("table2", bad)
    with pytest.raises(ExperimentError, match="Unknown grid 'table9'"):
        experiment.grid_runs("table9", 3)


def test_summary_gives_every_seed_mean_and_sample_std():
    runs = [_run(3, 0.5, True, 0, 0.10), _run(3, 0.5, True, 1, 0.12), _run(3, 0.5, True, 2, 0.14),
            _run(8, 0.5, True, 0, 0.11)]
    cells = experiment.summarize(runs)
    c3 = next(c for c in cells if c["groups"] == 3)
    assert c3["errors"] == [0.10, 0.12, 0.14] and c3["seeds"] == [0, 1, 2]
    assert c3["mean_error"] == pytest.approx(0.12) and c3["std_error"] == pytest.approx(0.02)
    assert next(c for c in cells if c["groups"] == 8)["std_error"] is None  # one seed: no std


def test_difference_says_when_it_is_within_noise():
    a = {"mean_error": 0.10, "std_error": 0.01, "errors": [0] * 3}
    far = {"mean_error": 0.13, "std_error": 0.01, "errors": [0] * 3}
    near = {"mean_error": 0.105, "std_error": 0.01, "errors": [0] * 3}
    assert experiment.difference(a, far)["verdict"] == "b higher"
    assert experiment.difference(far, a)["verdict"] == "b lower"
    assert experiment.difference(a, near)["verdict"] == "within noise"
    assert experiment.difference(a, far)["se"] == pytest.approx(100 * (2 * 0.01**2 / 3) ** 0.5)


@pytest.mark.slow
def test_results_file_round_trips_and_nonsense_is_refused(tmp_path):
    runs = {f"r{i}": _run(g, 0.25, True, i, 0.1 + 0.01 * i) for i, g in enumerate((1, 8))}
    experiment.write_results(tmp_path, runs, experiment.RECIPE, "table2")
    loaded = experiment.load_results(tmp_path / experiment.RESULTS_NAME)
    assert len(loaded["runs"]) == 2 and len(loaded["cells"]) == 2
    text = (tmp_path / experiment.RESULTS_NAME).read_text()
    bad_cases = {
        "not json": ("{", "not valid JSON"),
        "wrong format": (json.dumps({"format": "other"}), "is not a results file"),
        "groups": (text.replace('"groups": 8', '"groups": 5', 1), "`groups` must be one of"),
        "error above 1": (text.replace('"test_error": 0.11', '"test_error": 1.5', 1), "`test_error` must be"),
        "cells edited": (text.replace('"mean_error": 0.1', '"mean_error": 0.5', 1), "does not match its runs"),
        "runs missing": (json.dumps({**json.loads(text), "runs": "all"}), "'runs' must be a JSON list"),
    }
    for name, (content, message) in bad_cases.items():
        (tmp_path / experiment.RESULTS_NAME).write_text(content)
        with pytest.raises(ExperimentError, match=message):
            experiment.load_results(tmp_path / experiment.RESULTS_NAME)
        done = run_cli("experiment", "table2", "--out", str(tmp_path))
        assert done.returncode == 2, (name, done.stderr)
        assert message.split("`")[0].strip(" '") in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_bad_arguments_exit_2_with_one_line(tmp_path):
    cases = [
        (("experiment", "table2", "--seeds", "-1", "--out", str(tmp_path)), "`seeds` must be"),
        (("experiment", "table2", "--out", "/proc/forbidden/runs"), "Cannot write results to /proc/forbidden/runs"),
        (("experiment", "table2", "--workers", "0", "--out", str(tmp_path)), "--workers must be"),
        (("experiment", "table2", "--epochs", "0", "--out", str(tmp_path)), "expected a whole number >= 1"),
        (("experiment", "table5", "--out", str(tmp_path)), "invalid choice: 'table5'"),
    ]
    for args, message in cases:
        done = run_cli(*args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1


def test_corrupt_dataset_is_one_line(tmp_path):
    folder = tmp_path / "fmnist"
    folder.mkdir()
    for name in data.FASHION_MNIST_FILES.values():
        (folder / name).write_bytes(b"not gzip")
    done = run_cli("experiment", "table3", "--out", str(tmp_path / "runs"), "--data", str(folder))
    assert done.returncode == 2 and "Bad dataset file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / experiment.RESULTS_NAME).exists()


def test_missing_dataset_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "search_locations", lambda path=None: [("nowhere", tmp_path / "none")])
    monkeypatch.setattr(data, "_download", lambda: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(data.DatasetNotFoundError, match="Fashion-MNIST was not found"):
        experiment.run_grid("table2", 1, tmp_path / "runs", workers=1)


@pytest.mark.usefixtures("requires_fashion_mnist")
@pytest.mark.slow
def test_interrupted_grid_resumes_without_losing_a_finished_run(tmp_path):
    runs = [Run(1, 0.25, True, 0), Run(2, 0.25, True, 0)]
    recipe = {**experiment.RECIPE, "epochs": 1, "limit": 256, "batch_size": 128}
    events = []

    def interrupt_after_first(kind, info):
        events.append(kind)
        if kind == "finished":
            raise KeyboardInterrupt  # as Ctrl-C would, while the other run waits

    with pytest.raises(KeyboardInterrupt):
        experiment.run_grid("table2", 1, tmp_path, workers=1, recipe=recipe, runs=runs, on_event=interrupt_after_first)
    first = tmp_path / runs[0].name / experiment.RESULT_NAME
    assert first.is_file() and not (tmp_path / runs[1].name).exists()
    partial = experiment.load_results(tmp_path / experiment.RESULTS_NAME)  # readable meanwhile
    assert [r["name"] for r in partial["runs"]] == [runs[0].name]
    stamp = first.stat().st_mtime_ns
    seen = []
    summary = experiment.run_grid("table2", 1, tmp_path, workers=1, recipe=recipe, runs=runs,
                                  on_event=lambda kind, info: seen.append((kind, info)))
    assert first.stat().st_mtime_ns == stamp  # not trained again
    assert seen[0] == ("start", {"total": 2, "finished": 1, "todo": 1})
    assert [i["name"] for k, i in seen if k == "finished"] == [runs[1].name]
    assert len(summary["runs"]) == 2 and (tmp_path / runs[1].name / "model.weights.h5").is_file()
    manifest = json.loads((tmp_path / runs[1].name / "manifest.json").read_text())
    assert manifest["training"]["augmentation"] == ("random horizontal flip, random shift of up to 2 pixels"
                                                    if recipe["augment"] else "none")
