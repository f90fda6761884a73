"""The experiment grid on a Ray cluster: every unfinished run becomes one Ray task.

`run_grid_ray` is what `python -m shufflenet experiment GRID --ray ADDRESS` calls. ADDRESS is
`local` (start a Ray instance inside this process, with this machine's CPUs), `auto` (join the
cluster this machine belongs to, e.g. after `ray start --head`) or a cluster address
(`HOST:PORT`, or `ray://HOST:PORT` for Ray Client).

Workers need no shared filesystem. The driver sends the four Fashion-MNIST files through Ray's
object store once; a task trains in a temporary folder on its worker and returns the run's
summary and the bytes of its folder (checkpoint, manifest, TensorBoard events). Only the
driver writes to `out`, with the same atomic steps as the local pool: a partial folder,
`result.json` last, one rename. A run already finished on disk is never written again.

Faults: a worker process or node that dies mid-run makes Ray run the task again (`max_retries`);
an error raised by the training itself (bad data, out of memory) is not retried, it is reported
by the run's name and the grid goes on. A killed driver resumes with the same command: what is
on disk is finished, everything else is trained again.

Ray is optional: it is imported only here, and only when `--ray` is given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import data
from .experiment import (
    RECIPE,
    RESULT_NAME,
    ExperimentError,
    Run,
    _write_json_atomic,
    check_out_dir,
    finished_runs,
    read_run,
    write_results,
)

#: How often Ray runs a task again after its worker process or node died.
TASK_RETRIES = 3
#: The environment of every worker: quiet TensorFlow with oneDNN, as the local pool's children.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExperimentError("--ray needs the `ray` package: pip install -r requirements-dev.txt "
                              "(or run without --ray to use local processes).") from None
    return ray


def connect(address: str):
    """Start or join Ray for `address` ("local", "auto" or a cluster address); returns the module."""
    ray = _import_ray()
    if not isinstance(address, str) or not address.strip():
        raise ExperimentError("--ray needs an address: local, auto, or a cluster address such as 127.0.0.1:6379.")
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": dict(WORKER_ENV)}, "log_to_driver": False,
                              "logging_level": "ERROR"}
    if address == "local":
        kwargs.update(include_dashboard=False, num_cpus=os.cpu_count() or 1)
    else:
        _probe(address)
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ExperimentError(f"Cannot reach a Ray cluster at {address!r}: {' '.join(str(exc).split())[:300]}. "
                              "Start one with `ray start --head`, or use --ray local.") from None
    return ray


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when a HOST:PORT address does not answer: Ray itself would wait minutes."""
    import socket

    host_port = address.removeprefix("ray://")
    if address == "auto" or ":" not in host_port:
        return
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"Cannot reach a Ray cluster at {address!r}: {exc}. Start one with "
                              "`ray start --head`, or use --ray local.") from None


def dataset_files(data_dir: str | None) -> dict[str, bytes]:
    """The four Fashion-MNIST files the driver would read, as bytes (they are sent to workers)."""
    data.load_fashion_mnist(data_dir, download=False)  # a missing or corrupt file fails here, in one line
    for _where, folder in data.search_locations(data_dir):
        if all((folder / name).is_file() for name in data.FASHION_MNIST_FILES.values()):
            return {name: (folder / name).read_bytes() for name in data.FASHION_MNIST_FILES.values()}
    raise ExperimentError("Fashion-MNIST was read, but not from a folder of files that can be sent to workers.")


_WORKER_DATA: dict[str, str] = {}  # digest of the dataset files -> the folder they were unpacked into


def _unpack_dataset(files: dict[str, bytes]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    key = digest.hexdigest()
    if key not in _WORKER_DATA:
        folder = tempfile.mkdtemp(prefix="shufflenet-fmnist-")
        for name, content in files.items():
            Path(folder, name).write_bytes(content)
        _WORKER_DATA.clear()
        _WORKER_DATA[key] = folder
    return _WORKER_DATA[key]


def train_remote(run: Run, recipe: dict, threads: int, files: dict[str, bytes]) -> dict:
    """The body of one Ray task: train `run` in a temporary folder; return its summary and files."""
    from .experiment import train_into

    data_dir = _unpack_dataset(files)
    with tempfile.TemporaryDirectory(prefix=f"shufflenet-{run.name}-") as tmp:
        folder = Path(tmp) / run.name
        summary = train_into(run, folder, recipe, threads, data_dir)
        payload = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return {"summary": summary, "files": payload, "node": os.uname().nodename, "pid": os.getpid()}


def store(out: Path, name: str, files: dict[str, bytes]) -> dict | None:
    """Write a returned run into `out/name` atomically (result.json last); None, and nothing
    written, when that run is already finished on disk."""
    folder = out / name
    if read_run(folder) is not None:
        return None
    if RESULT_NAME not in files:
        raise ExperimentError(f"Run {name} came back without its {RESULT_NAME}.")
    partial = out / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for rel, content in files.items():
        if rel == RESULT_NAME:
            continue
        target = partial / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ExperimentError(f"Run {name} returned a file outside its folder: {rel!r}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    partial.mkdir(parents=True, exist_ok=True)
    import json

    _write_json_atomic(partial / RESULT_NAME, json.loads(files[RESULT_NAME]))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return read_run(folder)


def run_grid_ray(address: str, runs: list[Run], out: Path | str, *, grid: str, recipe: dict | None = None,
                 threads: int = 1,
                 data_dir: str | None = None, on_event: Callable[[str, dict], None] | None = None,
                 poll_s: float = 0.5) -> dict:
    """`experiment.run_grid` on Ray: train every unfinished run of `runs` as Ray tasks, at most as many at once as the
    cluster has CPUs for (`threads` each); write each result as it arrives. Returns the summary."""
    emit = on_event or (lambda kind, info: None)
    recipe = dict(RECIPE if recipe is None else recipe)
    out = check_out_dir(out)
    files = dataset_files(data_dir)
    ray = connect(address)
    try:
        resources = ray.cluster_resources()
        gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        slots = max(1, int(resources.get("CPU", 1) // threads))
        if gpus:
            slots = min(slots, int(resources["GPU"]))
        task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=TASK_RETRIES,
                          retry_exceptions=False)(train_remote)
        files_ref = ray.put(files)
        done = finished_runs(out)
        todo = [r for r in runs if r.name not in done]
        where = f"ray at {address}: {int(resources.get('CPU', 0))} CPUs" + (
            f", {int(resources['GPU'])} GPUs" if gpus else "")
        emit("start", {"total": len(runs), "finished": len(runs) - len(todo), "todo": len(todo),
                       "slots": slots, "where": where})
        started = time.perf_counter()
        pending: dict[Any, Run] = {}
        failed: dict[str, str] = {}
        while todo or pending:
            while todo and len(pending) < slots:
                run = todo.pop(0)
                pending[task.remote(run, recipe, threads, files_ref)] = run
                emit("started", {"name": run.name, "running": len(pending), "left": len(todo)})
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            for ref in ready:
                run = pending.pop(ref)
                try:
                    reply = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - every way a task can fail ends in its report
                    cause = getattr(exc, "cause", None) or exc
                    why = f"{type(cause).__name__}: {' '.join(str(cause).split())[:500]}"
                    failed[run.name] = why
                    (out / f".{run.name}.error").write_text(why)
                    emit("failed", {"name": run.name, "error": why, "running": len(pending), "left": len(todo)})
                    continue
                result = store(out, run.name, reply["files"])
                if result is None:
                    continue
                (out / f".{run.name}.error").unlink(missing_ok=True)
                done[run.name] = result
                write_results(out, done, recipe, grid)
                emit("finished", {"name": run.name, "result": result, "done": sum(r.name in done for r in runs),
                                  "total": len(runs),
                                  "running": len(pending), "left": len(todo), "node": reply["node"]})
        summary = write_results(out, done, recipe, grid)
        emit("done", {"seconds": time.perf_counter() - started, "runs": len(done), "failed": failed})
        return summary
    finally:
        ray.shutdown()
