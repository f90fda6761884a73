"""Classroom: a class of students on one server, each a real Streamlit session, no browsers.

    python bench/classroom.py [--sessions 30] [--changes 10] [--pause 0] [--all-views] [--cpu-probe]
                              [--probe-changes 3] [--probe-quiet 2] [--max-seconds 900] [--timeout 120]
                              [--seed 0] [--warmups 1] [--no-warmup]
                              [--url http://127.0.0.1:PORT [--pid PID]] [--out FILE]

A class of Chromium pages would take the CPUs from the server it measures, so
this speaks the frontend's protocol itself (bench/st_protocol.py): XSRF cookie, websocket, protobuf
`BackMsg.rerun_script` with every mounted widget's state, `ForwardMsg`s until `script_finished`.
The server gets the same requests as from browsers whose users change sidebar controls; what it
does not get: file uploads, button clicks, and the timed reruns of fragments (`run_every`).

Starts `streamlit run explorer/app.py` on a free loopback port (unless --url names a running one,
which must be on loopback too; a load balancer there is fine: each session keeps the cookies it is
given, the balancer's sticky cookie with them, as a browser tab does). One warm-up session (or
--warmups of them at once, one per app process behind a balancer) first opens every view once, as
the teacher would before the class, so that imports and first-time caches do not land on the
students; with
--cpu-probe a second single session then measures the server's CPU time of each rerun alone.
Then --sessions students open a shared link at the same moment (the Overview, with a random
network: g, units, bottleneck, width and task) and make --changes changes each in the sidebar:
another view, another g, another value of a slider or a switch, or the other task, each value
random among those the widget offers, with an exponential pause of mean --pause seconds before
each change (0: back to back).

Every change is timed on the server's side of the wire: from sending the rerun to receiving
`script_finished`. After every run the page the server sent is checked: the "MACs without FC
(Table 1)" and "MACs with FC" metrics must equal `shufflenet.complexity.totals` of the network the
student chose (they must be there on the Overview), and so must the built Keras model's parameter
and layer counts where the Overview shows them (once the background builder has built the
network; `keras_checks_seen` counts them); the title must name the chosen view, the address bar
must hold the chosen configuration, and no exception may be shown. Also counted: disconnects,
timeouts, runs that did not finish. The server's RSS and CPU time (utime + stime, /proc/<pid>) are
read before and after the class, summed over the server and the processes below it (so that
the pid of `make class`'s launcher, deploy/balancer.py, covers HAProxy and every app process;
give it with --pid). The CPU probe waits --probe-quiet seconds before each change, so that the
model build a change starts in the background has ended before the next rerun is measured.

Prints one JSON object (also written to --out, default bench/results/classroom.json): p50/p95/max
seconds per change overall and per view, errors, exceptions, wrong numbers, disconnects, the
server's RSS and CPU per rerun, the sticky cookies the sessions were given, and the run's
settings. Exit status 0 when nothing went wrong, 1 otherwise, 2 for bad arguments. Makes no new
change after --max-seconds (a run under way finishes), and every wait has a timeout (--timeout per
run).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import math
import os
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests", ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from report import write_result  # noqa: E402
from st_protocol import FINISHED, XSRF_COOKIE, Page, ProtocolError, Session  # noqa: E402

from explorer.sidebar import (  # noqa: E402
    TASK_BY_LABEL,
    TASKS,
    Task,
    config_from_state,
    parse_query_params,
    query_params_for,
)
from shufflenet import ALLOWED_GROUPS, ShuffleNetConfig, complexity  # noqa: E402

#: The views every run visits; the model views build and run Keras models on the page (--all-views).
BASE_VIEWS = ("Overview", "Architecture", "Complexity", "Channel shuffle", "Compare")
MODEL_VIEWS = ("Inside", "Predictions", "Latency")
#: Metric label -> key of `complexity.totals`.
METRICS = {"MACs without FC (Table 1)": "conv_macs", "MACs with FC": "macs"}
#: The Overview's line once the background builder has built the network's Keras model
#: (explorer/views/model_summary.py): the model's own counts, which must be the library's.
KERAS_CHECK = re.compile(r"Checked against the built Keras model: ([\d,]+) trainable parameters and ([\d,]+) layers")
KERAS_DISAGREES = "disagrees with the analysis"
TITLE = "ShuffleNet Explorer · {view}"
SIDEBAR = 1  # first delta-path index of the sidebar (Streamlit's RootContainer.SIDEBAR)
#: Share of changes per sidebar control; the rest is shared by the other controls (sliders, switches).
CHANGE_WEIGHTS = {"view": 0.4, "groups": 0.25, "task": 0.05}
OTHER_WEIGHT = 0.3
#: Values a shared link may hold (the URL ranges the sidebar accepts: a link it has to correct
#: shows a warning, which `check_state` reports).
LINK_VALUES = {
    "blocks": tuple(range(1, 17)),
    "reduction": tuple(round(0.05 * i, 2) for i in range(1, 21)),
    "scale": tuple(0.25 * i for i in range(1, 13)),
}
#: Sidebar state keys a task presets when it is chosen: its attributes named like one.
PRESET_FIELDS = tuple(f.name for f in dataclasses.fields(Task) if f.name not in ("key", "label", "display"))
SAMPLES = 5  # messages of each kind kept in the report
DEFAULT_SERVER_LOG = ROOT / "tests" / "artifacts" / "classroom_server.log"


# --- what the students do (pure) ----------------------------------------------------------------

def random_link(rng: random.Random) -> str:
    """The query string of a shared link: the Overview of a random network."""
    task = rng.choice(TASKS)
    config = ShuffleNetConfig(
        groups=rng.choice(ALLOWED_GROUPS), blocks=tuple(rng.choice(LINK_VALUES["blocks"]) for _ in range(3)),
        reduction=rng.choice(LINK_VALUES["reduction"]), scale=rng.choice(LINK_VALUES["scale"]),
        input_size=task.input_size, channels=task.channels, num_classes=task.num_classes)
    return urlencode(query_params_for(config, task, "Overview"))


def state_from_query(query_string: str) -> tuple[dict, list[str]]:
    """The sidebar state a query string describes (the app's own parser) and its warnings."""
    return parse_query_params(dict(parse_qsl(query_string, keep_blank_values=True)))


def _decimals(step: float) -> int:
    return len(f"{step:g}".partition(".")[2])


def _option_state(key: str, option: str, current):
    """A select box option (as shown) in sidebar-state terms: a task's label, or g as a number."""
    if key == "task":
        return next(t.label for t in TASKS if t.label + t.display == option)
    return type(current)(option)


def controls(page: Page, state: dict, views: tuple[str, ...]) -> dict[str, tuple[tuple[object, object], ...]]:
    """What a student can set in the sidebar now: state key -> ((state value, widget value), ...).

    Read from the widgets the server sent (their options, ranges and steps), so the choices are
    the page's own; only controls of the sidebar state count (not Compare's B, not the view's own)."""
    out = {}
    for key, path, kind, el in page.mounted_widgets():
        if path[0] != SIDEBAR or key not in state:
            continue
        if key == "view":
            out[key] = tuple((v, v) for v in el.options if v in views)
        elif kind == "selectbox":
            out[key] = tuple((_option_state(key, o, state[key]), o) for o in el.options)
        elif kind == "slider" and not el.options:
            n = round((el.max - el.min) / el.step)
            grid = [el.min + i * el.step for i in range(n + 1)]
            if isinstance(state[key], float):
                out[key] = tuple((round(v, _decimals(el.step)), v) for v in grid)
            else:
                out[key] = tuple((round(v), v) for v in grid)
        elif kind == "checkbox":
            out[key] = ((False, False), (True, True))
    return out


def next_change(rng: random.Random, state: dict, choices: dict[str, tuple]) -> tuple[str, object, object]:
    """One change a student makes: (state key, new state value, widget value), always a new value.

    `choices` is what `controls` returns; a control with nothing else to choose is left alone."""
    keys = [k for k, values in choices.items() if any(v != state[k] for v, _ in values)]
    if not keys:
        raise ProtocolError(f"no sidebar control to change among {sorted(choices)}")
    others = [k for k in keys if k not in CHANGE_WEIGHTS]
    weights = [CHANGE_WEIGHTS.get(k, OTHER_WEIGHT / max(1, len(others))) for k in keys]
    key = rng.choices(keys, weights=weights)[0]
    value, shown = rng.choice([(v, w) for v, w in choices[key] if v != state[key]])
    return key, value, shown


def apply_change(state: dict, key: str, value) -> dict:
    """The sidebar state after the change; a new task brings its presets, as the Task select
    box's callback does."""
    new = {**state, key: value}
    if key == "task":
        task = TASK_BY_LABEL[value]
        new.update({name: getattr(task, name) for name in PRESET_FIELDS if name in state})
    return new


def expected_metrics(config: ShuffleNetConfig) -> dict[str, str]:
    totals = complexity.totals(config)
    return {label: f"{totals[key]:,}" for label, key in METRICS.items()}


def check_numbers(shown: dict[str, list[str]], config: ShuffleNetConfig, view: str) -> tuple[list[str], int]:
    """Every MACs metric on the page against the library: (problems, figures checked). On the
    Overview a missing figure is a problem too (it would make the check pass by showing nothing)."""
    want = expected_metrics(config)
    problems, checked = [], 0
    for label, expected in want.items():
        values = shown.get(label, [])
        if not values and view == "Overview":
            problems.append(f"{label!r} missing on the Overview (expected {expected})")
        for value in values:
            checked += 1
            if value != expected:
                problems.append(f"{label!r} shows {value}, expected {expected} for {config}")
    return problems, checked


def check_keras(texts: list[str], config: ShuffleNetConfig) -> tuple[list[str], int]:
    """The built Keras model's counts the page shows (if it shows them yet) against the library's,
    and any disagreement the page itself reports: (problems, lines checked)."""
    totals = complexity.totals(config)
    problems, checked = [], 0
    for text in texts:
        if KERAS_DISAGREES in text:
            problems.append(f"the page reports: {text[:300]}")
        match = KERAS_CHECK.search(text)
        if match:
            checked += 1
            shown = tuple(int(x.replace(",", "")) for x in match.groups())
            if shown != (totals["params"], totals["layers"]):
                problems.append(f"the built Keras model shows {shown[0]:,} parameters and {shown[1]:,} layers, "
                                f"expected {totals['params']:,} and {totals['layers']:,} for {config}")
    return problems, checked


def page_texts(page: Page) -> list[str]:
    """Every Markdown, caption and alert text on the page."""
    return [el.body for _, _, el in page.iter_elements("markdown")] + [
        el.body for _, _, el in page.iter_elements("alert")]


def check_state(headings: list[str], query_string: str, state: dict) -> list[str]:
    """The page shows the chosen view and its address bar holds the chosen configuration."""
    problems = []
    title = TITLE.format(view=state["view"])
    if title not in headings:
        problems.append(f"title {title!r} not on the page (headings: {headings[:3]})")
    url_state, warnings = state_from_query(query_string)
    if warnings:
        problems.append(f"address bar {query_string!r} has warnings: {warnings}")
    if url_state["view"] != state["view"] or config_from_state(url_state) != config_from_state(state):
        problems.append(f"address bar {query_string!r} is not the chosen {state['view']}, {config_from_state(state)}")
    return problems


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1): always one of the measured values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(seconds: list[float]) -> dict:
    r = lambda x: None if x is None else round(x, 4)
    return {"n": len(seconds), "p50": r(percentile(seconds, 0.5)), "p95": r(percentile(seconds, 0.95)),
            "max": r(max(seconds, default=None)), "mean": r(statistics.fmean(seconds)) if seconds else None}


# --- the server process ------------------------------------------------------------------------

def loopback_url(text: str) -> str:
    """`text` as a base URL, if it is an http(s) URL on this machine's loopback; else ValueError."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http:// URL such as http://127.0.0.1:8501")
    host = parts.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{text!r}: this benchmark only loads servers on loopback (127.0.0.0/8, ::1, localhost), "
                         f"not {host!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None


def process_tree(pid: int | None) -> list[int]:
    """`pid` and every process below it (below deploy/balancer.py: HAProxy and the app
    processes; a single server's children are its training and `dot` processes)."""
    if pid is None or _stat(pid) is None:
        return []
    parents: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            fields = _stat(int(proc.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(proc.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += parents.get(p, [])
    return tree


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of `pid` and the processes below it, in MB."""
    total, found = 0, False
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total, found = total + int(line.split()[1]), True
        except OSError:
            continue
    return round(total / 1024, 1) if found else None


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (utime + stime, all threads) of `pid` and the processes below it, with that of
    their children that have ended (cutime + cstime), from /proc/<pid>/stat."""
    tree = process_tree(pid)
    if not tree:
        return None
    ticks = 0
    for p in tree:
        fields = _stat(p)
        if fields is not None:
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (for --url without --pid), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


# --- one student -------------------------------------------------------------------------------

@dataclass
class Tally:
    """What one or more sessions saw."""

    latencies: list[tuple[str, float]] = field(default_factory=list)  # (view after the change, seconds)
    first_loads: list[float] = field(default_factory=list)
    cpu: list[tuple[str, float]] = field(default_factory=list)  # (view, server CPU s), single-session only
    reruns: int = 0
    changes: int = 0
    numbers_checked: int = 0
    keras_checked: int = 0
    disconnects: int = 0
    nbytes: int = 0
    refs: int = 0
    #: "name=value" of every cookie but Streamlit's XSRF one, per session (a balancer's sticky cookie).
    cookies: list[str] = field(default_factory=list)
    stopped_by_time: bool = False
    errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    wrong_numbers: list[str] = field(default_factory=list)
    wrong_state: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            setattr(self, name, (mine or value) if isinstance(value, bool) else mine + value)


class Student:
    """One browser tab: its own session, its own random choices and its own tally.

    `plan(student, page, step)` returns the change to make at `step` (1, 2, ...) on the page as the
    last run left it: (state key, new state value, widget value)."""

    def __init__(self, name: str, url: str, rng: random.Random, plan, *, timeout: float, deadline: float,
                 pause: float = 0.0, cpu_pid: int | None = None, link: str | None = None, quiet: float = 0.0):
        self.name, self.url, self.rng, self.plan = name, url, rng, plan
        self.quiet = quiet  # fixed seconds before each change (the CPU probe lets background work end)
        self.timeout, self.deadline, self.pause, self.cpu_pid = timeout, deadline, pause, cpu_pid
        self.link = link if link is not None else random_link(rng)
        self.state, _ = state_from_query(self.link)
        self.tally = Tally()

    async def run(self, changes: int) -> Tally:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        t = self.tally
        session = Session(self.url)
        step = 0
        try:
            await session.open(min(self.timeout, max(1.0, self.deadline - time.monotonic())))
            t.cookies += [f"{k}={v}" for k, v in session.cookies.items() if k != XSRF_COOKIE]
            await self._visit(session, 0, self.link)
            for step in range(1, changes + 1):
                if self.pause > 0:
                    await asyncio.sleep(max(0.0, min(self.rng.expovariate(1 / self.pause),
                                                     self.deadline - time.monotonic())))
                if self.quiet > 0:
                    await asyncio.sleep(max(0.0, min(self.quiet, self.deadline - time.monotonic())))
                if time.monotonic() >= self.deadline:
                    t.stopped_by_time = True
                    break
                key, value, shown = self.plan(self, session.page, step)
                session.page.set_widget(key, shown)
                self.state = apply_change(self.state, key, value)
                await self._visit(session, step)
                t.changes += 1
        except ConnectionClosed as exc:
            t.disconnects += 1
            t.errors.append(f"{self.name} step {step}: disconnected ({exc})")
        except (TimeoutError, OSError, InvalidHandshake, ProtocolError, ValueError) as exc:
            t.errors.append(f"{self.name} step {step}: {type(exc).__name__}: {str(exc)[:300]}")
        except Exception as exc:  # noqa: BLE001 - a student that breaks is reported; the class goes on
            t.errors.append(f"{self.name} step {step}: unexpected {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            await session.close()
        return t

    async def _visit(self, session: Session, step: int, query_string: str | None = None) -> None:
        t = self.tally
        cpu0 = cpu_seconds(self.cpu_pid) if self.cpu_pid else None
        result = await session.rerun(self.timeout, query_string)
        cpu1 = cpu_seconds(self.cpu_pid) if self.cpu_pid else None
        view = self.state["view"]
        where = f"{self.name} step {step} ({view})"
        t.reruns += 1
        t.nbytes += result.nbytes
        t.refs += result.refs
        if step == 0:
            t.first_loads.append(result.seconds)
        else:
            t.latencies.append((view, result.seconds))
        if cpu0 is not None and cpu1 is not None:
            t.cpu.append((view, cpu1 - cpu0))
        if result.status != FINISHED.FINISHED_SUCCESSFULLY:
            t.errors.append(f"{where}: the run ended with {FINISHED.Name(result.status)}")
            return
        page = session.page
        t.exceptions += [f"{where}: {e[:300]}" for e in page.exceptions()]
        config = config_from_state(self.state)
        wrong, checked = check_numbers(page.metrics(), config, view)
        t.numbers_checked += checked
        t.wrong_numbers += [f"{where}: {w}" for w in wrong]
        wrong, checked = check_keras(page_texts(page), config)
        t.keras_checked += checked
        t.wrong_numbers += [f"{where}: {w}" for w in wrong]
        t.wrong_state += [f"{where}: {w}" for w in check_state(page.headings(), page.query_string, self.state)]


def random_plan(views: tuple[str, ...]):
    return lambda student, page, step: next_change(student.rng, student.state, controls(page, student.state, views))


def tour_plan(views: tuple[str, ...]):
    """Every view once, in order (the first load shows the first)."""
    return lambda student, page, step: ("view", views[step % len(views)], views[step % len(views)])


def probe_plan(views: tuple[str, ...], per_view: int):
    """Each view in turn, then `per_view` random configuration changes in it."""
    steps = []
    for i, view in enumerate(views):
        if i:
            steps.append(view)
        steps += [None] * per_view

    def plan(student, page, step):
        view = steps[step - 1]
        if view is not None:
            return "view", view, view
        # Offered only the current view, `next_change` changes a setting.
        return next_change(student.rng, student.state, controls(page, student.state, (student.state["view"],)))

    plan.steps = len(steps)
    return plan


# --- the class ---------------------------------------------------------------------------------

def _probe_report(t: Tally) -> dict:
    per_view = {}
    latencies = {}
    for view, s in t.latencies:
        latencies.setdefault(view, []).append(s)
    for view in dict.fromkeys(v for v, _ in t.cpu):
        cpu = [c for v, c in t.cpu if v == view]
        per_view[view] = {"cpu_ms_median": round(statistics.median(cpu) * 1000, 1), **summary(latencies.get(view, []))}
    cpu = [c for _, c in t.cpu]
    return {"reruns": len(cpu), "cpu_per_rerun_ms_median": round(statistics.median(cpu) * 1000, 1) if cpu else None,
            "tick_ms": round(1000 / os.sysconf("SC_CLK_TCK"), 1), "per_view": per_view}


async def _class(url: str, pid: int | None, *, sessions: int, changes: int, pause: float, views: tuple[str, ...],
                 cpu_probe: bool, probe_changes: int, warmup: bool, timeout: float, seed: int,
                 deadline: float, probe_quiet: float = 0.0, warmups: int = 1) -> dict:
    everything = Tally()
    report: dict = {}

    async def bounded(coro, name: str):
        try:
            return await asyncio.wait_for(coro, max(1.0, deadline - time.monotonic()) + timeout + 30)
        except TimeoutError:
            everything.errors.append(f"{name} did not end within --max-seconds plus --timeout")
            return None

    if warmup and warmups:
        warm = [Student(f"warm-up{i or ''}", url, random.Random(f"{seed}:warm-up{i or ''}"), tour_plan(views),
                        timeout=timeout, deadline=deadline) for i in range(warmups)]
        done = await bounded(asyncio.gather(*(w.run(len(views) - 1) for w in warm)), "the warm-up")
        if done:
            t = Tally()
            for one in done:
                t.add(one)
            everything.add(t)
            report["warmup"] = {"sessions": warmups, "reruns": t.reruns, "cookies": sorted(t.cookies),
                                "seconds": round(sum(s for _, s in t.latencies) + sum(t.first_loads), 2)}
    if cpu_probe:
        plan = probe_plan(views, probe_changes)
        probe = Student("cpu-probe", url, random.Random(f"{seed}:probe"), plan, timeout=timeout, deadline=deadline,
                        cpu_pid=pid, quiet=probe_quiet)
        t = await bounded(probe.run(plan.steps), "the CPU probe")
        if t:
            everything.add(t)
            report["cpu_probe"] = _probe_report(t) if pid else {"note": "no server pid (give --pid)"}

    rss_before, cpu_before, client_before = rss_mb(pid), cpu_seconds(pid), time.process_time()
    start = time.monotonic()
    students = [Student(f"s{i}", url, random.Random(f"{seed}:{i}"), random_plan(views), timeout=timeout,
                        deadline=deadline, pause=pause) for i in range(sessions)]
    tallies = await bounded(asyncio.gather(*(s.run(changes) for s in students)), "the class")
    wall = time.monotonic() - start
    rss_after, cpu_after = rss_mb(pid), cpu_seconds(pid)
    klass = Tally()
    for s in students:  # a student cut off by the bound still reports what it did
        klass.add(s.tally)
    everything.add(klass)
    if tallies is None:
        klass.stopped_by_time = True

    seconds = [s for _, s in klass.latencies]
    per_view = {}
    for view in views:
        got = [s for v, s in klass.latencies if v == view]
        if got:
            per_view[view] = summary(got)
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    lat = summary(seconds)
    report.update({
        "changes_planned": sessions * changes,
        "changes_done": klass.changes,
        "stopped_by_time": klass.stopped_by_time,
        "p50_s": lat["p50"], "p95_s": lat["p95"], "max_s": lat["max"],
        "latency_s": lat,
        "first_load_s": summary(klass.first_loads),
        "per_view": per_view,
        "errors": len(everything.errors),
        "exceptions": len(everything.exceptions),
        "wrong_numbers": len(everything.wrong_numbers),
        "wrong_state": len(everything.wrong_state),
        "disconnects": everything.disconnects,
        "sticky_cookies": {c: klass.cookies.count(c) for c in sorted(set(klass.cookies))},
        "numbers_checked": everything.numbers_checked,
        "keras_checks_seen": everything.keras_checked,
        "samples": {name: getattr(everything, name)[:SAMPLES]
                    for name in ("errors", "exceptions", "wrong_numbers", "wrong_state")},
        "server": {
            "pid": pid,
            "rss_mb": {"before": rss_before, "after": rss_after},
            "class_reruns": klass.reruns,
            "class_cpu_s": None if server_cpu is None else round(server_cpu, 2),
            "cpu_per_rerun_ms": round(server_cpu / klass.reruns * 1000, 1) if server_cpu and klass.reruns else None,
        },
        "class_wall_s": round(wall, 2),
        "reruns_per_s": round(klass.reruns / wall, 2) if wall > 0 else None,
        "client_cpu_s": round(time.process_time() - client_before, 2),
        "mb_received": round(klass.nbytes / 1e6, 2),
        "cached_refs": klass.refs,
    })
    return report


def classroom(sessions: int = 30, changes: int = 10, *, pause: float = 0.0, all_views: bool = False,
              cpu_probe: bool = False, probe_changes: int = 3, probe_quiet: float = 2.0, warmup: bool = True,
              warmups: int = 1, max_seconds: float = 900,
              timeout: float = 120, seed: int = 0, url: str | None = None, pid: int | None = None,
              server_log: Path | None = None) -> dict:
    """Run the class against `url`, or against a server started (and stopped) here."""
    import streamlit
    from browser_support import ServerError, start_server, stop_server, wait_healthy

    begin = time.monotonic()
    deadline = begin + max_seconds
    views = BASE_VIEWS + (MODEL_VIEWS if all_views else ())
    proc = None
    result: dict = {"benchmark": "classroom"}
    result["run"] = {
        "sessions": sessions, "changes": changes, "pause_s": pause, "views": list(views), "all_views": all_views,
        "cpu_probe": cpu_probe, "probe_changes": probe_changes if cpu_probe else None,
        "probe_quiet_s": probe_quiet if cpu_probe else None, "warmup": warmup, "warmups": warmups if warmup else 0,
        "max_seconds": max_seconds, "timeout_s": timeout, "seed": seed, "url": url, "server_started": url is None,
        "streamlit": streamlit.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if url is None:
        proc, url = start_server(server_log or DEFAULT_SERVER_LOG)
        pid = proc.pid
        result["run"]["url"] = url
    elif pid is None:
        pid = listening_pid(urlsplit(url).port or (443 if url.startswith("https") else 80))
    try:
        if proc is not None:
            try:
                wait_healthy(proc, url, timeout_s=max(1.0, min(120.0, deadline - time.monotonic())))
            except ServerError as exc:
                result.update({"errors": 1, "samples": {"errors": [f"the server did not start: {exc}"]}})
                return result
            result["server_start_s"] = round(time.monotonic() - begin, 2)
        rss_start = rss_mb(pid)
        result.update(asyncio.run(_class(
            url, pid, sessions=sessions, changes=changes, pause=pause, views=views, cpu_probe=cpu_probe,
            probe_changes=probe_changes, warmup=warmup, timeout=timeout, seed=seed, deadline=deadline,
            probe_quiet=probe_quiet, warmups=warmups)))
        result["server"]["rss_mb"] = {"start": rss_start, **result["server"]["rss_mb"]}
        if proc is not None and proc.poll() is not None:
            result["errors"] += 1
            result["samples"]["errors"].append(f"the server exited with {proc.returncode}")
        result["server"]["alive"] = proc.poll() is None if proc is not None else None
    finally:
        if proc is not None:
            stop_server(proc)
    result["run"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["total_s"] = round(time.monotonic() - begin, 2)
    return result


def failed(result: dict) -> bool:
    return any(result.get(k, 0) for k in ("errors", "exceptions", "wrong_numbers", "wrong_state", "disconnects"))


# --- command line ------------------------------------------------------------------------------

def _number(kind, low, inclusive: bool = True):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not math.isfinite(value) or (value < low if inclusive else value <= low):
            raise argparse.ArgumentTypeError(f"{text} must be {'at least' if inclusive else 'more than'} {low}")
        return value
    return parse


def _url(text: str) -> str:
    try:
        return loopback_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sessions", type=_number(int, 1), default=30, help="students at the same time")
    parser.add_argument("--changes", type=_number(int, 0), default=10, help="changes each student makes")
    parser.add_argument("--pause", type=_number(float, 0), default=0.0,
                        help="mean seconds between a student's changes (exponential); 0: back to back")
    parser.add_argument("--all-views", action="store_true", help="also the Predictions and Latency views")
    parser.add_argument("--cpu-probe", action="store_true",
                        help="first measure the server's CPU per rerun with one warm session alone")
    parser.add_argument("--probe-changes", type=_number(int, 1), default=3,
                        help="configuration changes per view in the CPU probe")
    parser.add_argument("--probe-quiet", type=_number(float, 0), default=2.0,
                        help="seconds the CPU probe waits before each change, so that the background model "
                             "build a change starts has ended before the next rerun is measured")
    parser.add_argument("--warmups", type=_number(int, 1), default=1,
                        help="warm-up sessions at once (behind a balancer: one per app process)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the warm-up session (the students then pay the server's first-time costs)")
    parser.add_argument("--max-seconds", type=_number(float, 0, inclusive=False), default=900,
                        help="no new change after this long (server start included); runs under way finish, "
                             "each within --timeout")
    parser.add_argument("--timeout", type=_number(float, 0, inclusive=False), default=120,
                        help="seconds one run may take before it counts as an error")
    parser.add_argument("--seed", type=int, default=0, help="seed of the students' random choices")
    parser.add_argument("--url", type=_url, default=None,
                        help="a running app on loopback, e.g. http://127.0.0.1:8501 (default: start one)")
    parser.add_argument("--pid", type=_number(int, 1), default=None,
                        help="the --url server's process id, for RSS and CPU (default: the port's listener)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON file (default bench/results/classroom.json)")
    args = parser.parse_args(argv)
    if args.pid is not None and args.url is None:
        parser.error("--pid only goes with --url (a server started here is measured anyway)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = classroom(args.sessions, args.changes, pause=args.pause, all_views=args.all_views,
                       cpu_probe=args.cpu_probe, probe_changes=args.probe_changes, probe_quiet=args.probe_quiet,
                       warmup=args.warmup, warmups=args.warmups,
                       max_seconds=args.max_seconds, timeout=args.timeout, seed=args.seed, url=args.url, pid=args.pid)
    write_result("classroom", result, args.out)
    return 1 if failed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
