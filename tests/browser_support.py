"""Shared pieces for driving the real app in Debian's Chromium:
start `streamlit run explorer/app.py` on a free port, launch Chromium through Playwright without
`playwright install`, and wait for a rerun to settle. Used by bench/ui_latency.py; plain
functions (no pytest), so scripts can import them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from shufflenet.settings import quiet_tensorflow_env

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}


class ServerError(RuntimeError):
    """The Streamlit server exited or did not answer in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, port: int | None = None, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """`streamlit run explorer/app.py` in the background (quiet TensorFlow, offline settings);
    `args` are more `streamlit run` options, e.g. ("--theme.base", "dark")."""
    port = port or free_port()
    env = {**os.environ, **quiet_tensorflow_env()}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 (the child keeps it; closed when the process is stopped)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "explorer/app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         *args],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    proc.log_file = log  # type: ignore[attr-defined]
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerError(f"streamlit exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            if r.read().strip() == b"ok":
                return
        if time.monotonic() > deadline:
            raise ServerError(f"streamlit did not answer within {timeout_s} s")
        time.sleep(0.05)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    log = getattr(proc, "log_file", None)
    if log:
        log.close()


@contextlib.contextmanager
def chromium(timeout_ms: int = 60_000) -> Iterator:
    """A Playwright Chromium browser (Debian's binary)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=timeout_ms)
        try:
            yield browser
        finally:
            browser.close()


def settle(page) -> None:
    """Wait for the rerun a control just triggered to finish."""
    page.wait_for_timeout(300)  # widgets send their value after a short delay
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]")
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]")
    page.wait_for_function("() => document.querySelectorAll('[data-stale=true]').length === 0")
