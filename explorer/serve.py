"""Serve the explorer from several app processes behind one small reverse proxy:

    python explorer/serve.py [--processes 2] [--address 127.0.0.1] [--port 8501]

Why: one Streamlit process computes its pages in Python threads that share one interpreter lock,
so it uses about one CPU core however many a machine has; a class of 30 then queues for that
core (bench/classroom.py). N processes use N cores.

How: the processes listen on free loopback ports; the proxy listens on `--address:--port` and
sends each browser to one of them, always the same one (sticky sessions): its first response
sets the cookie `shufflenet_server`, and every later request of that browser (the page, the
websocket, uploads, media) carries it back to the process that holds its session and its files.
A browser without the cookie (or with a stale one) is given the process with the fewest open
connections. The configuration is in the URL, so any process can serve any shared link. The
processes share one `server.cookieSecret` (made here, at random, for this run), so anything one
of them signs the others accept; Streamlit's XSRF token is a double-submit cookie, which any of
them checks alike. Each process has its own caches, background builds, latency measurements and
trainings (one at a time per process, not per machine).

The proxy is connection-level: it reads the head of the first request on each connection (up to
64 kB) to pick the process, adds the cookie to the first response when needed, and from then on
copies bytes both ways, which carries websockets, uploads and keep-alive connections unchanged.
It listens on loopback unless told otherwise, like the app. Ctrl-C (or SIGTERM) stops the
processes too; if one process exits, the others go on and new browsers are no longer sent to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COOKIE = "shufflenet_server"
MAX_HEAD = 64 * 1024
CHUNK = 256 * 1024
COOKIE_RE = re.compile(rb"(?:^|;)\s*" + COOKIE.encode() + rb"=(\d+)")


@dataclass
class Backend:
    index: int
    port: int
    process: subprocess.Popen | None = None
    connections: int = 0

    @property
    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None


@dataclass
class Proxy:
    """Sticky, connection-level HTTP/websocket proxy to `backends` on 127.0.0.1."""

    backends: list[Backend]
    routed: dict[int, int] = field(default_factory=dict)  # backend index -> connections routed

    def choose(self, head: bytes) -> tuple[Backend, bool]:
        """The backend for a request head: the cookie's if alive, else the least busy.
        Returns (backend, whether the response must set the cookie)."""
        cookies = b";".join(line.split(b":", 1)[1] for line in head.split(b"\r\n")[1:]
                            if line.lower().startswith(b"cookie:"))
        match = COOKIE_RE.search(cookies)
        if match:
            index = int(match.group(1))
            if 0 <= index < len(self.backends) and self.backends[index].alive:
                return self.backends[index], False
        alive = [b for b in self.backends if b.alive] or self.backends
        return min(alive, key=lambda b: (b.connections, self.routed.get(b.index, 0))), True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            backend, set_cookie = self.choose(head)
            backend.connections += 1
            self.routed[backend.index] = self.routed.get(backend.index, 0) + 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend.port, limit=MAX_HEAD)
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            up_writer.write(head)
            await up_writer.drain()
            if set_cookie:
                try:
                    response = await up_reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    up_writer.close()
                    return
                status, _, rest = response.partition(b"\r\n")
                cookie = f"Set-Cookie: {COOKIE}={backend.index}; Path=/; HttpOnly; SameSite=Lax\r\n".encode()
                writer.write(status + b"\r\n" + cookie + rest)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            if backend is not None:
                backend.connections -= 1
            with contextlib.suppress(Exception):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_backends(n: int, extra_args: list[str]) -> list[Backend]:
    """`streamlit run explorer/app.py` `n` times on free loopback ports, with one shared cookie
    secret; their output goes where this process's goes."""
    secret = secrets.token_hex(32)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
           "STREAMLIT_SERVER_COOKIE_SECRET": secret}
    backends = []
    for i in range(n):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "explorer" / "app.py"), "--server.address",
             "127.0.0.1", "--server.port", str(port), "--server.headless", "true", *extra_args],
            cwd=ROOT, env=env)
        backends.append(Backend(i, port, process))
    return backends


def wait_healthy(backends: list[Backend], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for b in backends:
        while True:
            if not b.alive:
                raise RuntimeError(f"app process {b.index} exited with {b.process.returncode} before it answered")
            with (contextlib.suppress(OSError),
                  urllib.request.urlopen(f"http://127.0.0.1:{b.port}/_stcore/health", timeout=2) as r):
                if r.read().strip() == b"ok":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"app process {b.index} did not answer within {timeout:g} s")
            time.sleep(0.1)


def stop_backends(backends: list[Backend]) -> None:
    for b in backends:
        if b.process is not None and b.process.poll() is None:
            b.process.terminate()
    for b in backends:
        if b.process is None:
            continue
        try:
            b.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            b.process.kill()
            b.process.wait(timeout=10)


async def serve(backends: list[Backend], address: str, port: int, ready=None) -> None:
    proxy = Proxy(backends)
    server = await asyncio.start_server(proxy.handle, address, port, limit=MAX_HEAD)
    if ready is not None:
        ready(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 16:
        raise argparse.ArgumentTypeError(f"{n} processes: use 1 to 16 (about one per CPU core)")
    return n


def _address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if text != "localhost":
            raise argparse.ArgumentTypeError(f"{text!r} is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every "
                                             "address)") from None
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--processes", type=_count, default=2, help="app processes (about one per CPU core)")
    parser.add_argument("--address", type=_address, default="127.0.0.1",
                        help="where the proxy listens; 0.0.0.0 lets other machines connect")
    parser.add_argument("--port", type=int, default=8501)
    args, extra = parser.parse_known_args(argv)
    backends = start_backends(args.processes, extra)
    try:
        wait_healthy(backends)
        print(f"ShuffleNet Explorer: http://{args.address}:{args.port} ({args.processes} app processes on ports "
              f"{', '.join(str(b.port) for b in backends)})", flush=True)
        asyncio.run(serve(backends, args.address, args.port))
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_backends(backends)
    return 0


if __name__ == "__main__":
    sys.exit(main())
