"""Robustness of a classroom server against clients that do not behave like a browser tab, on a
real server through Streamlit's own protocol (bench/st_protocol.py):

- a client that skips the browser's file filter and uploads an `.exe` or an `.html` page to the
  upload endpoint (`/_stcore/upload_file/<session>/<file>`) gets the app's clear message, not a
  page exception (Streamlit's own check of the name refused it before the page ran, and then
  every later run of the session: the uploaders now leave the check to the app, which reads
  the content), and the rest of the view is shown;
- a tab closed in the middle of a training leaves no orphan: the training process ends soon after
  nobody looks at it any more (`shufflenet.jobs`; the test shortens the 60 s to a few seconds with
  `SHUFFLENET_TRAINING_ABANDON_S`), the server's threads and memory come back, and the next
  session can start its own training;
- a tab closed in the middle of a latency measurement: the measurement finishes on the server and
  the next session that opens that network's Latency view gets the result.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import st_protocol
from browser_support import free_port, stop_server, wait_healthy
from st_protocol import FINISHED, Session
from streamlit.proto.WidgetStates_pb2 import WidgetState

from shufflenet.settings import quiet_tensorflow_env

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

ABANDON_S = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run explorer/app.py` as a person starts it (config.toml decides the rest), with
    trainings abandoned after ABANDON_S seconds without anyone looking."""
    folder = tmp_path_factory.mktemp("robust")
    port = free_port()
    env = {**os.environ, **quiet_tensorflow_env(),
           "SHUFFLENET_TRAINING_ABANDON_S": str(ABANDON_S)}
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed by stop_server
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "explorer/app.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_file = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, timeout_s=120)
        yield proc, url
    finally:
        stop_server(proc)


def run(coro):
    return asyncio.run(coro)


async def open_page(url: str, query: str) -> Session:
    session = Session(url)
    await session.open(60)
    result = await session.rerun(180, query)
    assert result.status == FINISHED.FINISHED_SUCCESSFULLY
    return session


def element_id(session: Session, key: str, kind: str) -> str:
    """The widget id of the element of type `kind` whose user key is `key` (mounted or not)."""
    ids = [el.id for _, k, el in session.page.iter_elements(kind) if st_protocol.widget_key(el.id) == key]
    assert len(ids) == 1, (key, kind, [st_protocol.widget_key(getattr(el, "id", "")) for _, _, el in
                                       session.page.iter_elements(kind)])
    return ids[0]


async def click(session: Session, key: str, timeout: float = 180):
    """What a browser sends when the button `key` is clicked (after opening its expander, if any)."""
    wid = element_id(session, key, "button")
    session.page.widgets[wid] = WidgetState(id=wid, trigger_value=True)
    try:
        return await session.rerun(timeout)
    finally:
        session.page.widgets.pop(wid, None)


def texts(session: Session) -> list[str]:
    """Headings, Markdown, captions and alerts on the page."""
    page = session.page
    return page.headings() + [el.body for _, _, el in page.iter_elements("markdown")] + [
        el.body for _, _, el in page.iter_elements("alert")]


def progress(session: Session) -> list[str]:
    """The texts of the progress bars on the page (in a collapsed expander too)."""
    return [el.text for _, _, el in session.page.iter_elements("progress")]


def children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is `pid`."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return out


def trainings(pid: int) -> set[int]:
    """The server's training processes (multiprocessing's spawned children, not its resource tracker)."""
    return {p for p, cmd in children(pid).items() if "spawn_main" in cmd and "resource_tracker" not in cmd}


def status_value(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def wait_for(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# --- uploads that skip the browser's filter ---------------------------------------------------

def put_file(url: str, session_id: str, file_id: str, name: str, body: bytes, mime: str) -> int:
    """A multipart PUT to the upload endpoint, as the frontend sends one (with the XSRF token)."""
    token = st_protocol.xsrf_token(url, 30)
    boundary = uuid.uuid4().hex
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
               f"Content-Type: {mime}\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{url}/_stcore/upload_file/{session_id}/{file_id}", data=payload, method="PUT",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": token,
                 "Cookie": f"{st_protocol.XSRF_COOKIE}={token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def attach(session: Session, key: str, file_id: str, name: str, size: int) -> None:
    """The uploader `key` now holds the file, as after a browser's upload."""
    wid = element_id(session, key, "file_uploader")
    state = WidgetState(id=wid)
    info = state.file_uploader_state_value.uploaded_file_info.add()
    info.file_id, info.name, info.size = file_id, name, size
    info.file_urls.file_id = file_id
    info.file_urls.upload_url = f"/_stcore/upload_file/{session.page.session_id}/{file_id}"
    info.file_urls.delete_url = info.file_urls.upload_url
    session.page.widgets[wid] = state


EXE = b"MZ\x90\x00" + bytes(200)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


@pytest.mark.parametrize(("name", "body", "mime", "message"), [
    ("setup.exe", EXE, "application/x-msdownload", "setup.exe is not an image that can be read"),
    ("page.html", HTML, "text/html", "page.html is an HTML page, not an image"),
])
def test_a_picture_upload_of_the_wrong_type_gets_the_app_s_message(server, name, body, mime, message):
    _, url = server

    async def scenario():
        session = await open_page(url, "task=fashion-mnist&view=predictions")
        try:
            assert session.page.exceptions() == []
            file_id = uuid.uuid4().hex
            assert await asyncio.to_thread(put_file, url, session.page.session_id, file_id, name, body, mime) == 204
            attach(session, "pred_upload", file_id, name, len(body))
            shown = []
            for _ in range(2):  # the run with the new file, then the next one (the file is still there)
                result = await session.rerun(180)
                shown.append((result.status, session.page.exceptions(), texts(session)))
            return shown
        finally:
            await session.close()

    for status, exceptions, shown in run(scenario()):
        assert status == FINISHED.FINISHED_SUCCESSFULLY and exceptions == [], exceptions
        errors = [t for t in shown if message in t]
        assert len(errors) == 1 and "Upload a PNG, JPEG, WebP, BMP or GIF image" in errors[0], shown
        assert any("Accuracy on the first" in t or "Weights" in t for t in shown)  # the rest of the view is there


def test_a_weights_upload_of_the_wrong_type_gets_the_app_s_message(server):
    _, url = server

    async def scenario():
        session = await open_page(url, "task=fashion-mnist&view=predictions")
        try:
            options = session.page.options("pred_weights")
            session.page.set_widget("pred_weights", next(o for o in options if o.startswith("Upload weights")))
            await session.rerun(180)
            for key, name, body, mime in (("pred_weights_file", "setup.exe", EXE, "application/x-msdownload"),
                                          ("pred_manifest_file", "page.html", HTML, "text/html")):
                file_id = uuid.uuid4().hex
                assert await asyncio.to_thread(put_file, url, session.page.session_id, file_id, name, body,
                                               mime) == 204
                attach(session, key, file_id, name, len(body))
            result = await session.rerun(180)
            return result.status, session.page.exceptions(), texts(session)
        finally:
            await session.close()

    status, exceptions, shown = run(scenario())
    assert status == FINISHED.FINISHED_SUCCESSFULLY and exceptions == [], exceptions
    assert any("The manifest 'page.html' is not valid JSON" in t and "random weights" in t for t in shown), shown


# --- a tab closed mid-training ------------------------------------------------------------------

@pytest.mark.usefixtures("requires_fashion_mnist")
def test_a_tab_closed_mid_training_leaves_no_orphan_and_the_next_session_trains(server):
    proc, url = server
    query = "task=fashion-mnist&view=predictions&groups=2&scale=0.25&blocks=1,1,1"

    async def start_training() -> tuple[int, int, str]:
        session = await open_page(url, query)
        threads, rss = status_value(proc.pid, "Threads"), status_value(proc.pid, "VmRSS")
        # 20 epochs of the whole training set: many minutes, so only its abandonment can end it soon.
        wid = element_id(session, "train_epochs", "number_input")
        session.page.widgets[wid] = WidgetState(id=wid, int_value=20)
        result = await click(session, "train_start")
        assert result.status == FINISHED.FINISHED_SUCCESSFULLY and session.page.exceptions() == []
        running = await asyncio.to_thread(wait_for, lambda: trainings(proc.pid), 60)
        assert running, f"no training process started: {texts(session)}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the tab watches (each run reads the job's progress)...
            await asyncio.sleep(1)
            await session.rerun(120)
            if any(", batch " in t for t in progress(session)):
                break  # ...until batches are being trained...
        shown = texts(session) + progress(session)
        await session.close()  # ...and is closed
        return threads, rss, shown

    threads_before, rss_before, shown = run(start_training())
    assert not [t for t in shown if "already run" in t], shown
    assert any(", batch " in t and "loss" in t and "epoch 1/20" in t for t in shown), shown  # training when closed
    pids = trainings(proc.pid)
    assert len(pids) == 1
    closed = time.monotonic()
    gone = wait_for(lambda: not trainings(proc.pid), ABANDON_S + 70)
    assert gone, f"the training process {pids} still runs {time.monotonic() - closed:.0f} s after the tab closed"
    # No thread left behind (the job's reader ends with its process), memory back near where it was.
    assert wait_for(lambda: status_value(proc.pid, "Threads") <= threads_before, 30), (
        status_value(proc.pid, "Threads"), threads_before)
    assert status_value(proc.pid, "VmRSS") - rss_before < 300 * 1024, (rss_before, status_value(proc.pid, "VmRSS"))

    async def next_session() -> list[str]:
        session = await open_page(url, query)
        try:
            await click(session, "train_start")
            started = await asyncio.to_thread(wait_for, lambda: trainings(proc.pid), 60)
            return [*texts(session), f"started={bool(started)}"]
        finally:
            await session.close()

    shown = run(next_session())
    assert "started=True" in shown and not [t for t in shown if "already run" in t], shown
    assert wait_for(lambda: not trainings(proc.pid), ABANDON_S + 70), "the second training was not stopped either"
    log = Path(proc.log_file.name).read_text(errors="replace")  # type: ignore[attr-defined]
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]  # neither training crashed


# --- a tab closed mid-measurement ---------------------------------------------------------------

def test_a_tab_closed_mid_measurement_still_gets_its_result(server):
    _proc, url = server
    query = "task=fashion-mnist&view=latency&groups=2&scale=0.25&blocks=1,1,1"

    async def start_and_close() -> list[str]:
        session = await open_page(url, query)
        result = await click(session, "lat_measure")
        assert result.status == FINISHED.FINISHED_SUCCESSFULLY and session.page.exceptions() == []
        shown = texts(session) + [el.text for _, _, el in session.page.iter_elements("progress")]
        await session.close()
        return shown

    shown = run(start_and_close())
    assert any("Measuring" in t for t in shown), shown

    async def look() -> tuple[list[str], list[str]]:
        session = await open_page(url, query.replace("groups=2", "groups=8"))  # same sweep, other g
        try:
            return texts(session), [el.text for _, _, el in session.page.iter_elements("progress")]
        finally:
            await session.close()

    def measured():
        shown, _progress = run(look())
        assert not [t for t in shown if "Another measurement" in t], shown  # it is this network's
        return shown if any("Actual vs theoretical speedup" in t for t in shown) else None

    shown = wait_for(measured, 400, step=5)
    assert shown, "the measurement started by the closed tab never reached another session"
