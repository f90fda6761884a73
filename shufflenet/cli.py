"""Command line: `python -m shufflenet summary|diagram|train|evaluate|bench|import-weights ...`.

`summary --family F` also counts the other families (`shufflenet.families`).

Bad arguments exit with code 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ALLOWED_GROUPS, ShuffleNetConfig
from .settings import ENGINES

#: `families.FAMILIES`, in order (the first is the default), without importing them for every command.
FAMILY_NAMES = ("shufflenet-v1", "shufflenet-v2", "mobilenet-v1", "mobilenet-v2")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2 (argparse prints the whole usage)
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """A bad argument found after parsing (e.g. a config value out of range)."""


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of the fields a person sets (shared by all subcommands), made from their
    declaration (`config.FIELDS`), so they take the same limits and help as the explorer.
    Values are checked by ShuffleNetConfig itself, whose message names the field."""
    from .config import FIELDS, STAGES

    flags = {"num_classes": "--classes", "shuffle": "--no-shuffle"}  # the others: the name with dashes
    for name, spec in FIELDS.items():
        flag = flags.get(name, "--" + name.replace("_", "-"))
        help_ = spec.help.replace("%", "%%")  # argparse formats help with %
        if spec.kind is bool:  # a switch that turns the field away from its default
            p.add_argument(flag, dest=name, action="store_false" if spec.default else "store_true",
                           help=f"Switch {spec.label.lower()} {'off' if spec.default else 'on'}. {help_}")
            continue
        if spec.count > 1:  # --blocks S2 S3 S4
            default, metavar, nargs = list(spec.default), tuple(f"S{stage}" for stage in STAGES), spec.count
            shown = " ".join(map(str, default))
        else:
            default, metavar, nargs = spec.default, flag[2:].upper().replace("-", "_"), None
            shown = default
        p.add_argument(flag, dest=name, type=spec.kind, default=default, nargs=nargs, metavar=metavar,
                       help=f"{help_} Allowed: {spec.allowed}. Default: {shown}.")


def config_from_args(args: argparse.Namespace) -> ShuffleNetConfig:
    from .config import FIELDS

    try:
        return ShuffleNetConfig(**{name: getattr(args, name) for name in FIELDS})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def summary_dict(config: ShuffleNetConfig) -> dict:
    """The JSON contract of `summary --format json`."""
    from .complexity import stage_table, totals

    stages = [
        {"name": r.stage, "output": [int(d) for d in r.output_shape], "units": int(r.units),
         "macs": int(r.macs), "params": int(r.params)}
        for r in stage_table(config).itertuples()
    ]
    t = totals(config)
    return {"config": config.to_dict(), "stages": stages,
            "totals": {"conv_macs": t["conv_macs"], "fc_macs": t["fc_macs"], "params": t["params"]}}


def summary_text(config: ShuffleNetConfig) -> str:
    """Paper Table 1's layout for one g (`analysis.table1_layout`), plus MACs and params per stage
    (the stem's on the Conv1 row, the classifier's on the FC row)."""
    from .analysis import table1_layout
    from .complexity import stage_table, totals

    layout = table1_layout(config)
    st = stage_table(config).set_index("stage")
    cost_of = {"Conv1": "stem", "Stage2": "stage2", "Stage3": "stage3", "Stage4": "stage4", "FC": "classifier"}
    rows = [("Layer", "Output size", "KSize", "Stride", "Repeat", "Channels", "MACs", "Params")]
    for r in layout.itertuples(index=False):
        stage = cost_of.get(r[0])
        macs, params = (f"{st.loc[stage].macs:,}", f"{st.loc[stage].params:,}") if stage else ("", "")
        rows.append((*(str(v).replace("×", "x") for v in r), macs, params))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{config.label}, blocks {config.blocks}, reduction {config.reduction:g}"]
    for k, r in enumerate(rows):
        lines.append("  ".join(v.rjust(w) if j >= 5 else v.ljust(w) for j, (v, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    t = totals(config)
    lines += [
        "",
        f"Complexity (paper Table 1: conv MACs, FC excluded): {t['conv_macs']:,} = {t['conv_macs'] / 1e6:.0f} M",
        f"FC MACs: {t['fc_macs']:,}   All MACs: {t['macs']:,}   Trainable params: {t['params']:,}",
    ]
    return "\n".join(lines)


#: The fields every family takes; the others of `config.FIELDS` are ShuffleNet v1's own.
FAMILY_FIELDS = ("scale", "input_size", "channels", "num_classes")
_FLAGS = {"num_classes": "--classes", "shuffle": "--no-shuffle"}


def family_config_from_args(args: argparse.Namespace):
    """The configuration of `--family` (ShuffleNet v1: `config_from_args`). A v1-only flag
    given to another family, or a width that family does not have, is a UsageError."""
    from .config import FIELDS
    from .families import DEFAULT_FAMILY, FAMILIES, family_config

    if args.family == DEFAULT_FAMILY:
        return config_from_args(args)
    own = [name for name in FIELDS if name not in FAMILY_FIELDS]
    given = [name for name in own if _differs(getattr(args, name), FIELDS[name].default)]
    if given:
        flags = ", ".join(_FLAGS.get(n, "--" + n.replace("_", "-")) for n in given)
        raise UsageError(f"{flags} applies to shufflenet-v1 only; --family {args.family} takes --scale "
                         f"({FAMILIES[args.family].allowed_scales}), --input-size, --channels and --classes")
    try:
        return family_config(args.family, **{name: getattr(args, name) for name in FAMILY_FIELDS})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _differs(value, default) -> bool:
    return (list(value) != list(default)) if isinstance(default, tuple) else value != default


def family_summary_dict(config) -> dict:
    """The JSON contract of `summary --family F --format json` for the families other than
    ShuffleNet v1 (whose contract is `summary_dict`): the same stages, and the totals with the
    MACs with the FC layer (`macs`) and without it (`conv_macs`)."""
    from .complexity import stage_table, totals

    stages = [
        {"name": r.stage, "output": [int(d) for d in r.output_shape], "units": int(r.units),
         "macs": int(r.macs), "params": int(r.params)}
        for r in stage_table(config).itertuples()
    ]
    t = totals(config)
    return {"family": config.family, "config": config.to_dict(), "stages": stages,
            "totals": {"conv_macs": t["conv_macs"], "fc_macs": t["fc_macs"], "macs": t["macs"],
                       "params": t["params"]}}


def family_summary_text(config) -> str:
    """The stages of any family's network with their output, units, MACs and params."""
    d = family_summary_dict(config)
    rows = [("Part", "Output", "Units", "MACs", "Params")]
    for st in d["stages"]:
        rows.append((st["name"], "x".join(map(str, st["output"])), str(st["units"] or ""), f"{st['macs']:,}",
                     f"{st['params']:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [config.label]
    for k, r in enumerate(rows):
        lines.append("  ".join(v.rjust(w) if j >= 2 else v.ljust(w) for j, (v, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    t = d["totals"]
    lines += ["", f"MACs without the FC layer: {t['conv_macs']:,} = {t['conv_macs'] / 1e6:.1f} M",
              f"MACs with the FC layer: {t['macs']:,} = {t['macs'] / 1e6:.1f} M   Trainable params: {t['params']:,}"]
    return "\n".join(lines)


def _cmd_summary(args) -> int:
    from .families import DEFAULT_FAMILY

    config = family_config_from_args(args)
    if args.family != DEFAULT_FAMILY:
        print(json.dumps(family_summary_dict(config)) if args.format == "json" else family_summary_text(config))
        return 0
    if args.format == "json":
        print(json.dumps(summary_dict(config)))
    else:
        print(summary_text(config))
    return 0


def _cmd_diagram(args) -> int:
    from . import diagrams

    config = config_from_args(args)
    try:
        if args.view == "macro":
            graph = diagrams.macro_diagram(config)
        elif args.view == "micro":
            graph = diagrams.micro_diagram(config, stage=args.stage or 3, stride=args.stride)
        else:
            graph = diagrams.full_diagram(config, stage=args.stage)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "svg":
        try:
            print(diagrams.to_svg(graph))
        except diagrams.DiagramRenderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        print(graph.source)
    return 0


class _ProgressBar:
    """A one-line progress bar on stderr (a line per tenth of an epoch when not a terminal)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self._last = -1

    def __call__(self, p) -> None:
        tenth = (10 * p.batch) // p.batches
        if not self.tty and tenth == self._last and p.batch != p.batches:
            return
        self._last = tenth
        done = int(self.width * p.batch / p.batches)
        eta = p.seconds / p.step * (p.steps - p.step)
        line = (f"epoch {p.epoch}/{p.epochs} [{'=' * done}{'.' * (self.width - done)}] {p.batch}/{p.batches} "
                f"loss {p.loss:.4f} acc {p.accuracy:.4f} {p.seconds:.0f}s eta {eta:.0f}s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if p.batch == p.batches else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _set_threads(threads: int | None) -> None:
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _cmd_train(args) -> int:
    config = config_from_args(args)
    from . import data, training

    try:
        training.check_task_config(config)
        training.check_arguments(args.epochs, args.limit, args.batch_size, args.lr, args.eval_limit, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.augment and args.engine != "fast":
        raise UsageError("--augment needs --engine fast")
    _set_threads(args.threads)
    print(f"training {config.label} at {config.input_size}x{config.input_size}x{config.channels} on Fashion-MNIST "
          f"for {args.epochs} epoch(s){f' on {args.limit} images' if args.limit else ''} -> {args.out}",
          file=sys.stderr)
    try:
        result = training.train(config, args.epochs, limit=args.limit, out_dir=args.out, on_batch=_ProgressBar(),
                                batch_size=args.batch_size, learning_rate=args.lr, eval_limit=args.eval_limit,
                                data_dir=args.data, seed=args.seed, engine=args.engine, augment=args.augment)
    except (data.DatasetNotFoundError, data.BadDatasetFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    m = result.manifest
    print(f"test accuracy {m['test_accuracy']:.4f} on {m['test_images']} images; "
          f"trained in {m['training_seconds']:.0f} s; saved {result.out_dir}", file=sys.stderr)
    return 0


def _cmd_experiment(args) -> int:
    import os

    from . import data, experiment

    recipe = dict(experiment.RECIPE)
    if args.epochs:
        recipe["epochs"] = args.epochs
    if args.limit:
        recipe["limit"] = args.limit
    try:
        runs = experiment.grid_runs(args.grid, args.seeds, args.scales)
        if not 1 <= args.workers <= (os.cpu_count() or 1) * 4:
            raise UsageError(f"--workers must be from 1 to {(os.cpu_count() or 1) * 4}. Received: {args.workers}")
        if args.adopt:
            taken = experiment.adopt_published(args.adopt, args.out, recipe)
            print(f"took {len(taken)} published runs from {args.adopt} as finished", file=sys.stderr)
        bar = _GridBar(sys.stderr)
        if args.ray is not None:
            from . import grid_ray

            summary = grid_ray.run_grid_ray(args.ray, runs, args.out, grid=args.grid, recipe=recipe,
                                            threads=args.threads, data_dir=args.data, on_event=bar)
        else:
            summary = experiment.run_grid(args.grid, args.seeds, args.out, workers=args.workers,
                                          threads=args.threads, recipe=recipe, data_dir=args.data, on_event=bar,
                                          runs=runs)
    except experiment.ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except (data.DatasetNotFoundError, data.BadDatasetFileError) as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    except KeyboardInterrupt:
        print(f"\nstopped; finished runs are kept in {args.out}: run the same command to resume", file=sys.stderr)
        return 130
    print(experiment.results_markdown(summary))
    return 0


class _GridBar:
    """Progress of a grid on stderr: a tqdm bar of finished runs (with its ETA) showing how many
    run and how many are left, one line per finished or failed run, and one per epoch of a
    local run."""

    def __init__(self, stream):
        self.stream, self.bar, self.running, self.left = stream, None, 0, 0

    def _status(self) -> None:
        self.bar.set_postfix_str(f"running {self.running}, left {self.left}", refresh=True)

    def __call__(self, kind: str, info: dict) -> None:
        from tqdm import tqdm

        if kind == "start":
            where = info.get("where", "local processes")
            tqdm.write(f"{info['total']} runs, {info['finished']} already finished, {info['todo']} to train "
                       f"({where})", file=self.stream)
            self.left = info["todo"]
            self.bar = tqdm(total=info["total"], initial=info["finished"], unit="run", file=self.stream,
                            dynamic_ncols=False, ncols=100, mininterval=1.0, smoothing=0.0)
            self._status()
            return
        if kind == "started":
            self.running, self.left = info["running"], info["left"]
            self._status()
            return
        if kind == "epoch":
            tqdm.write(f"  {info['name']}: epoch {info['epoch']}/{info['epochs']} train accuracy "
                       f"{info['accuracy']:.3f} ({info['seconds']:.0f} s)", file=self.stream)
            return
        if kind == "finished":
            r = info["result"]
            node = f" on {info['node']}" if "node" in info else ""
            tqdm.write(f"{r['name']}: test error {100 * r['test_error']:.2f} % in {r['training_seconds']:.0f} s"
                       f"{node} ({info['done']}/{info['total']} done)", file=self.stream)
            self.running, self.left = info.get("running", self.running), info.get("left", self.left)
            self.bar.update(1)
            self._status()
            return
        if kind == "failed":
            tqdm.write(f"{info['name']} failed: {info['error']} (the grid goes on; run the command again to retry "
                       "it)", file=self.stream)
            self.running, self.left = info.get("running", self.running), info.get("left", self.left)
            self._status()
            return
        if self.bar is not None:
            self.bar.close()
        failed = info.get("failed") or {}
        tqdm.write(f"done: {info['runs']} finished runs" + (f", {len(failed)} failed: {', '.join(failed)}"
                                                            if failed else ""), file=self.stream)


def _cmd_publish(args) -> int:
    from . import experiment
    from .checkpoints import SHIPPED_DIR

    try:
        summary = experiment.publish(args.runs, args.to or SHIPPED_DIR, seed=args.seed)
    except experiment.ExperimentError as exc:
        raise UsageError(str(exc)) from None
    print(f"shipped {len(summary['cells'])} checkpoints and the results of {len(summary['runs'])} runs to "
          f"{args.to or SHIPPED_DIR}")
    return 0


def _cmd_evaluate(args) -> int:
    from . import checkpoints, data, training

    _set_threads(args.threads)
    try:
        result = training.evaluate(args.dir, limit=args.limit, data_dir=args.data)
    except (checkpoints.CheckpointError, data.DatasetNotFoundError, data.BadDatasetFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(f"accuracy {result['accuracy']:.4f} on {result['n']} Fashion-MNIST test images")
    return 0


def _cmd_import_weights(args) -> int:
    from . import imagenet
    from .checkpoints import read_checkpoint

    if (args.groups is None) != (args.scale is None):
        raise UsageError("give both --groups and --scale, or neither (to read them off the checkpoint)")
    if not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist (or is not a file)")
    try:
        out = imagenet.import_checkpoint(args.checkpoint, args.out, groups=args.groups, scale=args.scale)
    except imagenet.WeightsImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"imported megvii's {read_checkpoint(out).config.label} from {args.checkpoint} -> {out}")
    return 0


def _json_value(v):
    """A DataFrame cell as plain JSON: NaN and pandas' NA -> null, whole floats of integer columns -> int."""
    import math

    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    return v


def bench_dict(df, config: ShuffleNetConfig, repeats: int) -> dict:
    """The JSON contract of `bench --format json`: the rows of `benchmark.latency_sweep`, and for
    every runtime setting the actual vs theoretical (MACs) speedup of each model over the first
    g of the sweep and over MobileNet 0.5, and which cost (MACs or memory traffic) predicts the
    measured times across g better (`benchmark.cost_predictors`), the last g over the first for
    every setting beside the MACs and memory-traffic ratios (`ratios`, `benchmark.group_ratios`)
    and the fastest setting per model (`fastest`, `benchmark.fastest_settings`)."""
    import os

    from .benchmark import MOBILENET_LABEL, cost_predictors, fastest_settings, group_ratios, speedup

    rows = []
    for record in df.to_dict(orient="records"):
        row = {k: _json_value(v) for k, v in record.items()}
        for k in ("groups", "threads", "macs", "conv_macs", "params", "traffic_bytes", "batch", "runs"):
            if row.get(k) is not None:
                row[k] = int(row[k])
        rows.append(row)
    speedups = []
    models = list(dict.fromkeys(df["model"]))
    baselines = [m for m in (models[0], MOBILENET_LABEL) if m in models]
    settings = df[["runtime", "threads"]].drop_duplicates().itertuples(index=False)
    for runtime, threads in settings:
        threads = None if threads is None or threads != threads else int(threads)  # NaN for tensorflow
        for base in baselines:
            for model in models:
                if model == base:
                    continue
                s = speedup(df, base, model, runtime=runtime, threads=threads)
                speedups.append({"runtime": runtime, "threads": threads, "baseline": base, "model": model,
                                 "theoretical": round(float(s["theoretical"]), 3),
                                 "actual": round(float(s["actual"]), 3)})
    return {"config": config.to_dict(), "batch": int(df["batch"].iloc[0]), "repeats": repeats,
            "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
            "rows": rows, "speedups": speedups,
            "predictors": [{k: _json_value(v) for k, v in r.items()} for r in cost_predictors(df).to_dict("records")],
            "ratios": [{k: _json_value(v) for k, v in r.items()} for r in group_ratios(df).to_dict("records")],
            "fastest": [{k: _json_value(v) for k, v in r.items()} for r in fastest_settings(df).to_dict("records")]}


def bench_text(result: dict) -> str:
    """The measurements as two aligned tables (latency per model and runtime; speedups)."""

    def table(rows: list[tuple[str, ...]], right_from: int) -> list[str]:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out = []
        for k, r in enumerate(rows):
            out.append("  ".join(v.rjust(w) if j >= right_from else v.ljust(w)
                                 for j, (v, w) in enumerate(zip(r, widths))).rstrip())
            if k == 0:
                out.append("  ".join("-" * w for w in widths))
        return out

    def setting(runtime, threads):
        return runtime if threads is None else f"{runtime} ({threads} thr)"

    lines = [f"batch {result['batch']}, {result['repeats']} timed runs each (round-robin), "
             f"{result['machine']['cpus']} CPUs, load {result['machine']['load_average']}"]
    rows = [("model", "runtime", "MACs", "median ms", "p10 ms", "p90 ms")]
    for r in result["rows"]:
        rows.append((r["model"], setting(r["runtime"], r["threads"]), f"{r['macs'] / 1e6:.1f} M",
                     f"{r['median_ms']:.2f}", f"{r['p10_ms']:.2f}", f"{r['p90_ms']:.2f}"))
    lines += table(rows, 2)
    if result["speedups"]:
        lines += ["", "Speedup of model over baseline: theoretical (MACs) vs actual (latency)"]
        rows = [("runtime", "baseline", "model", "theoretical", "actual")]
        for s in result["speedups"]:
            rows.append((setting(s["runtime"], s["threads"]), s["baseline"], s["model"],
                         f"{s['theoretical']:.2f}x", f"{s['actual']:.2f}x"))
        lines += table(rows, 3)
    if result.get("ratios"):
        first, last = result["ratios"][0]["first_groups"], result["ratios"][0]["last_groups"]
        lines += ["", f"g={last} over g={first}: measured latency vs counted costs"]
        rows = [("", f"g={first}", f"g={last}", "ratio")]
        for r in result["ratios"]:
            unit = " ms" if r["quantity"] == "latency" else ""
            digits = 2 if r["quantity"] == "latency" else 0
            rows.append((r["what"], f"{r['first']:,.{digits}f}{unit}", f"{r['last']:,.{digits}f}{unit}",
                         f"{r['ratio']:.2f}x"))
        lines += table(rows, 1)
    if result.get("fastest"):
        lines += ["", "Fastest setting per model on this machine"]
        rows = [("model", "fastest", "ms", "default", "ms", "speedup")]
        for r in result["fastest"]:
            rows.append((r["model"], r["fastest"], f"{r['fastest_ms']:.2f}", r["default"], f"{r['default_ms']:.2f}",
                         f"{r['speedup']:.2f}x"))
        lines += table(rows, 2)
    return "\n".join(lines)


def _cmd_bench(args) -> int:
    config = config_from_args(args)
    from . import benchmark

    def progress(fraction: float, message: str) -> None:
        if not args.quiet:
            print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)

    try:
        df = benchmark.latency_sweep(config, groups=args.groups_list, batch=args.batch, runtimes=args.runtimes,
                                     threads=args.tflite_threads, repeats=args.repeats,
                                     include_mobilenet=not args.no_mobilenet, progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = bench_dict(df, config, args.repeats)
    print(json.dumps(result) if args.format == "json" else bench_text(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m shufflenet", description="ShuffleNet v1 explorer tools")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("summary", help="per-stage MACs and params (paper Table 1; other families with --family)")
    add_config_arguments(p)
    p.add_argument("--family", choices=FAMILY_NAMES, default=FAMILY_NAMES[0],
                   help="the network family (default: shufflenet-v1). The others take --scale, --input-size, "
                        "--channels and --classes: shufflenet-v2 scale 0.5, 1, 1.5, 2; mobilenet-v1 0.25, 0.5, "
                        "0.75, 1; mobilenet-v2 0.35, 0.5, 0.75, 1, 1.3, 1.4.")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("diagram", help="architecture diagram as DOT or SVG")
    add_config_arguments(p)
    p.add_argument("--view", choices=("macro", "micro", "full"), default="macro")
    p.add_argument("--stage", type=int, choices=(2, 3, 4), default=None, help="stage of micro/full views")
    p.add_argument("--stride", type=int, choices=(1, 2), default=1, help="unit of the micro view")
    p.add_argument("--format", choices=("dot", "svg"), default="dot")
    p.set_defaults(func=_cmd_diagram)

    p = sub.add_parser("train", help="train on Fashion-MNIST and save a checkpoint")
    p.add_argument("--task", choices=("fashion-mnist",), required=True)
    add_config_arguments(p)
    p.add_argument("--epochs", type=_positive, required=True)
    p.add_argument("--limit", type=_positive, default=None, help="train on the first N training images only")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--batch-size", type=_positive, default=256)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's initial learning rate (cosine decay)")
    p.add_argument("--eval-limit", type=_positive, default=None, help="test on the first N test images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--data", default=None, help="Fashion-MNIST folder (else $SHUFFLENET_DATA, caches)")
    p.add_argument("--engine", choices=ENGINES, default="fast",
                   help="fast: the training graph in a compiled loop (default); keras-fit: model.fit, the earlier path")
    p.add_argument("--augment", action="store_true", help="random flips and shifts of up to 2 pixels (fast engine)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("experiment", help="train a grid of small-scale paper Table 2 / Table 3 runs (resumable)")
    p.add_argument("grid", choices=("table2", "table3", "all"),
                   help="table2: g 1,2,3,4,8 x width 0.25x, 0.5x; table3: g 3, 8 without channel shuffle; all: both")
    p.add_argument("--seeds", type=int, default=3, help="runs per cell, seeds 0..N-1 (default 3)")
    p.add_argument("--out", required=True, help="folder of the runs and results.json; the same folder resumes")
    p.add_argument("--workers", type=int, default=2, help="runs trained at once, each in its own process (default 2)")
    p.add_argument("--threads", type=_positive, default=1, help="TensorFlow threads per run (default 1)")
    p.add_argument("--epochs", type=_positive, default=None, help="override the recipe's epochs (for quick tries)")
    p.add_argument("--limit", type=_positive, default=None, help="train on the first N images (for quick tries)")
    p.add_argument("--data", default=None, help="Fashion-MNIST folder (else $SHUFFLENET_DATA, caches)")
    p.add_argument("--scales", type=float, nargs="+", default=None, metavar="WIDTH",
                   help="train only these widths of the grid (e.g. --scales 0.25)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run every run as a Ray task: local (a Ray instance in this process), auto (the cluster of "
                        "`ray start`), or a cluster address HOST:PORT; default: local processes, no Ray")
    p.add_argument("--adopt", default=None, metavar="DIR",
                   help="first take the runs published in DIR (e.g. assets/checkpoints) as finished, so that more "
                        "seeds train only the new runs")
    p.set_defaults(func=_cmd_experiment)

    p = sub.add_parser("publish", help="ship a finished grid: seed-0 checkpoints, results.json, RESULTS.md")
    p.add_argument("runs", help="the grid's folder (the --out of `experiment`)")
    p.add_argument("--to", default=None, help="where to ship them (default: assets/checkpoints)")
    p.add_argument("--seed", type=int, default=0, help="the seed whose checkpoints are shipped (default 0)")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("evaluate", help="test accuracy of a checkpoint on Fashion-MNIST")
    p.add_argument("dir", help="checkpoint folder (manifest.json + model.weights.h5)")
    p.add_argument("--limit", type=_positive, default=None, help="the first N test images only")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--threads", type=_positive, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--data", default=None, help="Fashion-MNIST folder (else $SHUFFLENET_DATA, caches)")
    p.set_defaults(func=_cmd_evaluate)

    from .benchmark import RUNTIMES

    p = sub.add_parser("bench", help="measured latency vs MACs over g in TensorFlow, TFLite and ONNX Runtime "
                                     "(paper Table 8)")
    add_config_arguments(p)
    p.add_argument("--groups-list", type=int, nargs="+", choices=ALLOWED_GROUPS, default=list(ALLOWED_GROUPS),
                   metavar="G", help=f"the g to measure, each one of {ALLOWED_GROUPS} (default: all)")
    p.add_argument("--batch", type=_positive, default=1)
    p.add_argument("--repeats", type=_positive, default=20, help="timed runs per model and runtime (default 20)")
    p.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=["tensorflow", "tflite"],
                   help="runtimes to time (default tensorflow tflite; onnxruntime converts each TFLite graph to ONNX)")
    p.add_argument("--tflite-threads", type=_positive, nargs="+", default=[1, 2], metavar="N",
                   help="TFLite interpreter and ONNX Runtime threads to measure (default 1 2)")
    p.add_argument("--no-mobilenet", action="store_true", help="leave out the MobileNet 0.5 reference")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("import-weights", help="import megvii's official ImageNet checkpoint (PyTorch)")
    p.add_argument("checkpoint", help="megvii's ShuffleNetV1 .pth.tar / .pth file (reading it needs torch)")
    p.add_argument("--groups", type=int, choices=(3, 8), default=None,
                   help="groups of the published model (default: read off the checkpoint)")
    p.add_argument("--scale", type=float, choices=(0.5, 1.0, 1.5, 2.0), default=None,
                   help="width multiplier of the published model (default: read off the checkpoint)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (model.weights.h5 + manifest.json)")
    p.set_defaults(func=_cmd_import_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
