"""A class's server (`make class`, deploy/balancer.py): HAProxy in front of two Streamlit
processes, started once for this module on free loopback ports.

Which process a client is on is read three ways: the sticky cookie HAProxy set, HAProxy's own
counters (stats socket), and the app processes themselves: an upload to a session is accepted
(204) only by the process that holds that session, and refused (400) by the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import classroom
import pytest
from st_protocol import FINISHED, XSRF_COOKIE, Session, fetch_cookies

from deploy import balancer

ROOT = Path(__file__).resolve().parents[1]
HAPROXY = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (make system, or "
                                                           "apt-get install haproxy)")
COOKIE = balancer.COOKIE
#: Two shared links, one per view kind: the Overview checks its MACs figures against the library.
LINKS = ("view=overview&task=imagenet&groups=8&blocks=2%2C3%2C1&reduction=0.3&scale=0.5",
         "view=complexity&groups=8")
#: Seconds within which a killed process must be marked down (checks every 1 s, down after 2
#: failures; the rest is slack for a busy machine).
MARKED_DOWN_WITHIN_S = 6.0


# --- without a server ---------------------------------------------------------------------------

@needs_haproxy
def test_the_filled_in_template_is_a_configuration_haproxy_accepts(tmp_path):
    apps = [balancer.App("app0", 8601), balancer.App("app1", 8602)]
    config = tmp_path / "haproxy.cfg"
    config.write_text(balancer.render_config(apps, "127.0.0.1", 8501, tmp_path / "haproxy.sock"))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = config.read_text()
    assert "server app0 127.0.0.1:8601 check cookie app0" in text and "server app1 127.0.0.1:8602" in text
    assert f"cookie {COOKIE} insert" in text and "bind 127.0.0.1:8501" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--processes", "0"], "use 1 to 16"),
    (["--processes", "two"], "not a whole number"),
    (["--port", "70000"], "use 1 to 65535"),
    (["--address", "everywhere"], "not an IP address"),
])
def test_bad_arguments_say_what_is_allowed(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        balancer.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_without_haproxy_the_launcher_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(balancer.shutil, "which", lambda name: None)
    monkeypatch.setattr(balancer.os, "access", lambda path, mode: False)
    with pytest.raises(balancer.LaunchError, match=r"make system.*make run"):
        balancer.haproxy_binary()


# --- one class of two processes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """The launcher as `make class` runs it, with 2 processes; yields (launcher, state)."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (make system, or apt-get install haproxy)")
    from browser_support import free_port

    folder = tmp_path_factory.mktemp("class")
    state_file = folder / "state.json"
    log = open(folder / "class.log", "w")  # noqa: SIM115 - closed below
    launcher = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy" / "balancer.py"), "--processes", "2", "--port", str(free_port()),
         "--state", str(state_file), "--no-restart"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not state_file.exists():
            if launcher.poll() is not None:
                pytest.fail(f"the launcher exited with {launcher.returncode}: {(folder / 'class.log').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("the class did not start within 240 s")
            time.sleep(0.2)
        state = json.loads(state_file.read_text())
        yield launcher, state
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
            try:
                launcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                launcher.kill()
        log.close()


def app_urls(state) -> dict[str, str]:
    return {a["name"]: f"http://127.0.0.1:{a['port']}" for a in state["apps"]}


def upload_status(base_url: str, session_id: str, cookies: dict[str, str], token: str | None = None) -> int | None:
    """A multipart PUT to a session's upload endpoint, sending `cookies` and the XSRF token in the
    header (by default the cookie's, as the frontend does)."""
    token = cookies[XSRF_COOKIE] if token is None else token
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\nPNG\r\n--{boundary}--\r\n").encode()
    request = urllib.request.Request(
        f"{base_url}/_stcore/upload_file/{session_id}/{uuid.uuid4().hex}", data=body, method="PUT",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": token,
                 "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return None  # nothing listens there (a killed process)


def holders(state, session: Session) -> list[str]:
    """The app processes that know this session (asked directly, past the balancer)."""
    xsrf = {XSRF_COOKIE: session.cookies[XSRF_COOKIE]}
    return [name for name, url in app_urls(state).items() if upload_status(url, session.page.session_id, xsrf) == 204]


async def visit(url: str, link: str, cookies: dict[str, str] | None = None) -> Session:
    """A tab that opens `link` through the balancer (with `cookies` already in its jar)."""
    session = Session(url, cookies)
    await session.open(60)
    result = await session.rerun(180, link)
    assert result.status == FINISHED.FINISHED_SUCCESSFULLY, FINISHED.Name(result.status)
    return session


def shows_its_link(session: Session, link: str) -> list[str]:
    """Problems with the page against the link (title, address bar, MACs figures, exceptions)."""
    page = session.page
    state, _ = classroom.state_from_query(link)
    problems = classroom.check_state(page.headings(), page.query_string, state)
    problems += classroom.check_numbers(page.metrics(), classroom.config_from_state(state), state["view"])[0]
    return problems + page.exceptions()


def gather(*coros):
    async def both():
        return await asyncio.gather(*coros)
    return asyncio.run(both())


@pytest.mark.slow
def test_new_clients_spread_over_the_processes_and_stay_on_theirs(klass):
    _, state = klass
    url = state["url"]

    async def scenario():
        sessions = await asyncio.gather(*(visit(url, LINKS[0]) for _ in range(4)))
        try:
            out = []
            for s in sessions:
                first = s.cookies.get(COOKIE)
                again = await s.rerun(180)  # a later run of the same tab: the same websocket, the same process
                out.append((first, again.status, await asyncio.to_thread(holders, state, s), s.cookies, s))
            # The tab reconnects with its cookie jar (a reload): HAProxy keeps it on its process.
            reloads = [await visit(url, LINKS[0], dict(s.cookies)) for s in sessions[:2]]
            out_reloads = [(r.cookies.get(COOKIE), await asyncio.to_thread(holders, state, r)) for r in reloads]
            for r in reloads:
                await r.close()
            return out, out_reloads
        finally:
            for s in sessions:
                await s.close()

    runs, reloads = asyncio.run(scenario())
    names = {a["name"] for a in state["apps"]}
    assert {first for first, *_ in runs} == names, runs  # four new tabs reach both processes
    for first, status, held, _, _ in runs:
        assert status == FINISHED.FINISHED_SUCCESSFULLY
        assert held == [first], (first, held)  # the session lives where the cookie points
    for (cookie, held), (first, *_) in zip(reloads, runs, strict=False):
        assert cookie == first and held == [first], (cookie, held, first)


@pytest.mark.slow
def test_a_shared_link_shows_what_it_says_on_either_process(klass):
    _, state = klass

    async def on(name: str, link: str):
        session = await visit(state["url"], link, {COOKIE: name})
        try:
            return name, link, shows_its_link(session, link), await asyncio.to_thread(holders, state, session)
        finally:
            await session.close()

    results = gather(*(on(a["name"], link) for a in state["apps"] for link in LINKS))
    for name, link, problems, held in results:
        assert problems == [], (name, link, problems)
        assert held == [name], (name, held)


@pytest.mark.slow
def test_xsrf_passes_through_the_balancer_and_is_still_checked(klass):
    _, state = klass

    async def scenario():
        session = await visit(state["url"], LINKS[1])
        try:
            sid, jar = session.page.session_id, dict(session.cookies)
            good = await asyncio.to_thread(upload_status, state["url"], sid, jar)
            other = await asyncio.to_thread(fetch_cookies, state["url"], 30)  # another tab's token
            forged = await asyncio.to_thread(upload_status, state["url"], sid, jar, other[XSRF_COOKIE])
            return good, forged, jar
        finally:
            await session.close()

    good, forged, jar = asyncio.run(scenario())
    assert XSRF_COOKIE in jar and COOKIE in jar, jar
    assert good == 204  # the app's XSRF cookie and header reach the process that set them
    assert forged == 403  # ...and a header token that is not the cookie's is still refused there


@pytest.mark.slow
@pytest.mark.browser
def test_a_browser_stays_on_its_process_through_changes_and_a_reload(klass):
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from browser_support import CHROMIUM, VIEWPORT, chromium, settle

    if not CHROMIUM.exists():
        pytest.skip(f"Debian Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    _, state = klass
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(120_000)
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{state['url']}/?{LINKS[1]}")
        page.wait_for_selector("h1:has-text('Complexity')")
        settle(page)
        own = {c["name"]: c["value"] for c in context.cookies()}[COOKIE]
        other = next(a["name"] for a in state["apps"] if a["name"] != own)

        sidebar = page.locator("[data-testid=stSidebar]")
        sidebar.get_by_role("combobox", name="Groups g").click()
        page.get_by_role("option", name="3", exact=True).click()
        settle(page)
        page.wait_for_function("() => location.search.includes('groups=3')")
        stats = balancer.server_stats(state["stats_socket"])
        assert len(sockets) == 1, sockets  # one websocket, never reconnected
        assert int(stats[own]["scur"]) >= 1 and int(stats[other]["scur"]) == 0, {
            k: v["scur"] for k, v in stats.items()}

        page.reload()
        page.wait_for_selector("h1:has-text('Complexity')")
        settle(page)
        assert {c["name"]: c["value"] for c in context.cookies()}[COOKIE] == own
        assert "groups=3" in page.url and page.locator("[data-testid=stException]").count() == 0
        stats = balancer.server_stats(state["stats_socket"])
        assert int(stats[other]["scur"]) == 0, {k: v["scur"] for k, v in stats.items()}
        context.close()


@pytest.mark.slow
def test_a_killed_process_is_marked_down_and_the_class_goes_on(klass):
    _, state = klass
    url = state["url"]
    victim, live = state["apps"][0], state["apps"][1]

    async def scenario():
        survivor = await visit(url, LINKS[0], {COOKIE: live["name"]})
        doomed = await visit(url, LINKS[0], {COOKIE: victim["name"]})
        os.killpg(victim["pid"], signal.SIGKILL)
        start = time.monotonic()
        status = None
        while time.monotonic() - start < 30:
            status = (await asyncio.to_thread(balancer.server_states, state["stats_socket"]))[victim["name"]]
            if status.startswith("DOWN"):
                break
            await asyncio.sleep(0.1)
        marked_down_s = time.monotonic() - start
        # The tab on the live process changes something and sees the right page, no error.
        survivor_state = classroom.state_from_query(LINKS[0])[0]
        key, value, shown = classroom.next_change(
            random.Random(1), survivor_state, classroom.controls(survivor.page, survivor_state, classroom.BASE_VIEWS))
        survivor.page.set_widget(key, shown)
        survivor_state = classroom.apply_change(survivor_state, key, value)
        changed = await survivor.rerun(180)
        page = survivor.page
        survivor_problems = (classroom.check_state(page.headings(), page.query_string, survivor_state)
                             + page.exceptions())
        # New tabs, and the reload of the tab whose process died, reach the live process.
        fresh = await asyncio.gather(*(visit(url, link) for link in LINKS))
        reload = await visit(url, LINKS[1], dict(doomed.cookies))
        after = [(s.cookies[COOKIE], shows_its_link(s, link), await asyncio.to_thread(holders, state, s))
                 for s, link in [*zip(fresh, LINKS, strict=True), (reload, LINKS[1])]]
        # The reloaded tab still holds the XSRF cookie the dead process set; the live one accepts it.
        upload = await asyncio.to_thread(upload_status, url, reload.page.session_id, dict(reload.cookies))
        for s in (survivor, doomed, reload, *fresh):
            await s.close()
        return status, marked_down_s, changed.status, survivor_problems, after, upload, doomed.cookies

    status, marked_down_s, changed, survivor_problems, after, upload, old_jar = asyncio.run(scenario())
    print(f"marked down after {marked_down_s:.2f} s")
    assert status.startswith("DOWN") and marked_down_s < MARKED_DOWN_WITHIN_S, (status, marked_down_s)
    assert changed == FINISHED.FINISHED_SUCCESSFULLY and survivor_problems == [], survivor_problems
    for cookie, problems, held in after:
        assert cookie == live["name"] and held == [live["name"]], (cookie, held)
        assert problems == [], problems
    assert upload == 204 and old_jar[COOKIE] == victim["name"]


@pytest.mark.slow
def test_sigterm_stops_haproxy_and_every_app_process(klass):
    launcher, state = klass
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) == 0
    left = []
    for pid in [state["haproxy_pid"], *(a["pid"] for a in state["apps"])]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, 0)  # no error: something of that process group still runs
            left.append(pid)
    assert left == []
    port = int(state["url"].rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens on the class's port
    assert not Path(state["stats_socket"]).exists()
