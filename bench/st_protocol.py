"""Just enough of Streamlit's browser side to be a real session without a browser.

A load test with Chromium pages spends most of the machine on the browsers; this
module speaks the frontend's own protocol instead, so one Python process can be a whole class:

- the XSRF cookie comes from GET `/_stcore/health` and `/_stcore/host-config`, as the page fetches
  them before it connects;
- the websocket `/_stcore/stream` is opened with the subprotocols `["streamlit", <cookie value>]`,
  the cookie header and the page's `Origin` (what Streamlit's XSRF check compares);
- each run is a `BackMsg.rerun_script` (`ClientState`) carrying the address bar's query string and
  the values of every mounted widget; the server answers with `ForwardMsg`s until `script_finished`.

`Page` is the pure part (no I/O, unit-tested): it applies `ForwardMsg`s the way the frontend's
element tree and widget manager do, so that the next `rerun_script` carries what a browser would
send: widget ids come from the elements the server sent, a widget that is new takes the element's
default, one the server set (`set_value`) takes the server's value, one the user already changed
keeps its value, and widgets no longer on the page are dropped after a finished run. Widgets in a
collapsed expander are not mounted by the frontend, so they send nothing either. Large elements
the server marks cacheable are kept and their hashes sent back, as the frontend's message cache
does, so the server answers with references for unchanged ones.

`Session` is the asyncio websocket client around a `Page`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

XSRF_COOKIE = "_streamlit_xsrf"
STREAM_PATH = "/_stcore/stream"
#: Largest ForwardMsg accepted (a Plotly figure or a table can be several MB).
MAX_MESSAGE_BYTES = 256 * 2**20
#: Runs a cached message survives without being used (the frontend's `maxCachedMessageAge`
#: default; the server's NewSession config overrides it).
DEFAULT_CACHE_AGE = 2

FINISHED = ForwardMsg.ScriptFinishedStatus
#: Element types that carry a widget id but no state the frontend sends back on a rerun:
#: buttons only send a one-off trigger when clicked; charts and tables only with a selection.
STATELESS_WITH_ID = frozenset({"button", "download_button", "link_button", "page_link", "plotly_chart",
                               "dataframe", "vega_lite_chart", "deck_gl_json_chart", "graphviz_chart",
                               "arrow_table", "table", "echarts_chart"})


class ProtocolError(RuntimeError):
    """The server sent something this client cannot follow, or a widget is not on the page."""


def widget_key(widget_id: str) -> str | None:
    """The user key inside a widget id (`$$ID-<hash>-<key>`), or None for a widget without one."""
    parts = widget_id.split("-", 2)
    if len(parts) != 3 or parts[0] != "$$ID" or parts[2] == "None":
        return None
    return parts[2]


def _slider_is_select(el: Slider) -> bool:
    return el.type == Slider.SELECT_SLIDER or bool(el.options)


def widget_state(kind: str, el, previous: WidgetState | None) -> WidgetState | None:
    """The state the frontend holds for widget element `el` (of Element type `kind`) once mounted.

    `previous` is what it held before this element arrived (None for a new widget). Returns None
    for elements that send no state back (see STATELESS_WITH_ID) or have no value (an empty
    select box)."""
    if kind in STATELESS_WITH_ID or not getattr(el, "id", ""):
        return None
    if previous is not None and not getattr(el, "set_value", False):
        return previous
    ws = WidgetState(id=el.id)
    setv = getattr(el, "set_value", False)
    if kind == "slider":
        if _slider_is_select(el):
            ws.string_array_value.data.extend(
                el.raw_value if setv else [el.options[int(i)] for i in el.default])
        else:
            ws.double_array_value.data.extend(el.value if setv else el.default)
    elif kind in ("selectbox", "radio"):
        if setv and el.HasField("raw_value"):
            ws.string_value = el.raw_value
        elif el.HasField("default"):
            ws.string_value = el.options[el.default]
        else:
            return None
    elif kind == "multiselect":
        ws.string_array_value.data.extend(el.raw_values if setv else [el.options[i] for i in el.default])
    elif kind == "button_group":  # st.pills / st.segmented_control: the chosen options' texts
        ws.string_array_value.data.extend(el.raw_values if setv else [el.options[int(i)].content for i in el.default])
    elif kind == "checkbox":
        ws.bool_value = el.value if setv else el.default
    elif kind == "number_input":
        value = el.value if setv else el.default
        if el.data_type == NumberInput.INT:
            ws.int_value = int(value)
        else:
            ws.double_value = value
    elif kind in ("text_input", "text_area"):
        value = el.value if setv else el.default
        if not setv and not el.HasField("default"):
            return None
        ws.string_value = value
    elif kind == "file_uploader":
        ws.file_uploader_state_value.CopyFrom(FileUploaderState())
    else:
        raise ProtocolError(f"no frontend model for widget element {kind!r} (id {el.id})")
    return ws


def set_state_value(ws: WidgetState, kind: str, el, value) -> WidgetState:
    """A copy of `ws` holding `value`, as the widget would send it once the user chose it.

    Select boxes and radios take one of their (formatted) options, sliders a number or a pair,
    select sliders an option or a list of them; anything not allowed raises ValueError, so a
    benchmark cannot silently send what no user could."""
    new = WidgetState(id=ws.id)
    if kind in ("selectbox", "radio"):
        if value not in el.options:
            raise ValueError(f"{value!r} is not an option of {el.label!r}: {list(el.options)}")
        new.string_value = value
    elif kind == "slider" and _slider_is_select(el):
        values = [value] if isinstance(value, str) else list(value)
        bad = [v for v in values if v not in el.options]
        if bad:
            raise ValueError(f"{bad} not among the options of {el.label!r}")
        new.string_array_value.data.extend(values)
    elif kind == "slider":
        values = [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
        if any(not el.min - 1e-9 <= v <= el.max + 1e-9 for v in values):
            raise ValueError(f"{values} outside {el.label!r}'s range {el.min}..{el.max}")
        new.double_array_value.data.extend(values)
    elif kind == "checkbox":
        new.bool_value = bool(value)
    elif kind == "multiselect":
        bad = [v for v in value if v not in el.options]
        if bad:
            raise ValueError(f"{bad} not among the options of {el.label!r}")
        new.string_array_value.data.extend(value)
    elif kind == "number_input":
        if el.data_type == NumberInput.INT:
            new.int_value = int(value)
        else:
            new.double_value = float(value)
    elif kind in ("text_input", "text_area"):
        new.string_value = str(value)
    else:
        raise ValueError(f"cannot set a {kind} widget")
    return new


@dataclass
class Page:
    """The frontend's view of one session: elements by delta path, widget states, address bar."""

    query_string: str = ""
    page_script_hash: str = ""
    session_id: str = ""
    cache_age: int = DEFAULT_CACHE_AGE
    #: The page as the last finished run left it: delta path -> (element type, element proto).
    elements: dict[tuple[int, ...], tuple[str, object]] = field(default_factory=dict)
    blocks: dict[tuple[int, ...], object] = field(default_factory=dict)
    #: widget id -> WidgetState, for the widgets mounted now (what the next rerun sends).
    widgets: dict[str, WidgetState] = field(default_factory=dict)
    runs: int = 0
    _run_elements: dict = field(default_factory=dict)
    _run_blocks: dict = field(default_factory=dict)
    _cache: dict[str, tuple[ForwardMsg, int]] = field(default_factory=dict)

    # --- applying ForwardMsgs --------------------------------------------------------------

    def begin_run(self) -> None:
        self._run_elements, self._run_blocks = {}, {}

    def handle(self, msg: ForwardMsg) -> str:
        """Apply one ForwardMsg (resolving a cache reference); returns its type."""
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                raise ProtocolError(f"the server referred to message {msg.ref_hash}, which this client never got")
            full = ForwardMsg()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            self._cache[msg.ref_hash] = (cached[0], self.runs)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = (msg, self.runs)
        if kind == "new_session":
            ns = msg.new_session
            self.session_id = ns.initialize.session_id or self.session_id
            self.page_script_hash = ns.page_script_hash or self.page_script_hash
            age = ns.config.max_cached_message_age
            self.cache_age = age if age > 0 else DEFAULT_CACHE_AGE
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            path = tuple(msg.metadata.delta_path)
            delta = msg.delta
            dkind = delta.WhichOneof("type")
            if dkind == "new_element":
                etype = delta.new_element.WhichOneof("type")
                self._run_elements[path] = (etype, getattr(delta.new_element, etype))
                self._drop_below(path)
            elif dkind == "add_block":
                self._run_blocks[path] = delta.add_block
                self._run_elements.pop(path, None)
        return kind

    def _drop_below(self, path: tuple[int, ...]) -> None:
        """An element replacing a block replaces its children too."""
        if path in self._run_blocks:
            n = len(path)
            for store in (self._run_blocks, self._run_elements):
                for p in [p for p in store if p[:n] == path]:
                    del store[p]

    def finish_run(self, status: int) -> None:
        """The run ended: the page becomes what it sent, and stale widget states are dropped.
        (On a run stopped for a newer one the frontend keeps the old elements; so does this.)"""
        self.runs += 1
        if status == FINISHED.FINISHED_SUCCESSFULLY:
            self.elements, self.blocks = self._run_elements, self._run_blocks
            previous = self.widgets
            self.widgets = {}
            for path, (kind, el) in self.elements.items():
                if self.mounted(path):
                    ws = widget_state(kind, el, previous.get(getattr(el, "id", "")))
                    if ws is not None:
                        self.widgets[ws.id] = ws
        oldest = self.runs - self.cache_age
        self._cache = {h: entry for h, entry in self._cache.items() if entry[1] >= oldest}

    def mounted(self, path: tuple[int, ...]) -> bool:
        """False for an element inside a collapsed expander (the frontend renders none of it)."""
        for n in range(2, len(path)):
            block = self.blocks.get(path[:n])
            if block is not None and block.WhichOneof("type") == "expandable" and not block.expandable.expanded:
                return False
        return True

    # --- reading the page ------------------------------------------------------------------

    def iter_elements(self, etype: str | None = None) -> Iterator[tuple[tuple[int, ...], str, object]]:
        for path in sorted(self.elements):
            kind, el = self.elements[path]
            if etype is None or kind == etype:
                yield path, kind, el

    def metrics(self) -> dict[str, list[str]]:
        """Metric label -> the values shown under it (in page order)."""
        out: dict[str, list[str]] = {}
        for _, _, el in self.iter_elements("metric"):
            out.setdefault(el.label, []).append(el.body)
        return out

    def headings(self) -> list[str]:
        return [el.body for _, _, el in self.iter_elements("heading")]

    def exceptions(self) -> list[str]:
        return [f"{el.type}: {el.message}" for _, _, el in self.iter_elements("exception")]

    def mounted_widgets(self) -> Iterator[tuple[str, tuple[int, ...], str, object]]:
        """(user key, delta path, element type, proto) of every keyed widget that holds a state."""
        for path, kind, el in self.iter_elements():
            key = widget_key(getattr(el, "id", ""))
            if key is not None and el.id in self.widgets:
                yield key, path, kind, el

    def widget(self, key: str) -> tuple[str, object]:
        """The mounted widget whose user key is `key`: (element type, proto)."""
        found = [(kind, el) for k, _, kind, el in self.mounted_widgets() if k == key]
        if len(found) != 1:
            mounted = sorted(str(widget_key(w)) for w in self.widgets)
            raise ProtocolError(f"{len(found)} mounted widgets with key {key!r}; mounted keys: {mounted}")
        return found[0]

    def options(self, key: str) -> list[str]:
        return list(self.widget(key)[1].options)

    def set_widget(self, key: str, value) -> None:
        """Change one widget as a user would; the next rerun sends it with all the others."""
        kind, el = self.widget(key)
        self.widgets[el.id] = set_state_value(self.widgets[el.id], kind, el, value)

    def widget_values(self) -> dict[str, object]:
        """User key -> the value the next rerun sends (for reports and tests)."""
        out = {}
        for wid, ws in self.widgets.items():
            which = ws.WhichOneof("value")
            value = getattr(ws, which) if which else None
            if which and which.endswith("_array_value"):
                value = list(value.data)
            out[widget_key(wid) or wid] = value
        return out

    # --- the next request ------------------------------------------------------------------

    def rerun_message(self, url: str = "", query_string: str | None = None) -> BackMsg:
        """The BackMsg a browser sends to (re)run the script: the address bar's query string,
        every mounted widget's state, the page hash and the cached messages' hashes."""
        if query_string is not None:
            self.query_string = query_string
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_script_hash
        cs.widget_states.CopyFrom(WidgetStates(widgets=list(self.widgets.values())))
        cs.cached_message_hashes.extend(sorted(self._cache))
        cs.context_info.timezone = "UTC"
        cs.context_info.timezone_offset = 0
        cs.context_info.locale = "en-US"
        cs.context_info.url = url + (f"/?{self.query_string}" if self.query_string else "/")
        return msg


# --- the connection ---------------------------------------------------------------------------

def fetch_cookies(base_url: str, timeout: float, cookies: dict[str, str] | None = None) -> dict[str, str]:
    """The cookies a page holds before it opens the websocket: GET `/_stcore/health` and
    `/_stcore/host-config`, as the frontend does, each sending what the earlier ones set. So a
    load balancer's sticky cookie (set on the first answer) takes the second request, and later
    the websocket, to the same app process, as a browser's cookie jar would."""
    jar = dict(cookies or {})
    for path in ("/_stcore/health", "/_stcore/host-config"):
        request = urllib.request.Request(base_url + path)
        if jar:
            request.add_header("Cookie", cookie_header(jar))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie()
                cookie.load(header)
                jar.update({name: morsel.value for name, morsel in cookie.items()})
    if not jar.get(XSRF_COOKIE):
        raise ProtocolError(f"{base_url} set no {XSRF_COOKIE} cookie (is server.enableXsrfProtection off?)")
    return jar


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def xsrf_token(base_url: str, timeout: float) -> str:
    """The XSRF cookie value, fetched as the page does before it opens the websocket."""
    return fetch_cookies(base_url, timeout)[XSRF_COOKIE]


@dataclass
class RunResult:
    seconds: float  # from sending rerun_script to receiving script_finished
    status: int
    messages: int
    nbytes: int
    refs: int  # messages the server sent as a reference to one this client had cached


class Session:
    """One browser tab's session over the websocket (asyncio)."""

    def __init__(self, base_url: str, cookies: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.page = Page()
        self.ws = None
        #: The tab's cookie jar: the XSRF cookie and, behind a load balancer, its sticky cookie.
        self.cookies: dict[str, str] = dict(cookies or {})

    async def open(self, timeout: float) -> None:
        from websockets.asyncio.client import connect

        self.cookies = await asyncio.wait_for(
            asyncio.to_thread(fetch_cookies, self.base_url, timeout, self.cookies), timeout)
        token = self.cookies[XSRF_COOKIE]
        parts = urlsplit(self.base_url)
        ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{parts.path}{STREAM_PATH}"
        # No client pings: a browser sends none, and a busy server answering a ping late must not
        # count as a disconnect. The server's own pings are answered by the library.
        self.ws = await connect(
            ws_url, subprotocols=["streamlit", token], open_timeout=timeout, close_timeout=5,
            ping_interval=None, max_size=MAX_MESSAGE_BYTES,
            additional_headers={"Cookie": cookie_header(self.cookies), "Origin": f"{parts.scheme}://{parts.netloc}"},
        )

    async def rerun(self, timeout: float, query_string: str | None = None) -> RunResult:
        """Send a rerun and read until the script finished; raises TimeoutError after `timeout`
        and websockets' ConnectionClosed when the server drops the connection."""
        msg = self.page.rerun_message(self.base_url, query_string)
        self.page.begin_run()
        start = time.perf_counter()
        deadline = start + timeout
        await asyncio.wait_for(self.ws.send(msg.SerializeToString()), timeout)
        n = nbytes = refs = 0
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no script_finished within {timeout:g} s ({n} messages)")
            raw = await asyncio.wait_for(self.ws.recv(), remaining)
            if isinstance(raw, str):
                raise ProtocolError(f"text frame from the server: {raw[:200]!r}")
            n, nbytes = n + 1, nbytes + len(raw)
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            refs += fm.WhichOneof("type") == "ref_hash"
            if self.page.handle(fm) != "script_finished":
                continue
            status = fm.script_finished
            if status == FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                continue  # a fragment's run, not the one asked for
            seconds = time.perf_counter() - start
            self.page.finish_run(status)
            return RunResult(seconds, status, n, nbytes, refs)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 10)

