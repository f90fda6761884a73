"""Load: several browser sessions at once against one real server, each changing the
configuration many times and checking every MACs figure it is shown against the library.

    python bench/load.py [--sessions 8] [--changes 30] [--max-seconds 900] [--url URL]
                         [--out bench/results/load.json]

Starts `streamlit run explorer/app.py` on a free loopback port (unless --url is given) and opens
`--sessions` pages in one Debian Chromium (Playwright, async: the pages really work at the same
time; each page is its own Streamlit session). Each page opens the Overview, then makes
`--changes` changes -- another g in the Groups select, or one step of a slider (units of a stage,
width, bottleneck) -- as a person would, with the keyboard and the mouse. After each change it reads
the "MACs without FC (Table 1)" and "MACs with FC" figures the page shows and compares them with
`shufflenet.complexity.totals` of the configuration the session itself chose (and the address bar
with that configuration). Prints one JSON object (also written to --out): changes made,
exceptions, wrong numbers, seconds per change, server memory. Stops by itself after --changes per
session or --max-seconds, whichever comes first.

(AppTest instances cannot stand in for sessions here: AppTest swaps a process-wide mock runtime
in and out around every run, so two running at once break each other.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests", ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

#: slider label -> (state key, low, high, step)
SLIDERS = {
    "Units in stage 2": ("blocks_stage2", 1, 16, 1),
    "Units in stage 3": ("blocks_stage3", 1, 16, 1),
    "Units in stage 4": ("blocks_stage4", 1, 16, 1),
    "Width scale s": ("scale", 0.25, 3.0, 0.25),
    "Bottleneck reduction": ("reduction", 0.05, 1.0, 0.05),
}
GROUPS = (1, 2, 3, 4, 8)
#: metric label -> key of complexity.totals
METRICS = {"MACs without FC (Table 1)": "conv_macs", "MACs with FC": "macs"}
STEP_TIMEOUT_MS = 60_000
SETTLE_JS = ("() => { const a = document.querySelector('[data-testid=stApp]'); return a && "
             "a.dataset.testConnectionState === 'CONNECTED' && a.dataset.testScriptState === 'notRunning' && "
             "document.querySelectorAll('[data-stale=true]').length === 0 }")


def expected(state: dict) -> dict:
    from shufflenet import ShuffleNetConfig, complexity

    config = ShuffleNetConfig(groups=state["groups"], blocks=(state["blocks_stage2"], state["blocks_stage3"],
                                                             state["blocks_stage4"]),
                              reduction=round(state["reduction"], 2), scale=round(state["scale"], 2))
    return complexity.totals(config)


def state_from_url(url: str) -> dict:
    from explorer.sidebar import parse_query_params

    params = {k: v[-1] for k, v in parse_qs(urlparse(url).query).items()}
    state, _ = parse_query_params(params)
    return {k: state[k] for k in ("groups", "blocks_stage2", "blocks_stage3", "blocks_stage4", "scale",
                                  "reduction")}


class Session:
    """One person in one browser page: their own choices and their own tally."""

    def __init__(self, index: int, changes: int, deadline: float):
        self.index, self.changes, self.deadline = index, changes, deadline
        self.rng = random.Random(index)
        self.state = {"groups": 3, "blocks_stage2": 4, "blocks_stage3": 8, "blocks_stage4": 4, "scale": 1.0,
                      "reduction": 0.25}
        self.done = 0
        self.websockets = 0  # more than one: the page lost its connection and made a new one
        self.exceptions: list[str] = []
        self.wrong: list[str] = []
        self.seconds: list[float] = []

    async def settle(self, page) -> None:
        await page.wait_for_timeout(300)  # widgets send their value after a short delay
        await page.wait_for_function(SETTLE_JS, timeout=STEP_TIMEOUT_MS)

    async def shown(self, page) -> dict:
        out = {}
        for label in METRICS:
            metric = page.locator("[data-testid=stMain] [data-testid=stMetric]").filter(
                has=page.locator("[data-testid=stMetricLabel]", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
            out[label] = (await metric.first.locator("[data-testid=stMetricValue]").inner_text()).strip()
        return out

    async def check(self, page, step: int) -> None:
        """Wait (bounded) until the page shows this session's configuration, then compare."""
        totals = expected(self.state)
        want = {label: f"{totals[key]:,}" for label, key in METRICS.items()}
        deadline = time.monotonic() + 30
        seen = url_state = None
        while time.monotonic() < deadline:
            url_state = state_from_url(page.url)
            seen = await self.shown(page)
            if seen == want and url_state == self.state:
                return
            await page.wait_for_timeout(200)
        self.wrong.append(f"session {self.index} step {step}: shows {seen} at {urlparse(page.url).query}, "
                          f"expected {want} for {self.state}")

    async def change(self, page) -> None:
        """One change, as a person makes it; updates this session's idea of the configuration."""
        sidebar = page.locator("[data-testid=stSidebar]")
        if self.rng.random() < 0.3:
            g = self.rng.choice([g for g in GROUPS if g != self.state["groups"]])
            from playwright.async_api import TimeoutError as PlaywrightTimeout

            box = sidebar.get_by_role("combobox", name="Groups g")
            for _ in range(2):  # a click the busy browser dropped (the box still shows the old g) is made again
                await box.click()
                await page.get_by_role("option", name=str(g), exact=True).click()
                with contextlib.suppress(PlaywrightTimeout):
                    await sidebar.locator("[data-testid=stSelectbox]").filter(has_text="Groups g").filter(
                        has_text=re.compile(rf"(^|\D){g}(\D|$)")).first.wait_for(timeout=5_000)
                    break
            self.state["groups"] = g
            return
        label = self.rng.choice(list(SLIDERS))
        key, low, high, step = SLIDERS[label]
        value = self.state[key]
        direction = self.rng.choice((-1, 1))
        if not low <= round(value + direction * step, 2) <= high:
            direction = -direction
        await sidebar.locator("[data-testid=stSlider]").filter(has_text=label).locator("input[type=range]").focus()
        await page.keyboard.press("ArrowRight" if direction > 0 else "ArrowLeft")
        self.state[key] = round(value + direction * step, 2)

    async def run(self, browser, url: str) -> None:
        page = None
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on("pageerror", lambda exc: self.exceptions.append(f"session {self.index} page error: {exc}"))
            page.on("websocket", lambda ws: setattr(self, "websockets", self.websockets + 1))
            await page.goto(f"{url}/?view=overview", timeout=STEP_TIMEOUT_MS)
            await page.wait_for_selector("h1:has-text('Overview')")
            await self.settle(page)
            await self.check(page, 0)
            for step in range(1, self.changes + 1):
                if time.monotonic() > self.deadline:
                    break
                t0 = time.monotonic()
                await self.change(page)
                await self.settle(page)
                await self.check(page, step)
                self.seconds.append(time.monotonic() - t0)
                self.done += 1
                shown_exceptions = await page.locator("[data-testid=stException]").count()
                if shown_exceptions:
                    text = await page.locator("[data-testid=stException]").first.inner_text()
                    self.exceptions.append(f"session {self.index} step {step}: {text[:300]}")
                    break
        except Exception as exc:  # noqa: BLE001 - a session that dies is reported, not raised
            self.exceptions.append(f"session {self.index}: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            if page is not None:
                await page.close()


async def _load(url: str, sessions: int, changes: int, max_seconds: float) -> list[Session]:
    from browser_support import CHROMIUM, CHROMIUM_ARGS
    from playwright.async_api import async_playwright

    deadline = time.monotonic() + max_seconds
    users = [Session(i, changes, deadline) for i in range(sessions)]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=STEP_TIMEOUT_MS)
        try:
            await asyncio.wait_for(asyncio.gather(*(u.run(browser, url) for u in users)),
                                   timeout=max_seconds + 180)
        finally:
            await browser.close()
    return users


def load(sessions: int = 8, changes: int = 30, max_seconds: float = 900, url: str | None = None,
         server_log: Path | None = None) -> dict:
    """Run the load against `url`, or against a server started (and stopped) here."""
    from browser_support import start_server, stop_server, wait_healthy
    from soak import rss_mb

    start = time.monotonic()
    proc = None
    if url is None:
        proc, url = start_server(server_log or ROOT / "tests" / "artifacts" / "load_server.log")
        wait_healthy(proc, url)
    try:
        rss_before = rss_mb(proc.pid) if proc else None
        users = asyncio.run(_load(url, sessions, changes, max_seconds))
        rss_after = rss_mb(proc.pid) if proc else None
        server_alive = proc is None or proc.poll() is None
    finally:
        if proc is not None:
            stop_server(proc)
    seconds = sorted(s for u in users for s in u.seconds)
    return {
        "benchmark": "load",
        "url": url,
        "sessions": sessions,
        "changes_per_session": changes,
        "changes_done": [u.done for u in users],
        "websockets_per_session": [u.websockets for u in users],
        "exceptions": [e for u in users for e in u.exceptions] + ([] if server_alive else ["the server died"]),
        "wrong_numbers": [w for u in users for w in u.wrong],
        "stopped_by_time": any(u.done < changes for u in users),
        "seconds_per_change_median": round(statistics.median(seconds), 2) if seconds else None,
        "seconds_per_change_p95": round(seconds[int(0.95 * (len(seconds) - 1))], 2) if seconds else None,
        "server_rss_mb": {"before": rss_before, "after": rss_after},
        "total_seconds": round(time.monotonic() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--url", default=None, help="an already running app (default: start one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args(argv)
    result = load(args.sessions, args.changes, args.max_seconds, args.url)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0 if not result["exceptions"] and not result["wrong_numbers"] else 1


if __name__ == "__main__":
    sys.exit(main())
