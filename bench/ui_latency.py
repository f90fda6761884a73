"""The app's own latency, measured in Debian's Chromium through Playwright.

    python bench/ui_latency.py [--changes 10] [--views overview complexity]
                               [--every-view [VIEW ...]] [--view-changes 6]

- startup: from `streamlit run` (process start) to the first full render of the default view
  (Overview: six metrics, both tables drawn, the closing text) in a browser opened as soon as the
  server answers (target <= 12 s);
- change: from a control change (the key press on a slider, the click on a select option) to every
  element of the open view updated, as the median over --changes changes, for configurations
  the server has not seen before (cold, target <= 1.0 s) and for ones it has (warm, <= 0.3 s);
- with --every-view: each view named (all of them when none is named) is opened, then g is
  switched back and forth between two values --view-changes times (the first change shows a
  network this view has not shown yet, the others one it has); per view the median and max over
  the changes and over the warm ones (target <= 1.0 s for every view but Predictions and Latency,
  which run the model on the page).

"Every element updated": a MutationObserver on the main area records the time of its last DOM
change (no polling, which would itself load the page), and a hook on the canvas API the time of
the last drawing of a table (tables are canvases; their hidden accessibility cells lag the
drawing by 100-200 ms and are left out); the change is done when the script run
has finished, no element is stale, and nothing has changed for a second. Its latency is that
last change (or the end of the run, whichever is later) minus the time of the key press or
click, both on the page's clock. Signatures of every metric, table, chart, diagram and caption
before and after say how many elements changed.
Besides the total we report the part before the rerun started (the slider's own delay before
it sends its value) and the script run as the page sees it (state running -> notRunning).

Prints one JSON object; also writes bench/results/ui_latency.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from report import write_result  # noqa: E402

from explorer.sidebar import VIEWS  # noqa: E402
from tests.browser_support import VIEWPORT, chromium, settle, start_server, stop_server, wait_healthy  # noqa: E402

TARGETS = {"startup_s": 12.0, "cold_change_s": 1.0, "warm_change_s": 0.3, "view_change_s": 1.0}
#: Views whose changes run the model on the page (not held to the view-change target).
MODEL_VIEWS = ("Predictions", "Latency")
FULL_OVERVIEW_JS = (
    "() => document.querySelectorAll('[data-testid=stMetricValue]').length === 6 && "
    "[...document.querySelectorAll('[data-testid=stDataFrame]')].filter("
    "d => d.querySelector('[data-testid^=glide-cell]')).length === 2 && "
    "document.body.innerText.includes('Counting.')")
QUIET_MS = 1000

WATCH_JS = """
() => {
  const old = window.__watch;
  if (old) old.stop();
  const app = document.querySelector('[data-testid=stApp]');
  const main = document.querySelector('[data-testid=stMain]');
  const SEL = '[data-testid=stMetric], [data-testid=stDataFrame], [data-testid=stTable], ' +
              '[data-testid=stPlotlyChart], [data-testid=stGraphVizChart], [data-testid=stCaptionContainer], ' +
              '[data-testid=stHeading], [data-testid=stAlert]';
  function sig(el) {
    const id = el.dataset.testid;
    if (id === 'stDataFrame')
      return [...el.querySelectorAll('[data-testid^=glide-cell]')].map(c => c.textContent).join('|');
    if (id === 'stPlotlyChart')
      return [...el.querySelectorAll('.cartesianlayer path, .gtitle')].map(p => p.getAttribute('d') || p.textContent)
        .join('|');
    if (id === 'stGraphVizChart') { const s = el.querySelector('svg'); return s ? s.textContent : ''; }
    return el.textContent;
  }
  const signatures = () => [...main.querySelectorAll(SEL)].map(el => el.dataset.testid + ':' + sig(el));
  const w = window.__watch = {t0: null, runStart: null, runEnd: null, last: 0, before: signatures()};
  // Every DOM change in the main area after the key press or click (no polling: it would load the page).
  // Tables are drawn on a canvas (CANVAS_JS records the draws); their hidden accessibility cells
  // follow 100-200 ms later and are not what people see, so their mutations are left out.
  const content = new MutationObserver(records => {
    if (w.t0 === null) return;
    const seen = records.some(r => {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      return !(el && el.closest('[data-testid^=glide-cell]'));
    });
    if (seen) w.last = performance.now();
  });
  content.observe(main, {subtree: true, childList: true, attributes: true, characterData: true});
  // Records, not the current attribute: a fast run can start and end before the callback runs.
  const state = new MutationObserver(records => {
    const now = performance.now();
    if (w.t0 === null) return;
    records.forEach((r, i) => {  // record i: oldValue -> the next record's oldValue (or the attribute now)
      const after = i + 1 < records.length ? records[i + 1].oldValue : app.getAttribute('data-test-script-state');
      if (after === 'running' && w.runStart === null) w.runStart = now;
      if (r.oldValue === 'running' && after !== 'running' && w.runStart !== null && w.runEnd === null) w.runEnd = now;
    });
  });
  state.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
  const start = () => { if (w.t0 === null) w.t0 = performance.now(); };
  document.addEventListener('keydown', start, true);
  document.addEventListener('pointerdown', start, true);
  w.stop = () => {
    content.disconnect(); state.disconnect();
    document.removeEventListener('keydown', start, true);
    document.removeEventListener('pointerdown', start, true);
  };
  w.finish = () => {
    w.stop();
    const after = signatures();
    const changed = after.filter((s, i) => s !== w.before[i]).length;
    if (w.t0 !== null && window.__tableDrawn > w.t0) w.last = Math.max(w.last, window.__tableDrawn);
    return {t0: w.t0, runStart: w.runStart, runEnd: w.runEnd, last: w.last, elements: after.length, changed,
            origin: performance.timeOrigin};
  };
  return w.before.length;
}
"""

CANVAS_JS = """
(() => {
  // The time of the last drawing on a table's canvas (st.dataframe is a glide-data-grid canvas).
  window.__tableDrawn = 0;
  const isTable = new WeakMap();
  for (const name of ['fillText', 'fillRect', 'drawImage', 'clearRect']) {
    const original = CanvasRenderingContext2D.prototype[name];
    CanvasRenderingContext2D.prototype[name] = function (...args) {
      const c = this.canvas;
      let table = isTable.get(c);
      if (table === undefined && c.isConnected) {
        table = !!c.closest('[data-testid=stDataFrame]');
        isTable.set(c, table);
      }
      if (table) window.__tableDrawn = performance.now();
      return original.apply(this, args);
    };
  }
})();
"""

DONE_JS = f"""
() => {{
  const w = window.__watch;
  if (w.t0 === null || w.runEnd === null) return false;
  if (document.querySelectorAll('[data-stale=true]').length) return false;
  const now = performance.now();
  const last = Math.max(w.last, window.__tableDrawn > w.t0 ? window.__tableDrawn : 0, w.runEnd);
  return now - last > {QUIET_MS};
}}
"""


class ChangeTimeout(RuntimeError):
    """A change whose rerun was not seen to finish (reported, not timed)."""


def _median(xs):
    return round(statistics.median(xs), 3) if xs else None


def measure_change(page, act) -> dict:
    """Install the watcher, do `act()` (a key press or click), wait until the view is done."""
    page.evaluate(WATCH_JS)
    act()
    try:
        page.wait_for_function(DONE_JS, timeout=30_000, polling=50)
    except PlaywrightTimeout:
        state = page.evaluate("() => ({...window.__watch.finish(), now: performance.now(), "
                              "state: document.querySelector('[data-testid=stApp]').dataset.testScriptState, "
                              "stale: document.querySelectorAll('[data-stale=true]').length})")
        raise ChangeTimeout(f"the view did not settle within 30 s: {state}") from None
    w = page.evaluate("() => window.__watch.finish()")
    done = max(w["last"], w["runEnd"])
    return {"total_s": round((done - w["t0"]) / 1000, 3),
            "before_rerun_s": round((w["runStart"] - w["t0"]) / 1000, 3),
            "script_run_s": round((w["runEnd"] - w["runStart"]) / 1000, 3),
            "elements": w["elements"], "elements_changed": w["changed"]}


def slider(page, label: str):
    return page.locator("[data-testid=stSidebar] [data-testid=stSlider]").filter(has_text=label).locator(
        "input[type=range]")


def press(page, label: str, key: str):
    def act():
        page.keyboard.press(key)
    slider(page, label).focus()
    return act


def choose_groups(page, g: int):
    page.locator("[data-testid=stSidebar]").get_by_role("combobox", name="Groups g").click()
    option = page.get_by_role("option", name=str(g), exact=True)
    option.wait_for()
    return option.click


def choose_view(page, view: str) -> None:
    page.locator("[data-testid=stSidebar] [data-testid=stRadio] label").filter(has_text=view).first.click()
    settle(page)
    page.wait_for_selector(f"h1:has-text('{view}')")


def series(page, steps) -> list[dict]:
    out = []
    for describe, make_act in steps:
        act = make_act()
        try:
            r = measure_change(page, act)
        except ChangeTimeout as exc:
            print(f"  {describe}: not timed, {exc}", file=sys.stderr, flush=True)
            out.append({"change": describe, "error": str(exc)})
            settle(page)
            continue
        r["change"] = describe
        out.append(r)
        print(f"  {describe}: {r['total_s']:.3f} s (rerun starts after {r['before_rerun_s']:.3f} s, script "
              f"{r['script_run_s']:.3f} s; {r['elements_changed']} element changes)", file=sys.stderr, flush=True)
    return out


def summary(all_rows: list[dict], limit: float) -> dict:
    rows = [r for r in all_rows if "error" not in r]
    totals = [r["total_s"] for r in rows]
    return {"median_s": _median(totals), "max_s": round(max(totals), 3) if totals else None, "limit_s": limit,
            "met": bool(totals) and _median(totals) <= limit, "timed": len(rows),
            "not_timed": len(all_rows) - len(rows),
            "median_before_rerun_s": _median([r["before_rerun_s"] for r in rows]),
            "median_script_run_s": _median([r["script_run_s"] for r in rows]), "changes": all_rows}


def select_groups_now(page, g: int) -> None:
    """Choose g, not measured (a no-op when g is already chosen)."""
    current = page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text="Groups g")
    if current.inner_text().strip().endswith(str(g)):
        return
    choose_groups(page, g)()
    settle(page)


def view_series(page, view: str, name: str, n: int) -> dict:
    """Cold, then warm changes on one view. Cold: each change gives a configuration this server has
    not seen (the Overview walks stage 3's units up from 1 at g = 2, the Complexity view stage 4's
    units down from 16 at g = 4; nothing earlier used those). Warm: back and forth between two
    configurations just seen, by slider and by the Groups select."""
    choose_view(page, name)
    label, home, step, back, g_cold, g_other = (
        ("Units in stage 3", "Home", "ArrowRight", "ArrowLeft", 2, 8) if view == "overview"
        else ("Units in stage 4", "End", "ArrowLeft", "ArrowRight", 4, 1))
    select_groups_now(page, g_cold)
    slider(page, label).focus()
    page.keyboard.press(home)  # one rerun, not measured: the start of the walk
    settle(page)
    print(f"{name}: cold (new configurations)", file=sys.stderr, flush=True)
    cold = series(page, [(f"{label} {step}", partial(press, page, label, step))] * n)
    print(f"{name}: warm (configurations seen before), slider", file=sys.stderr, flush=True)
    keys = [back if i % 2 == 0 else step for i in range(n)]
    warm = series(page, [(f"{label} {k}", partial(press, page, label, k)) for k in keys])
    # Make g_other seen at this configuration, then alternate.
    select_groups_now(page, g_other)
    select_groups_now(page, g_cold)
    print(f"{name}: warm (configurations seen before), Groups select", file=sys.stderr, flush=True)
    gs = [g_other if i % 2 == 0 else g_cold for i in range(n)]
    warm_select = series(page, [(f"Groups g -> {g}", partial(choose_groups, page, g)) for g in gs])
    return {"cold_slider": summary(cold, TARGETS["cold_change_s"]),
            "warm_slider": summary(warm, TARGETS["warm_change_s"]),
            "warm_select": summary(warm_select, TARGETS["warm_change_s"])}


def startup(page, log: Path):
    """Start the server and open the Overview in `page` as soon as it answers:
    (process, url, the startup figures)."""
    t_start = time.time()
    proc, url = start_server(log)
    try:
        wait_healthy(proc, url)
        t_healthy = time.time()
        page.goto(url)
        page.wait_for_selector("[data-testid=stMetricValue]")
        page.evaluate(WATCH_JS)
        page.evaluate("() => { window.__watch.t0 = 0; window.__watch.runStart = 0; }")
        page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]")
        page.wait_for_function(FULL_OVERVIEW_JS, timeout=60_000, polling=50)
        page.evaluate("() => { const w = window.__watch; if (w.runEnd === null) w.runEnd = performance.now(); }")
        page.wait_for_function(DONE_JS, timeout=60_000, polling=50)
    except BaseException:
        stop_server(proc)
        raise
    w = page.evaluate("() => window.__watch.finish()")
    rendered = (w["origin"] + max(w["last"], w["runEnd"])) / 1000
    return proc, url, {"total_s": round(rendered - t_start, 3), "server_answers_s": round(t_healthy - t_start, 3),
                       "page_to_render_s": round(rendered - t_healthy, 3), "limit_s": TARGETS["startup_s"],
                       "met": rendered - t_start <= TARGETS["startup_s"]}


def every_view_series(page, view: str, changes: int, values=(8, 3)) -> dict:
    """g back and forth between `values` in one view, `changes` times."""
    choose_view(page, view)
    select_groups_now(page, values[1])
    rows = []
    for i in range(changes):
        g = values[i % 2]
        try:
            r = measure_change(page, choose_groups(page, g))
        except ChangeTimeout as exc:
            rows.append({"change": f"g -> {g}", "error": str(exc)})
            settle(page)
            continue
        rows.append({"change": f"g -> {g}", **r})
        print(f"  {view}: g -> {g}: {r['total_s']:.3f} s (script {r['script_run_s']:.3f} s)", file=sys.stderr,
              flush=True)
    timed = [r["total_s"] for r in rows if "error" not in r]
    warm = [r["total_s"] for r in rows[1:] if "error" not in r]
    limit = None if view in MODEL_VIEWS else TARGETS["view_change_s"]
    return {"median_s": _median(timed), "max_s": max(timed, default=None), "warm_median_s": _median(warm),
            "limit_s": limit, "met": None if limit is None else bool(timed) and _median(timed) <= limit,
            "not_timed": len(rows) - len(timed), "changes": rows}


def run(args) -> dict:
    log = ROOT / "bench" / "results" / "ui_latency_server.log"
    results: dict = {}
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(120_000 if args.every_view is not None else 60_000)
        page.add_init_script(CANVAS_JS)
        proc, _, results["startup"] = startup(page, log)
        try:
            print(f"startup: {results['startup']}", file=sys.stderr, flush=True)
            for view in args.views:
                name = {"overview": "Overview", "complexity": "Complexity"}[view]
                results[view] = view_series(page, view, name, args.changes)
            if args.every_view is not None:
                results["every_view"] = {view: every_view_series(page, view, args.view_changes)
                                         for view in args.every_view or VIEWS}
        finally:
            stop_server(proc)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=10, help="changes per series (default 10)")
    p.add_argument("--views", nargs="*", choices=("overview", "complexity"), default=["overview", "complexity"],
                   help="views for the cold/warm slider and select series (none: only the startup)")
    p.add_argument("--every-view", nargs="*", choices=list(VIEWS), default=None, metavar="VIEW",
                   help=f"also switch g back and forth in these views (none named: all of {', '.join(VIEWS)})")
    p.add_argument("--view-changes", type=int, default=6, help="changes of g per view for --every-view")
    args = p.parse_args(argv)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    results = run(args)
    out = {"benchmark": "ui_latency",
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "load_average_at_start": load_at_start,
                       "load_average": [round(x, 2) for x in os.getloadavg()]},
           "targets": TARGETS, "quiet_ms": QUIET_MS, **results}
    write_result("ui_latency", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
