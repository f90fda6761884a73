"""Security of a classroom server: it listens on loopback only unless told otherwise,
XSRF protection stays on, uploads are only ever bytes (never paths, never HTML), and neither
start-up nor normal use opens a connection to anywhere but loopback."""

from __future__ import annotations

import ast
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, stop_server, wait_healthy
from conftest import TINY

from shufflenet.settings import quiet_tensorflow_env

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
EXPLORER = sorted((ROOT / "explorer").rglob("*.py"))

LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$")


# --- configuration ----------------------------------------------------------------------------

def test_server_config_binds_loopback_keeps_xsrf_and_limits_uploads():
    server = CONFIG["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True
    assert server.get("enableCORS", True) is True  # not switched off
    assert server["maxUploadSize"] == 20
    assert server["headless"] is True
    assert CONFIG["browser"]["gatherUsageStats"] is False


# --- code rules (AST, not grep: comments and strings do not count) ----------------------------

def _tree(path: Path) -> ast.AST:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # type: ignore[attr-defined]
    return tree


def _call_name(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


#: The one file the UI reads itself: the lesson (explorer/lesson_file.py reads `LESSON_FILE`, a constant
#: path under assets/lessons/, in `read_toml`; nothing a user sends names a file).
READS = {("explorer/lesson_file.py", "read_toml", "read_text")}


def _enclosing_function(node: ast.AST) -> str:
    while (node := getattr(node, "parent", None)) is not None:
        if isinstance(node, ast.FunctionDef):
            return node.name
    return ""


def test_explorer_opens_no_files_and_builds_no_paths():
    """The UI reads nothing from disk by name: uploads arrive as bytes, the library reads its own
    files. The only path is app.py's own location (to put the repository on sys.path), and the one
    file read is the lesson (`READS`)."""
    file_calls = {"open", "Path", "PurePath", "read_bytes", "read_text", "write_bytes", "write_text", "unlink",
                  "mkdir", "rmdir", "makedirs", "copyfile", "NamedTemporaryFile", "TemporaryDirectory", "mkstemp",
                  "mkdtemp"}  # os.*, shutil.* and tempfile.* are caught as a whole below
    found = []
    for path in EXPLORER:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and _call_name(node) in file_calls:
                allowed = (_call_name(node) == "Path" and len(node.args) == 1
                           and isinstance(node.args[0], ast.Name) and node.args[0].id == "__file__")
                allowed |= (str(path.relative_to(ROOT)), _enclosing_function(node), _call_name(node)) in READS
                if not allowed:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in (
                    "os", "shutil", "tempfile") and node.attr not in ("environ",):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_upload_names_only_ever_pass_through_upload_name():
    """Every `.name` of an uploaded file goes straight into `format.upload_name` (shown, escaped),
    never anywhere else (a path, a cache key on its own, Markdown)."""
    found, uploads_seen = [], 0
    for path in EXPLORER:
        tree = _tree(path)
        uploads = set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and _call_name(node.value) == "file_uploader"):
                uploads |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        uploads_seen += len(uploads)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "name" and isinstance(node.value, ast.Name)
                    and node.value.id in uploads):
                parent = node.parent  # type: ignore[attr-defined]
                if not (isinstance(parent, ast.Call) and _call_name(parent) == "upload_name"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(parent)}")
    assert uploads_seen >= 3  # the picture, the weights and the manifest uploaders
    assert found == []


#: The style sheets of our own the UI may send with `st.html(NAME)`: (module, module-level constant).
STYLES = {("explorer/tables.py", "STYLE"), ("explorer/presenter.py", "PRESENT_STYLE")}
#: A constant CSS block: one <style> element and nothing else (no other tag, no markup to render).
STYLE_ONLY = re.compile(r"<style>[^<]*</style>")


def _style_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "<style>...</style>"` assignments made once, by their names."""
    values, counts = {}, {}
    for node in ast.walk(tree):
        for target in getattr(node, "targets", []) if isinstance(node, ast.Assign) else []:
            if isinstance(target, ast.Name):
                counts[target.id] = counts.get(target.id, 0) + 1
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                and STYLE_ONLY.fullmatch(node.value.value.strip()) and counts[node.targets[0].id] == 1):
            values[node.targets[0].id] = node.value.value
    return values


def test_no_raw_html_anywhere_in_the_ui():
    """No Markdown with HTML and no `st.html`, except a constant style sheet of our own (`STYLES`)."""
    found, styles_seen = [], set()
    for path in EXPLORER:
        tree = _tree(path)
        where = str(path.relative_to(ROOT))
        styles = _style_constants(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html"
                    and not (isinstance(node.value, ast.Constant) and node.value.value is False)):
                found.append(f"{where}:{node.value.lineno} unsafe_allow_html")
            if isinstance(node, ast.Call) and _call_name(node) in ("html", "iframe") and "st" in ast.unparse(
                    node.func):
                arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
                if (_call_name(node) == "html" and isinstance(arg, ast.Name) and arg.id in styles
                        and (where, arg.id) in STYLES):
                    styles_seen.add((where, arg.id))
                    continue
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    assert found == []
    assert styles_seen == STYLES  # each allowed style sheet is still what it was allowed as


def test_uploaded_weights_name_never_becomes_a_path(tmp_path, monkeypatch):
    from shufflenet import build_model
    from shufflenet.weights import load_uploaded

    config = TINY
    build_model(config).save_weights(tmp_path / "w.weights.h5")
    manifest = json.dumps({"config": config.to_dict(), "class_names": [f"c{i}" for i in range(10)],
                           "task": "fashion-mnist", "dataset": {}, "preprocessing": {}, "epochs": 1,
                           "test_accuracy": 0.5, "training_seconds": 1.0, "library_version": "t"}).encode()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    evil = str(tmp_path / "planted.weights.h5")
    model, _ = load_uploaded((tmp_path / "w.weights.h5").read_bytes(), manifest, config, evil, "../../m.json")
    assert model is not None and not Path(evil).exists() and list(work.iterdir()) == []


# --- the running server -------------------------------------------------------------------------

#: An audit hook (PEP 578) in the server process records every socket connect and name lookup
#: made from Python; a native library's own sockets are caught by sampling /proc below.
_AUDIT = """
import json, runpy, socket, sys
log = open(sys.argv.pop(1), "a", buffering=1)
EVENTS = ("socket.connect", "socket.sendto", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
          "socket.gethostbyaddr")
def hook(event, args):
    if event in EVENTS:
        target = args[1] if event in ("socket.connect", "socket.sendto", "socket.bind") else args[0]
        log.write(json.dumps([event, repr(target)]) + "\\n")
sys.addaudithook(hook)
socket.getaddrinfo("localhost", None)  # the first line of the log: the hook works
sys.argv[0] = "streamlit"
runpy.run_module("streamlit", run_name="__main__")
"""


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _hex_address(text: str) -> str:
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw[::-1])}:{int(port, 16)}"
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return f"[{socket.inet_ntop(socket.AF_INET6, words)}]:{int(port, 16)}"


def server_sockets(pid: int) -> list[tuple[str, str, str]]:
    """(state, local, remote) of the TCP sockets the process holds, from /proc/<pid>/net/tcp*."""
    inodes = _socket_inodes(pid)
    states = {"0A": "LISTEN", "01": "ESTABLISHED", "02": "SYN_SENT"}
    out = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                out.append((states.get(fields[3], fields[3]), _hex_address(fields[1]), _hex_address(fields[2])))
    return out


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]")


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    """`streamlit run explorer/app.py` as a person starts it: no address flag (config.toml decides),
    under the audit hook. Yields (process, url, audit log path, /proc samples)."""
    folder = tmp_path_factory.mktemp("server")
    audit = folder / "audit.jsonl"
    port = free_port()
    env = {**os.environ, **quiet_tensorflow_env()}
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed by stop_server
    proc = subprocess.Popen([sys.executable, "-c", _AUDIT, str(audit), "run", "explorer/app.py",
                             "--server.port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_file = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, timeout_s=120)
        yield proc, url, audit
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_server_listens_on_loopback_only(plain_server):
    proc, url, _ = plain_server
    listening = [local for state, local, _ in server_sockets(proc.pid) if state == "LISTEN"]
    assert listening, server_sockets(proc.pid)
    assert all(LOOPBACK.match(_host(a)) for a in listening), listening
    # ...so another machine could not reach it: the same port on this machine's other addresses refuses.
    port = int(url.rsplit(":", 1)[1])
    others = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in others - {"127.0.0.1"}:
        if address.startswith("127."):
            continue
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"the app answers on {address}"


def test_uploads_need_the_xsrf_token_and_respect_the_size_limit(plain_server):
    # Streamlit hands out an XSRF cookie only while the protection is on; an upload must echo it
    # in a header (double-submit), and the server itself refuses bodies over maxUploadSize.
    _, url, _ = plain_server
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as r:
        cookies = [c.split(";")[0] for c in r.headers.get_all("Set-Cookie") or []]
    token = next((c.split("=", 1)[1] for c in cookies if c.startswith("_streamlit_xsrf=")), None)
    assert token, cookies
    target = f"{url}/_stcore/upload_file/some-session/some-file"
    with pytest.raises(urllib.error.HTTPError) as info:  # no token: refused before anything else
        urllib.request.urlopen(urllib.request.Request(target, data=b"z", method="PUT"), timeout=30)
    assert info.value.code == 403
    # A body one byte over the limit is refused from its announced length, before it is read
    # (by a live session: the server checks the session first).
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    connect = pytest.importorskip("websockets.sync.client").connect

    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    with connect(f"ws://{host}:{port}/_stcore/stream", subprotocols=["streamlit", token],
                 additional_headers={"Cookie": f"_streamlit_xsrf={token}"}) as stream:
        rerun = BackMsg()
        rerun.rerun_script.query_string = "view=overview"
        stream.send(rerun.SerializeToString())
        session = None
        while session is None:
            message = ForwardMsg()
            message.ParseFromString(stream.recv(timeout=60))
            if message.WhichOneof("type") == "new_session":
                session = message.new_session.initialize.session_id
        connection.putrequest("PUT", f"/_stcore/upload_file/{session}/some-file")
        for name, value in (("X-Xsrftoken", token), ("Cookie", f"_streamlit_xsrf={token}"),
                            ("Content-Length", str(CONFIG["server"]["maxUploadSize"] * 2**20 + 1))):
            connection.putheader(name, value)
        connection.endheaders()
        assert connection.getresponse().status == 413
        connection.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.usefixtures("requires_chromium")
def test_start_up_and_use_make_no_outbound_connection(plain_server):
    """Load the page in Chromium, change g, visit every view (Predictions builds and runs a
    model and takes an upload), and watch the server: only loopback, from Python or native code;
    and the page itself requests nothing from anywhere but the server."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    proc, url, audit = plain_server
    seen_sockets: set[tuple[str, str, str]] = set()
    page_requests: list[str] = []

    def sample() -> None:
        seen_sockets.update(server_sockets(proc.pid))

    def settle_and_sample(page) -> None:
        """Like browser_support.settle (script not running, nothing stale), but polled: the server's
        sockets are sampled while it waits."""
        page.wait_for_timeout(300)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sample()
            if page.evaluate("() => { const a = document.querySelector('[data-testid=stApp]'); return a && "
                             "a.dataset.testScriptState === 'notRunning' && "
                             "document.querySelectorAll('[data-stale=true]').length === 0 }"):
                return
            page.wait_for_timeout(100)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.on("request", lambda r: page_requests.append(r.url))
            page.goto(f"{url}/?task=fashion-mnist&groups=2&scale=0.25&blocks=1,1,1")
            page.wait_for_selector("h1:has-text('Overview')")
            settle_and_sample(page)
            page.locator("[data-testid=stSidebar]").get_by_role("combobox", name="Groups g").click()
            page.get_by_role("option", name="4", exact=True).click()
            settle_and_sample(page)
            for view in ("Architecture", "Complexity", "Channel shuffle", "Compare", "Predictions"):
                page.locator("[data-testid=stSidebar] [data-testid=stRadio] label").filter(has_text=view).first.click()
                settle_and_sample(page)
                page.wait_for_selector(f"h1:has-text('{view}')")
            chooser = page.locator("[data-testid=stFileUploader]").first.locator("input[type=file]")
            chooser.set_input_files({"name": "shirt.png", "mimeType": "image/png", "buffer": _png()})
            settle_and_sample(page)
            page.wait_for_selector("[data-testid=stMetric]:has-text('Inference time')")  # the model ran on it
            settle_and_sample(page)
        finally:
            browser.close()
    sample()
    outbound = [s for s in seen_sockets if s[0] != "LISTEN" and not LOOPBACK.match(_host(s[2]))]
    assert outbound == [], outbound
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert events[0] == ["socket.getaddrinfo", "'localhost'"]  # the hook's own check
    for event, target in events:
        local = re.search(r"'(127\.\d+\.\d+\.\d+|::1|localhost)'", target) or target.startswith(("'/", "b'"))
        assert local, (event, target)  # loopback, or a Unix socket (a path)
    foreign = [u for u in page_requests if not u.startswith((url, "data:", "blob:", "about:"))]
    assert foreign == [], foreign


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()
