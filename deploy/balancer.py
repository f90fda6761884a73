"""A class's server: N Streamlit processes of the explorer behind HAProxy, in the foreground.

    python deploy/balancer.py [--processes 2] [--port 8501] [--address 127.0.0.1] [--no-restart]
                              [--state FILE]

(`make class PROCESSES=N PORT=P` runs this.) One Streamlit process computes its pages in Python
threads that share one interpreter lock, so it uses about one CPU core; N processes use N.

Each app process listens on its own free loopback port, in its own process group, with one
`server.cookieSecret` shared by all (made at random for this run). HAProxy, configured from
deploy/haproxy.cfg.template, listens on --address:--port: it inserts a cookie so that every
request of a browser goes back to the process that holds its session, carries the websocket,
checks each process's `/_stcore/health` every second and sends no one to a process that failed
two checks. A process that exits is started again on its port (unless --no-restart); HAProxy
takes it back once it answers its checks.

Ctrl-C or SIGTERM stops HAProxy and every app process group (with whatever those processes
started). --state writes a JSON file naming the URL, the stats socket and each process's port
and pid, for tests and benchmarks that need to look inside.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("haproxy.cfg.template")
COOKIE = "shufflenet_server"
HEALTH_PATH = "/_stcore/health"
#: Health checks: every CHECK_INTER, DOWN after CHECK_FALL failures, UP again after CHECK_RISE.
CHECK_INTER, CHECK_FALL, CHECK_RISE = "1s", 2, 2
MAX_PROCESSES = 16
STOP_GRACE_S = 15
RESTART_EVERY_S = 5


class LaunchError(RuntimeError):
    """Something the class's server needs is missing or did not start (said for people)."""


@dataclass
class App:
    """One Streamlit process behind the balancer."""

    name: str
    port: int
    process: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if os.access(p, os.X_OK)), None)
    if found is None:
        raise LaunchError("haproxy is not installed: run `make system` (as root) or `apt-get install haproxy`; "
                          "`make run` serves a single process without it")
    return found


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (held open together, so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    """In the child, before exec: its own process group, and SIGTERM if this launcher dies
    without cleaning up (killed hard), so no app process outlives it."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _spawn(argv: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)


def app_env(secret: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
           "STREAMLIT_SERVER_COOKIE_SECRET": secret}
    # The app imports the library from the checkout it is started from.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def start_app(app: App, env: dict, log, extra: list[str]) -> None:
    app.process = _spawn([sys.executable, "-m", "streamlit", "run", str(ROOT / "explorer" / "app.py"),
                          "--server.port", str(app.port), "--server.address", "127.0.0.1",
                          "--server.headless", "true", "--browser.gatherUsageStats", "false", *extra], env, log)
    app.starts += 1
    app.started_at = time.monotonic()


def healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=timeout) as r:
            return r.read().strip() == b"ok"
    except OSError:
        return False


def wait_healthy(apps: list[App], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(apps)
    while waiting:
        for app in list(waiting):
            if not app.alive:
                raise LaunchError(f"app process {app.name} (port {app.port}) exited with "
                                  f"{app.process.returncode} before it answered; see its output above")
            if healthy(app.port):
                waiting.remove(app)
        if waiting and time.monotonic() > deadline:
            raise LaunchError(f"app processes {', '.join(a.name for a in waiting)} did not answer "
                              f"{HEALTH_PATH} within {timeout:g} s")
        if waiting:
            time.sleep(0.2)


def render_config(apps: list[App], address: str, port: int, stats_socket: Path) -> str:
    servers = "\n".join(f"    server {a.name} 127.0.0.1:{a.port} check cookie {a.name}" for a in apps)
    return Template(TEMPLATE.read_text()).substitute(
        address=address, port=port, stats_socket=stats_socket, cookie=COOKIE, servers=servers,
        check_inter=CHECK_INTER, check_fall=CHECK_FALL, check_rise=CHECK_RISE)


def stop_group(process: subprocess.Popen | None) -> None:
    """SIGTERM to the process's whole group, SIGKILL to what is left after the grace period."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    # Whatever the process started in its group (a training job, `dot`) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def server_stats(stats_socket: Path, timeout: float = 2.0) -> dict[str, dict[str, str]]:
    """Server name -> its row of HAProxy's `show stat` (status: "UP", "DOWN", "UP 1/2", ...;
    scur: connections open now; stot: connections so far), read from the stats socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(stats_socket))
        s.sendall(b"show stat\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = (dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line)
    return {row["svname"]: row for row in rows
            if row.get("pxname") == "streamlit" and row.get("svname") not in ("FRONTEND", "BACKEND")}


def server_states(stats_socket: Path, timeout: float = 2.0) -> dict[str, str]:
    """Server name -> HAProxy's status of it."""
    return {name: row["status"] for name, row in server_stats(stats_socket, timeout).items()}


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum, frame):
    raise Stop(signal.Signals(signum).name)


def run(processes: int, address: str, port: int, *, restart: bool = True, state_file: Path | None = None,
        extra: list[str] = (), start_timeout: float = 180) -> int:
    haproxy = haproxy_binary()
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    workdir = Path(tempfile.mkdtemp(prefix="shufflenet-class-"))
    apps = [App(f"app{i}", p) for i, p in enumerate(free_ports(processes))]
    env = app_env(secrets.token_hex(32))
    proxy = None
    try:
        for app in apps:
            start_app(app, env, None, list(extra))
        wait_healthy(apps, start_timeout)
        config = workdir / "haproxy.cfg"
        stats_socket = workdir / "haproxy.sock"
        config.write_text(render_config(apps, address, port, stats_socket))
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        if check.returncode:
            raise LaunchError(f"haproxy refused the configuration {config}: {check.stderr.strip()}")
        proxy = _spawn([haproxy, "-db", "-f", str(config)], os.environ.copy(), None)
        url = f"http://{address}:{port}"
        deadline = time.monotonic() + 10
        while not stats_socket.exists():
            if proxy.poll() is not None:
                raise LaunchError(f"haproxy exited with {proxy.returncode} (is port {port} already in use?)")
            if time.monotonic() > deadline:
                raise LaunchError("haproxy did not open its stats socket within 10 s")
            time.sleep(0.05)

        def write_state():
            if state_file is not None:
                tmp = state_file.with_suffix(".tmp")
                tmp.write_text(json.dumps({
                    "url": url, "launcher_pid": os.getpid(), "haproxy_pid": proxy.pid,
                    "stats_socket": str(stats_socket), "cookie": COOKIE,
                    "apps": [{"name": a.name, "port": a.port, "pid": a.process.pid, "starts": a.starts}
                             for a in apps]}, indent=1))
                tmp.replace(state_file)

        write_state()
        print(f"ShuffleNet Explorer for a class: {url} (HAProxy, pid {proxy.pid}; {processes} app processes on "
              f"ports {', '.join(str(a.port) for a in apps)}; launcher pid {os.getpid()}). Ctrl-C stops all.",
              flush=True)
        states: dict[str, str] = {}
        while True:
            time.sleep(0.5)
            if proxy.poll() is not None:
                raise LaunchError(f"haproxy exited with {proxy.returncode}")
            with contextlib.suppress(OSError, IndexError):
                now = server_states(stats_socket)
                for name, status in now.items():
                    if states and states.get(name) != status:
                        print(f"balancer: {name} is {status}", flush=True)
                states = now
            for app in apps:
                # At most one start every RESTART_EVERY_S, so a process that cannot start does not spin.
                if not app.alive and restart and time.monotonic() - app.started_at > RESTART_EVERY_S:
                    print(f"app process {app.name} exited with {app.process.returncode}; starting it again",
                          flush=True)
                    stop_group(app.process)  # anything it left in its group
                    start_app(app, env, None, list(extra))
                    write_state()
    except Stop:
        return 0
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_group(proxy)
        for app in apps:
            stop_group(app.process)
        shutil.rmtree(workdir, ignore_errors=True)


def _processes(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of processes") from None
    if not 1 <= n <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(f"{n} processes: use 1 to {MAX_PROCESSES} (about one per CPU core)")
    return n


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port {n}: use 1 to 65535 (e.g. 8501)")
    return n


def _address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address: use 127.0.0.1 (this machine only) or "
                                         "0.0.0.0 (every address, for other machines)") from None
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--processes", type=_processes, default=2, help="app processes (about one per CPU core)")
    parser.add_argument("--port", type=_port, default=8501, help="where HAProxy listens")
    parser.add_argument("--address", type=_address, default="127.0.0.1",
                        help="where HAProxy listens; 0.0.0.0 lets other machines connect")
    parser.add_argument("--no-restart", dest="restart", action="store_false",
                        help="leave an app process that exits down instead of starting it again")
    parser.add_argument("--state", type=Path, default=None, help="write the URL, ports and pids here (JSON)")
    # Anything else goes to `streamlit run` (e.g. --theme.base dark), which checks it.
    args, extra = parser.parse_known_args(argv)
    try:
        return run(args.processes, args.address, args.port, restart=args.restart, state_file=args.state,
                   extra=extra)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
