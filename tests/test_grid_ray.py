"""The experiment grid on a real two-node Ray cluster on loopback (`ray start --head` plus
`ray start --address`, one CPU each): it finishes, it finishes again when a worker process is
killed mid-run, and its results equal a local run with the same seeds."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shufflenet import data, experiment, grid_ray, tensorboard_log
from shufflenet.experiment import ExperimentError

RAY = Path(sys.executable).parent / "ray"
HAVE_DATA = (data.DEBIAN_DIR / data.FASHION_MNIST_FILES["test_labels"]).is_file() or bool(os.environ.get(data.ENV_VAR))
RECIPE = {**experiment.RECIPE, "epochs": 1, "limit": 300}
RUNS = experiment.grid_runs("table3", 1, scales=[0.25])

pytestmark = [
    pytest.mark.skipif(not RAY.exists(), reason="Ray is not installed (pip install -r requirements-dev.txt)"),
    pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST not available offline"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _can_make_network_namespace() -> bool:
    if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        return False
    done = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return done.returncode == 0


class Cluster:
    """Two Ray nodes (`ray start --head --block`, `ray start --address --block`, one CPU each) in a
    network namespace of their own that has only the loopback device, so every byte the
    cluster sends stays on 127.0.0.1 (Ray otherwise talks to this machine's outside address)."""

    def __init__(self, temp: Path):
        self.temp, self.port = temp, _free_port()
        self.address = f"127.0.0.1:{self.port}"
        token = temp / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "3",
                    "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self.holder = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 3600"])
        self.ns = ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net"]
        self.nodes: list[subprocess.Popen] = []

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        """A process inside the cluster's network namespace."""
        return subprocess.Popen([*self.ns, *args], env=self.env, **kwargs)

    def start(self) -> None:
        common = ["--block", "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats",
                  "--object-store-memory", "100000000", "--node-ip-address", "127.0.0.1"]
        logs = open(self.temp / "nodes.log", "w")  # noqa: SIM115 - open while the nodes run
        time.sleep(0.5)  # the holder has brought the loopback device up
        self.nodes.append(self.popen([str(RAY), "start", "--head", "--port", str(self.port), "--include-dashboard",
                                      "false", "--temp-dir", str(self.temp / "ray"), *common],
                                     stdout=logs, stderr=subprocess.STDOUT))
        self._wait_for_nodes(1)
        self.nodes.append(self.popen([str(RAY), "start", "--address", self.address, *common],
                                     stdout=logs, stderr=subprocess.STDOUT))
        self._wait_for_nodes(2)

    def _wait_for_nodes(self, n: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        status = ""
        while time.monotonic() < deadline:
            done = subprocess.run([*self.ns, str(RAY), "status", "--address", self.address], env=self.env,
                                  capture_output=True, text=True, timeout=60)
            status = done.stdout
            active = status.split("Active:")[-1].split("Pending:")[0] if "Active:" in status else ""
            if active.count(" node_") >= n:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {n} nodes in {timeout_s:.0f} s: {status[-500:]}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.terminate()  # `ray start --block` ends the processes of its node on SIGTERM
        for node in self.nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
        # anything of this cluster still alive (a worker that outlived its raylet) goes too
        subprocess.run(["pkill", "-9", "-f", str(self.temp)], capture_output=True)
        self.holder.kill()
        self.holder.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not _can_make_network_namespace():
        pytest.skip("needs root and util-linux's unshare/nsenter, to keep the cluster on loopback")
    c = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _errors(summary: dict) -> dict[str, float]:
    return {r["name"]: r["test_error"] for r in summary["runs"]}


def _grid_cli(cluster: Cluster, out: Path) -> subprocess.Popen:
    """The grid's driver as a user starts it: the 0.25x cells of table3, one seed, a tiny recipe."""
    args = ["experiment", "table3", "--seeds", "1", "--scales", "0.25", "--epochs", str(RECIPE["epochs"]),
            "--limit", str(RECIPE["limit"]), "--out", str(out), "--ray", cluster.address]
    return cluster.popen([sys.executable, "-m", "shufflenet", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)


def _training_workers(cluster: Cluster) -> list[int]:
    """Pids of the cluster's Ray worker processes that run a grid task right now (Ray names the
    process after the task's function while it runs); only processes in the cluster's network
    namespace count, so no other Ray on this machine is touched."""
    found = subprocess.run(["pgrep", "-f", "^ray::train_remote"], capture_output=True, text=True)
    ours = os.readlink(f"/proc/{cluster.holder.pid}/ns/net")
    pids = []
    for pid in map(int, found.stdout.split()):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == ours:
                pids.append(pid)
        except OSError:  # ended meanwhile
            continue
    return pids


@pytest.mark.slow
def test_grid_on_two_nodes_equals_a_local_run(cluster, tmp_path):
    driver = _grid_cli(cluster, tmp_path / "ray")
    output, _ = driver.communicate(timeout=420)
    assert driver.returncode == 0, output
    on_ray = experiment.load_results(tmp_path / "ray" / experiment.RESULTS_NAME)
    assert sorted(_errors(on_ray)) == sorted(r.name for r in RUNS)
    for run in RUNS:  # the driver wrote what the workers returned: checkpoint, manifest, events
        folder = tmp_path / "ray" / run.name
        assert (folder / "model.weights.h5").is_file() and (folder / "manifest.json").is_file()
        assert tensorboard_log.read_scalars(folder / tensorboard_log.LOG_DIR_NAME)["test/accuracy"]
    assert not list((tmp_path / "ray").glob(".*.partial"))

    local = experiment.run_grid("all", 2, tmp_path / "local", workers=2, recipe=RECIPE, runs=RUNS)
    for name, error in _errors(local).items():
        assert _errors(on_ray)[name] == pytest.approx(error, abs=1e-3), name
        ray_loss = json.loads((tmp_path / "ray" / name / "manifest.json").read_text())["training"]["history"]
        local_loss = json.loads((tmp_path / "local" / name / "manifest.json").read_text())["training"]["history"]
        assert [e["loss"] for e in ray_loss] == pytest.approx([e["loss"] for e in local_loss], rel=1e-4)


@pytest.mark.slow
def test_grid_finishes_when_a_worker_is_killed_mid_run(cluster, tmp_path):
    out = tmp_path / "grid"
    driver = _grid_cli(cluster, out)
    deadline = time.monotonic() + 180
    victims: list[int] = []
    while time.monotonic() < deadline and not victims:
        victims = _training_workers(cluster)
        time.sleep(0.2)
    assert victims, "no Ray worker started a training task within 180 s"
    time.sleep(2.0)  # inside the run: TensorFlow imported, training started
    finished_before = experiment.finished_runs(out)
    os.kill(victims[0], signal.SIGKILL)
    output, _ = driver.communicate(timeout=420)
    assert driver.returncode == 0, output
    assert len(finished_before) < len(RUNS)  # the kill really landed before the grid was done
    summary = experiment.load_results(out / experiment.RESULTS_NAME)
    assert sorted(_errors(summary)) == sorted(r.name for r in RUNS), output
    assert " failed: " not in output  # the killed task was run again, not given up
    assert sum(f"{r.name}: test error" in output for r in RUNS) == len(RUNS)
    assert output.count(": test error ") == len(RUNS)  # each result arrived and was written once


def test_store_writes_a_run_once_and_refuses_paths_outside_its_folder(tmp_path):
    summary = {"groups": 1, "scale": 0.25, "shuffle": True, "seed": 0, "test_error": 0.2, "name": "g1_0.25x_seed0"}
    files = {"result.json": json.dumps(summary).encode(), "model.weights.h5": b"w", "tensorboard/events": b"e"}
    stored = grid_ray.store(tmp_path, "g1_0.25x_seed0", files)
    assert stored["test_error"] == 0.2 and (tmp_path / "g1_0.25x_seed0" / "tensorboard" / "events").read_bytes() == b"e"
    stamp = (tmp_path / "g1_0.25x_seed0" / "result.json").stat().st_mtime_ns
    assert grid_ray.store(tmp_path, "g1_0.25x_seed0", {**files, "model.weights.h5": b"other"}) is None
    assert (tmp_path / "g1_0.25x_seed0" / "result.json").stat().st_mtime_ns == stamp
    assert (tmp_path / "g1_0.25x_seed0" / "model.weights.h5").read_bytes() == b"w"
    with pytest.raises(ExperimentError, match="outside its folder"):
        grid_ray.store(tmp_path, "g2_0.25x_seed0", {**files, "../escape": b"x"})
    assert not (tmp_path / "escape").exists()
    with pytest.raises(ExperimentError, match=r"without its result\.json"):
        grid_ray.store(tmp_path, "g4_0.25x_seed0", {"model.weights.h5": b"w"})
    shutil.rmtree(tmp_path / "g1_0.25x_seed0")


def test_bad_ray_address_is_one_clear_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "shufflenet", "experiment", "table3", "--seeds", "1", "--epochs", "1",
                           "--limit", "100", "--out", str(tmp_path), "--ray", f"127.0.0.1:{_free_port()}"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_USAGE_STATS_ENABLED": "0"})
    assert done.returncode == 2, done.stderr
    assert "Cannot reach a Ray cluster at" in done.stderr
    assert not (tmp_path / "g3_0.25x_noshuffle_seed0").exists()
