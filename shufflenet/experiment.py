"""Small-scale counterparts of the paper's Table 2 (error vs groups at two widths) and Table 3
(with vs without channel shuffle), trained on Fashion-MNIST with one fixed recipe.

`run_grid` trains every run of a grid that is not finished yet, several at once in their own
processes, and keeps everything on disk as it goes: a finished run is a folder with its checkpoint
and `result.json`, written last and atomically, and `results.json` summarises what is finished
so far. So a grid can be stopped at any time (Ctrl-C, a kill, a reboot) and resumed with the same
command, and its partial results can be read meanwhile. `summarize` turns runs into cells (mean
and standard deviation of the test error over seeds); `load_results` validates a results file
(the app reads one from `assets/checkpoints/results.json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .config import ALLOWED_GROUPS, ShuffleNetConfig
from .settings import quiet_tensorflow_env, temporary_environ

RESULTS_NAME = "results.json"
RESULT_NAME = "result.json"
RESULTS_FORMAT = "shufflenet-results"

#: The one recipe of every run (chosen so that the training converges; see RESULTS.md).
RECIPE: dict[str, Any] = {
    "task": "fashion-mnist",
    "input_size": 32,
    "channels": 1,
    "epochs": 8,
    "batch_size": 256,
    "optimizer": "Adam",
    "learning_rate": 5e-3,
    "schedule": "cosine decay to 0",
    "augment": False,
    "engine": "fast",
}

#: The grids: the widths and groups of the paper's Tables 2 and 3 that fit this machine.
GRIDS: dict[str, dict[str, tuple]] = {
    "table2": {"groups": (1, 2, 3, 4, 8), "scales": (0.25, 0.5), "shuffle": (True,)},
    "table3": {"groups": (3, 8), "scales": (0.25, 0.5), "shuffle": (False,)},
}
GRIDS["all"] = {"runs": ("table2", "table3")}
MAX_SEEDS = 20


class ExperimentError(ValueError):
    """A grid, an output folder or a results file cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class Run:
    groups: int
    scale: float
    shuffle: bool
    seed: int

    @property
    def name(self) -> str:
        return f"g{self.groups}_{self.scale:g}x{'' if self.shuffle else '_noshuffle'}_seed{self.seed}"

    @property
    def cell(self) -> tuple[int, float, bool]:
        return (self.groups, self.scale, self.shuffle)

    def config(self, recipe: dict = RECIPE) -> ShuffleNetConfig:
        return ShuffleNetConfig(groups=self.groups, scale=self.scale, shuffle=self.shuffle,
                                input_size=recipe["input_size"], channels=recipe["channels"], num_classes=10)


def grid_runs(grid: str, seeds: int, scales: Iterable[float] | None = None) -> list[Run]:
    """Every run of `grid` ("table2", "table3" or "all"), seed 0 of every cell first, so that
    partial results cover every cell early; only the widths in `scales` when given."""
    if grid not in GRIDS:
        raise ExperimentError(f"Unknown grid {grid!r}. Choose one of: {', '.join(GRIDS)}.")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise ExperimentError(f"`seeds` must be a whole number from 1 to {MAX_SEEDS}. Received: seeds={seeds!r}")
    parts = GRIDS[grid].get("runs", (grid,))
    cells = []
    for part in parts:
        g = GRIDS[part]
        cells += [(groups, scale, shuffle)
                  for scale in g["scales"] for groups in g["groups"] for shuffle in g["shuffle"]]
    if scales is not None:
        scales = tuple(scales)
        known = sorted({scale for _, scale, _ in cells})
        unknown = [s for s in scales if s not in known]
        if unknown or not scales:
            raise ExperimentError(f"Grid {grid!r} has the widths {', '.join(f'{s:g}' for s in known)}. "
                                  f"Received: {', '.join(f'{s:g}' for s in scales) or 'none'}.")
        cells = [c for c in cells if c[1] in scales]
    return [Run(groups, scale, shuffle, seed) for seed in range(seeds) for groups, scale, shuffle in cells]


# --- one run ---------------------------------------------------------------------------------------

def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def train_into(run: Run, folder: Path, recipe: dict, threads: int, data_dir: str | None,
               on_epoch: Callable | None = None) -> dict:
    """Train one run in this process into `folder` (checkpoint, TensorBoard events, and
    `result.json` last); return the run's summary. Used by the local pool and by Ray tasks."""
    from . import complexity, training

    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    folder = Path(folder)
    config = run.config(recipe)
    result = training.train(config, recipe["epochs"], limit=recipe.get("limit"), out_dir=folder,
                            batch_size=recipe["batch_size"], learning_rate=recipe["learning_rate"], seed=run.seed,
                            engine=recipe["engine"], augment=recipe["augment"], data_dir=data_dir, on_epoch=on_epoch)
    m = result.manifest
    t = complexity.totals(config)
    summary = {
        **dataclasses.asdict(run), "name": run.name, "test_accuracy": m["test_accuracy"],
        "test_error": 1.0 - m["test_accuracy"], "test_images": m["test_images"], "macs": t["macs"],
        "conv_macs": t["conv_macs"], "params": t["params"], "training_seconds": m["training_seconds"],
        "threads": threads, "config": config.to_dict(),
    }
    _write_json_atomic(folder / RESULT_NAME, summary)
    return summary


def _execute(run: Run, out: str, recipe: dict, threads: int, data_dir: str | None, progress=None) -> dict:
    """Train one run in this process and write its folder (in a child process of `run_grid`)."""
    parent = os.getppid()
    folder = Path(out) / run.name
    partial = Path(out) / f".{run.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)

    def on_epoch(e) -> None:
        if progress is not None:
            progress.put((run.name, e.epoch, recipe["epochs"], e.accuracy, e.seconds))
        if os.getppid() != parent:  # the grid's process is gone: nobody will collect this run
            raise SystemExit(1)

    summary = train_into(run, partial, recipe, threads, data_dir, on_epoch)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return summary


def read_run(folder: Path) -> dict | None:
    """The result of a finished run folder, or None when it is missing or unreadable."""
    try:
        data = json.loads((folder / RESULT_NAME).read_text())
    except (OSError, ValueError):
        return None
    required = {"groups", "scale", "shuffle", "seed", "test_error"}
    return data if isinstance(data, dict) and required <= set(data) else None


def finished_runs(out: Path) -> dict[str, dict]:
    return {p.name: r for p in sorted(Path(out).glob("g*_*x*_seed*")) if p.is_dir() and (r := read_run(p))}


# --- the grid ----------------------------------------------------------------------------------------

def check_out_dir(out: Path | str) -> Path:
    """Create `out` if needed and make sure it can be written; ExperimentError otherwise."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ExperimentError(f"Cannot write results to {out}: {exc.strerror or exc}. Choose a folder you can "
                              "write to with --out.") from None
    existing = out / RESULTS_NAME
    if existing.exists():
        load_results(existing)  # a results file edited into nonsense stops here, before hours of training
    return out


def _child(run: Run, out: str, recipe: dict, threads: int, data_dir: str | None, progress) -> None:
    """A run's process: train it; on failure leave the reason next to the run folder."""
    try:
        _execute(run, out, recipe, threads, data_dir, progress)
    except BaseException as exc:  # a KeyboardInterrupt too: record it, and end with an error code
        (Path(out) / f".{run.name}.error").write_text(f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


def run_grid(grid: str, seeds: int, out: Path | str, *, workers: int = 2, threads: int = 1,
             recipe: dict | None = None, data_dir: str | None = None,
             on_event: Callable[[str, dict], None] | None = None, runs: list[Run] | None = None) -> dict:
    """Train every unfinished run of `grid`, `workers` at once, each in its own process with
    `threads` TensorFlow threads; return the summary (also written to `out/results.json` after
    every finished run). `runs` replaces the grid's runs (a smaller set, e.g. for tests).
    `grid_ray.run_grid_ray` runs them as Ray tasks instead.

    An exception in the caller (Ctrl-C, or `on_event` raising) stops the running processes at
    once; the runs they trained are lost, every finished one is kept."""
    import multiprocessing as mp

    from . import data

    recipe = dict(RECIPE if recipe is None else recipe)
    runs = grid_runs(grid, seeds) if runs is None else list(runs)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ExperimentError(f"`workers` must be a whole number from 1 to 64. Received: workers={workers!r}")
    out = check_out_dir(out)
    data.load_fashion_mnist(data_dir)  # a missing or corrupt dataset fails now, in one line
    emit = on_event or (lambda kind, info: None)
    done = finished_runs(out)
    todo = [r for r in runs if r.name not in done]
    emit("start", {"total": len(runs), "finished": len(runs) - len(todo), "todo": len(todo)})
    started = time.perf_counter()
    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    active: dict[str, tuple] = {}  # name -> (process, run)
    # the spawned processes read these when they import TensorFlow
    with temporary_environ(quiet_tensorflow_env(onednn=True)):
        try:
            while todo or active:
                while todo and len(active) < workers:
                    run = todo.pop(0)
                    (out / f".{run.name}.error").unlink(missing_ok=True)
                    p = ctx.Process(target=_child, args=(run, str(out), recipe, threads, data_dir, progress),
                                    name=f"run-{run.name}", daemon=True)
                    p.start()
                    active[run.name] = (p, run)
                time.sleep(0.5)
                while not progress.empty():
                    name, epoch, epochs, acc, secs = progress.get_nowait()
                    emit("epoch", {"name": name, "epoch": epoch, "epochs": epochs, "accuracy": acc, "seconds": secs})
                for name, (p, _run) in list(active.items()):
                    if p.is_alive():
                        continue
                    del active[name]
                    result = read_run(out / name)
                    if p.exitcode != 0 or result is None:
                        error_file = out / f".{name}.error"
                        why = error_file.read_text() if error_file.exists() else f"exit code {p.exitcode}"
                        emit("failed", {"name": name, "error": why})
                        continue
                    done[name] = result
                    write_results(out, done, recipe, grid)
                    emit("finished", {"name": name, "result": result, "done": sum(r.name in done for r in runs),
                                      "total": len(runs)})
        finally:
            for p, _ in active.values():
                p.terminate()
            for p, _ in active.values():
                p.join(timeout=10)
    summary = write_results(out, done, recipe, grid)
    emit("done", {"seconds": time.perf_counter() - started, "runs": len(done)})
    return summary


# --- results -----------------------------------------------------------------------------------------

def summarize(runs: Iterable[dict]) -> list[dict]:
    """One row per cell (groups, width, shuffle): every seed's error, their mean and sample
    standard deviation (None with one seed), the cell's MACs and params."""
    cells: dict[tuple, list[dict]] = {}
    for r in runs:
        cells.setdefault((r["groups"], r["scale"], r["shuffle"]), []).append(r)
    rows = []
    for (groups, scale, shuffle), members in sorted(cells.items(), key=lambda kv: (kv[0][1], not kv[0][2], kv[0][0])):
        members.sort(key=lambda r: r["seed"])
        errors = [float(r["test_error"]) for r in members]
        rows.append({
            "groups": groups, "scale": scale, "shuffle": shuffle, "seeds": [r["seed"] for r in members],
            "errors": errors, "mean_error": statistics.fmean(errors),
            "std_error": statistics.stdev(errors) if len(errors) > 1 else None,
            "macs": members[0]["macs"], "params": members[0]["params"],
            "training_seconds": sum(float(r["training_seconds"]) for r in members),
        })
    return rows


def write_results(out: Path, done: dict[str, dict], recipe: dict, grid: str) -> dict:
    runs = sorted(done.values(), key=lambda r: (r["scale"], not r["shuffle"], r["groups"], r["seed"]))
    summary = {
        "format": RESULTS_FORMAT, "format_version": 1, "grid": grid,
        "source": "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), all 10,000 test images",
        "recipe": recipe, "runs": runs, "cells": summarize(runs),
        "compute_seconds": round(sum(float(r["training_seconds"]) for r in runs), 1),
    }
    _write_json_atomic(Path(out) / RESULTS_NAME, summary)
    return summary


def _number(value, name: str, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ExperimentError(f"{where}: `{name}` must be a number from {low:g} to {high:g}. Received: {value!r}.")
    return float(value)


def validate_results(data: Any, source: str = "results file") -> dict:
    """Check a parsed results file; ExperimentError naming the first bad field otherwise."""
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ExperimentError(f"{source} is not a results file (expected a JSON object with "
                              f"\"format\": \"{RESULTS_FORMAT}\"). Re-create it with `python -m shufflenet "
                              "experiment`.")
    for key, kind in (("runs", list), ("cells", list), ("recipe", dict)):
        if not isinstance(data.get(key), kind):
            raise ExperimentError(f"{source}: field {key!r} must be a JSON {kind.__name__}.")
    for i, run in enumerate(data["runs"]):
        where = f"{source}, run {i + 1}"
        if not isinstance(run, dict):
            raise ExperimentError(f"{where} must be an object.")
        if run.get("groups") not in ALLOWED_GROUPS:
            raise ExperimentError(f"{where}: `groups` must be one of {', '.join(map(str, ALLOWED_GROUPS))}. "
                                  f"Received: {run.get('groups')!r}.")
        _number(run.get("scale"), "scale", where, 0.25, 3.0)
        if not isinstance(run.get("shuffle"), bool):
            raise ExperimentError(f"{where}: `shuffle` must be true or false. Received: {run.get('shuffle')!r}.")
        _number(run.get("seed"), "seed", where, 0, 2**32 - 1)
        _number(run.get("test_error"), "test_error", where, 0.0, 1.0)
        _number(run.get("macs"), "macs", where, 1)
        _number(run.get("params"), "params", where, 1)
        _number(run.get("training_seconds"), "training_seconds", where, 0)
    expected = summarize(data["runs"])
    if [(c.get("groups"), c.get("scale"), c.get("shuffle")) for c in data["cells"] if isinstance(c, dict)] != \
            [(c["groups"], c["scale"], c["shuffle"]) for c in expected]:
        raise ExperimentError(f"{source}: its cells do not summarise its runs. Re-create it with "
                              "`python -m shufflenet experiment`.")
    for cell, want in zip(data["cells"], expected):
        if not isinstance(cell.get("mean_error"), (int, float)) or abs(cell["mean_error"] - want["mean_error"]) > 1e-9:
            raise ExperimentError(f"{source}: the mean error of cell g={want['groups']} {want['scale']:g}x "
                                  f"{'with' if want['shuffle'] else 'without'} shuffle does not match its runs.")
    return data


def load_results(path: Path | str) -> dict:
    """Read and validate a results file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ExperimentError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except ValueError as exc:
        raise ExperimentError(f"{path} is not valid JSON ({exc}).") from None
    return validate_results(data, str(path))


# --- reading the results as the paper's tables ------------------------------------------------------

def _cell(cells: list[dict], groups: int, scale: float, shuffle: bool = True) -> dict | None:
    return next((c for c in cells if (c["groups"], c["scale"], c["shuffle"]) == (groups, scale, shuffle)), None)


def _pm(cell: dict | None) -> str:
    if cell is None:
        return "–"
    std = "" if cell["std_error"] is None else f" ± {100 * cell['std_error']:.2f}"
    return f"{100 * cell['mean_error']:.2f}{std} (n={len(cell['errors'])})"


def difference(a: dict | None, b: dict | None) -> dict | None:
    """b - a in error points, with the standard error of that difference (None when either cell
    has fewer than two seeds) and a verdict: "b higher", "b lower" (more than two standard errors
    apart), or "within noise"."""
    if a is None or b is None:
        return None
    diff = 100 * (b["mean_error"] - a["mean_error"])
    if a["std_error"] is None or b["std_error"] is None:
        return {"diff": diff, "se": None, "verdict": "too few seeds to tell"}
    se = 100 * math.sqrt(a["std_error"] ** 2 / len(a["errors"]) + b["std_error"] ** 2 / len(b["errors"]))
    verdict = "within noise" if abs(diff) <= 2 * se else ("b higher" if diff > 0 else "b lower")
    return {"diff": diff, "se": se, "verdict": verdict}


def _diff_text(d: dict | None) -> str:
    if d is None:
        return "–"
    se = "" if d["se"] is None else f" ± {d['se']:.2f}"
    return f"{d['diff']:+.2f}{se}"


def trends(summary: dict) -> list[str]:
    """The paper's four claims checked against the measured cells, one sentence each; a
    difference counts only when it exceeds two standard errors."""
    cells = summary["cells"]
    scales = sorted({c["scale"] for c in cells})
    lines = []
    drops = {}
    for s in scales:
        d = difference(_cell(cells, 1, s), _cell(cells, 8, s))
        if d is None:
            continue
        drops[s] = d
        word = {"b lower": "falls", "b higher": "rises", "within noise": "does not change beyond seed noise"}.get(
            d["verdict"], "cannot be judged")
        lines.append(f"Error from g = 1 to g = 8 at {s:g}x {word}: {_diff_text(d)} points "
                     f"(paper Table 2: {_paper_drop(s)}).")
    if len(drops) == 2:
        small, large = scales[0], scales[-1]
        a, b = drops[small], drops[large]
        gap = a["diff"] - b["diff"]  # negative: error falls more at the smaller width
        se = math.hypot(a["se"], b["se"]) if a["se"] is not None and b["se"] is not None else None
        clear = se is not None and abs(gap) > 2 * se
        verdict = ("holds here" if clear and gap < 0 else "is contradicted here" if clear
                   else "cannot be told from seed noise here")
        lines.append(f"Change from g = 1 to g = 8 at {small:g}x minus that at {large:g}x: {gap:+.2f}"
                     f"{'' if se is None else f' ± {se:.2f}'} points, so the paper's 'more so at smaller width' "
                     f"{verdict}.")
    for s in scales:
        for g in (3, 8):
            d = difference(_cell(cells, g, s), _cell(cells, g, s, shuffle=False))
            if d is None:
                continue
            word = {"b higher": "raises the error", "b lower": "lowers the error",
                    "within noise": "changes the error by no more than seed noise"}
            word = word.get(d["verdict"], "cannot be judged")
            paper = TABLE3_POINTS.get((s, g))
            lines.append(f"Removing the shuffle at {s:g}x, g = {g} {word}: {_diff_text(d)} points "
                         f"(paper Table 3: {paper})." if paper else
                         f"Removing the shuffle at {s:g}x, g = {g} {word}: {_diff_text(d)} points.")
    return lines


def _paper_drop(scale: float) -> str:
    from .paper import TABLE2_ERROR

    e = TABLE2_ERROR.get(scale)
    return f"{e[8] - e[1]:+.1f} points on ImageNet" if e else "no row at this width"


def _table3_points() -> dict:
    """(width, g) -> the paper's Table 3 change of error when the shuffle is removed."""
    from .paper import TABLE3_ERROR

    return {k: f"{without - with_:+.1f} points on ImageNet" for k, (without, with_) in TABLE3_ERROR.items()}


TABLE3_POINTS = _table3_points()


def results_markdown(summary: dict) -> str:
    """Markdown tables of a results summary (Table 2 and Table 3 style) and the trends."""
    cells = summary["cells"]
    scales = sorted({c["scale"] for c in cells})
    groups = sorted({c["groups"] for c in cells if c["shuffle"]})
    lines = ["Test error (%) on all 10,000 Fashion-MNIST test images, mean ± sample std over seeds (n seeds).", ""]
    if groups:
        lines += ["| width | " + " | ".join(f"g = {g}" for g in groups) + " |",
                  "|---|" + "---:|" * len(groups)]
        for s in scales:
            lines.append(f"| {s:g}x | " + " | ".join(_pm(_cell(cells, g, s)) for g in groups) + " |")
        lines += ["", "| width | g | MACs | params |", "|---|---:|---:|---:|"]
        for s in scales:
            for g in groups:
                c = _cell(cells, g, s)
                if c:
                    lines.append(f"| {s:g}x | {g} | {c['macs']:,} | {c['params']:,} |")
    ablation = [(s, g) for s in scales for g in (3, 8) if _cell(cells, g, s, shuffle=False)]
    if ablation:
        lines += ["", "| width | g | without shuffle | with shuffle | difference (without - with) |",
                  "|---|---:|---:|---:|---:|"]
        for s, g in ablation:
            lines.append(f"| {s:g}x | {g} | {_pm(_cell(cells, g, s, False))} | {_pm(_cell(cells, g, s))} | "
                         f"{_diff_text(difference(_cell(cells, g, s), _cell(cells, g, s, False)))} |")
    lines += ["", *(f"- {t}" for t in trends(summary)), "",
              f"Compute: {summary['compute_seconds'] / 3600:.2f} hours of training over {len(summary['runs'])} runs "
              f"({summary['compute_seconds'] / max(1, len(summary['runs'])):.0f} s a run on average)."]
    return "\n".join(lines) + "\n"


# --- publishing a finished grid ----------------------------------------------------------------------

#: Shipped checkpoints are named after their cell: fmnist_0.5x_g3, fmnist_0.25x_g8_noshuffle.
SHIPPED_PREFIX = "fmnist_"


def shipped_name(groups: int, scale: float, shuffle: bool) -> str:
    return f"{SHIPPED_PREFIX}{scale:g}x_g{groups}{'' if shuffle else '_noshuffle'}"


def publish(runs_dir: Path | str, to: Path | str, seed: int = 0) -> dict:
    """Ship a grid: the checkpoint of `seed` of every cell into `to/<shipped_name>/`, replacing the
    shipped Fashion-MNIST checkpoints there, plus `to/results.json` (every run, every cell) and
    `to/RESULTS.md`. Returns the summary."""
    runs_dir, to = Path(runs_dir), Path(to)
    summary = load_results(runs_dir / RESULTS_NAME)
    chosen = [r for r in summary["runs"] if r["seed"] == seed]
    cells = {(c["groups"], c["scale"], c["shuffle"]) for c in summary["cells"]}
    missing = cells - {(r["groups"], r["scale"], r["shuffle"]) for r in chosen}
    if missing:
        raise ExperimentError(f"{runs_dir} has no finished seed-{seed} run for "
                              f"{len(missing)} cell(s), e.g. g={sorted(missing)[0][0]}: finish the grid first.")
    to.mkdir(parents=True, exist_ok=True)
    for old in to.glob(f"{SHIPPED_PREFIX}*"):
        if old.is_dir():
            shutil.rmtree(old)
    for r in chosen:
        source = runs_dir / r["name"]
        target = to / shipped_name(r["groups"], r["scale"], r["shuffle"])
        target.mkdir(parents=True)
        for name in ("model.weights.h5", "manifest.json"):
            shutil.copy2(source / name, target / name)
    shipped = dict(summary, shipped_seed=seed)
    _write_json_atomic(to / RESULTS_NAME, shipped)
    (to / "RESULTS.md").write_text(results_document(shipped))
    return shipped


def adopt_published(source: Path | str, out: Path | str, recipe: dict | None = None) -> list[str]:
    """Take the runs of a published folder (its `results.json` and the shipped checkpoints of its
    shipped seed) into the grid folder `out` as finished runs, so that a grid with more seeds
    trains only the new ones. Runs already finished in `out` are left alone. The published
    recipe must be the grid's. Returns the names taken."""
    source, out = Path(source), check_out_dir(out)
    summary = load_results(source / RESULTS_NAME)
    want = dict(RECIPE if recipe is None else recipe)
    if summary["recipe"] != want:
        changed = sorted(k for k in set(want) | set(summary["recipe"]) if summary["recipe"].get(k) != want.get(k))
        raise ExperimentError(f"{source / RESULTS_NAME} was made with another recipe (differs in: "
                              f"{', '.join(changed)}); its runs cannot join this grid.")
    shipped_seed = summary.get("shipped_seed")
    taken = []
    for r in summary["runs"]:
        folder = out / r["name"]
        if read_run(folder) is not None:
            continue
        partial = out / f".{r['name']}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        if r["seed"] == shipped_seed:
            shipped = source / shipped_name(r["groups"], r["scale"], r["shuffle"])
            for name in ("model.weights.h5", "manifest.json"):
                if (shipped / name).is_file():
                    shutil.copy2(shipped / name, partial / name)
        _write_json_atomic(partial / RESULT_NAME, r)
        os.replace(partial, folder)
        taken.append(r["name"])
    return taken


def _made_by(summary: dict) -> str:
    """The grid commands that give every cell its seeds: one per number of seeds, the widths named
    when not every width has that many."""
    seeds_per_width: dict[float, int] = {}
    for c in summary["cells"]:
        seeds_per_width[c["scale"]] = max(seeds_per_width.get(c["scale"], 0), len(c["errors"]))
    commands = []
    for n in sorted(set(seeds_per_width.values())):
        widths = [w for w, k in sorted(seeds_per_width.items()) if k >= n]
        only = "" if len(widths) == len(seeds_per_width) else " --scales " + " ".join(f"{w:g}" for w in widths)
        commands.append(f"`python -m shufflenet experiment all --seeds {n}{only} --out runs/grid`")
    return " and ".join(commands)


def results_document(summary: dict) -> str:
    """RESULTS.md: the recipe, the tables, the trends and what was shipped."""
    r = summary["recipe"]
    recipe = (f"ShuffleNet v1 (blocks 4/8/4, bottleneck 1/4), input {r['input_size']}x{r['input_size']}x"
              f"{r['channels']} (the 28x28 images padded by 2 pixels a side), {r['epochs']} epochs over the 60,000 "
              f"training images, batch {r['batch_size']}, {r['optimizer']} with learning rate {r['learning_rate']:g} "
              f"and {r['schedule']}, {'random flips and shifts' if r['augment'] else 'no augmentation'}, batch-norm "
              "statistics recomputed on 2,048 training images after training; error on all 10,000 test images.")
    return "\n".join([
        "# Fashion-MNIST results: small-scale counterparts of the paper's Tables 2 and 3", "",
        f"Made by {_made_by(summary)}, then `python -m shufflenet publish runs/grid`; machine-readable in "
        "`results.json` (every run and every cell). Runs trained by the current grid also leave TensorBoard "
        "events beside their checkpoints (`tensorboard --logdir runs/grid`).",
        "", f"Recipe, the same for every run: {recipe}", "",
        results_markdown(summary),
        f"Shipped here: the seed-{summary.get('shipped_seed', 0)} checkpoint of every cell, in "
        f"`{SHIPPED_PREFIX}<width>x_g<g>[_noshuffle]/`. This is Fashion-MNIST at 32x32, not ImageNet; the paper's "
        "numbers are quoted for comparison only.", "",
    ])


def shipped_results(root: Path | str | None = None) -> dict | None:
    """The shipped results file (`assets/checkpoints/results.json`), validated; None when there is
    none. ExperimentError when it exists but is not a valid results file."""
    from .checkpoints import SHIPPED_DIR

    path = Path(root if root is not None else SHIPPED_DIR) / RESULTS_NAME
    return load_results(path) if path.exists() else None


def accuracy_points(summary: dict):
    """One row per cell for plotting: groups, width, shuffle, MACs, params, mean and std of the
    test error in percent, number of seeds, and a label."""
    import pandas as pd

    rows = []
    for c in summary["cells"]:
        rows.append({
            "groups": c["groups"], "scale": c["scale"], "shuffle": c["shuffle"], "macs": c["macs"],
            "params": c["params"], "error": 100 * c["mean_error"],
            "error_std": None if c["std_error"] is None else 100 * c["std_error"], "seeds": len(c["errors"]),
            "label": f"{c['scale']:g}x g={c['groups']}{'' if c['shuffle'] else ' no shuffle'}",
        })
    return pd.DataFrame(rows)
