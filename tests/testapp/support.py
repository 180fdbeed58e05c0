"""Helpers for tests that run real services: subprocess environments, a Celery worker, a private
Redis server, a TCP proxy that can cut the database away, gunicorn, bounded waits.

Every wait here has a timeout, and every process started here is stopped by the same object
(by its own pid, never by name), so a failing test cannot leave a worker or server behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection

from ingestion.ids import new_id
from ingestion.store import NewEvent

ROOT = Path(__file__).resolve().parents[2]
WORKER_SETTINGS = "tests.testapp.worker_settings"


def new_event(workspace_id: str, key: str | None = None, *, type: str = "test.event", amount: int = 0,
              source: str = "api") -> NewEvent:
    """A small canonical-looking event; ``key`` is its source_event_id (random when omitted)."""
    return NewEvent(
        workspace_id=workspace_id, source=source, source_event_id=key or new_id("k", 16), type=type,
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC), data={"amount": amount, "key": key},
    )


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port nothing listens on right now (closed again before returning)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(*, host: str | None = None, port: int | None = None, application_name: str = "") -> str:
    """The URL of the database the tests run on (the TEST database), optionally via host:port;
    ``application_name`` lets a test find that process's sessions in ``pg_stat_activity``."""
    s = connection.settings_dict
    user = quote(s.get("USER") or "postgres", safe="")
    password = s.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    url = f"postgres://{auth}@{host or s.get('HOST') or '127.0.0.1'}:{port or s.get('PORT') or 5432}/{s['NAME']}"
    return f"{url}?application_name={quote(application_name)}" if application_name else url


def subprocess_env(**overrides: str | None) -> dict[str, str]:
    """Environment for a Django process started by a test: the test DB, no broker, test projectors.

    ``None`` removes a variable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CELERY_"))}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": WORKER_SETTINGS,
        "DATABASE_URL": database_url(),
        "REFAIRN_DATA_DIR": str(ROOT / "var" / "test"),
        "CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


class Process:
    """A subprocess in its own process group, with its output in a log file for post-mortems."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (a Celery worker and its pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        else:
            # The leader is gone; make sure no child of its group survives it.
            self.kill(signal.SIGKILL)
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def start_celery_worker(broker_url: str, log: Path, *, beat: bool = False, **env: str) -> Process:
    """Start ``celery -A refairn worker`` (prefork, one child) on the real broker and test DB."""
    args = [_bin("celery"), "-A", "refairn", "worker", "--pool", "prefork", "--concurrency", "1",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"h6-{new_id('w', 6)}@%h"]
    if beat:
        args += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    return Process(args, subprocess_env(CELERY_BROKER_URL=broker_url, **env), log)


class RedisServer:
    """A private redis-server on a free port, so a test can stop it without touching the shared one."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        wait_until(lambda: _ping(client), timeout=timeout, message="private redis-server to start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def _ping(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class TcpProxy:
    """A threaded TCP forwarder on 127.0.0.1 that can be cut (listener and live connections closed)
    and restored on the same port: the database "goes away" without touching the real server."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Refuse new connections and break every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            thread.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 1.0)
                if a.fileno() < 0 or b.fileno() < 0:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._sockets.discard(a)
                self._sockets.discard(b)


def start_gunicorn(env: dict[str, str], log: Path, *, workers: int = 2, threads: int = 1,
                   extra_args: list[str] | None = None) -> tuple[Process, str]:
    """Start gunicorn on a free port with ``env``; return it and its base URL once it answers."""
    port = free_port()
    args = [_bin("gunicorn"), "refairn.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
            "--threads", str(threads), "--graceful-timeout", "2", "--timeout", "30", "--access-logfile", "-",
            *(extra_args or [])]
    process = Process(args, env, log)
    base = f"http://127.0.0.1:{port}"
    import urllib.request

    def answers() -> bool:
        if not process.alive():
            raise RuntimeError(f"gunicorn exited:\n{process.output()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    wait_until(answers, timeout=30, interval=0.2, message="gunicorn to answer /healthz")
    return process, base


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    try:
        yield process
    finally:
        process.stop()


class Driver:
    """A ``tests/testapp/driver.py`` writer process; ``call`` sends a command and waits (bounded)."""

    def __init__(self, log: Path, *, no_wakeups: bool = False, **env: str | None) -> None:
        args = [sys.executable, str(ROOT / "tests" / "testapp" / "driver.py")]
        if no_wakeups:
            args.append("--no-wakeups")
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.log_path = log
        self.popen = subprocess.Popen(args, cwd=ROOT, env=subprocess_env(**env), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, start_new_session=True)
        self._read(timeout=60)  # {"ready": true}

    def _read(self, timeout: float) -> dict[str, Any]:
        import json

        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"driver did not answer within {timeout:.0f}s; log:\n{self.output()[-3000:]}")
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"driver exited; log:\n{self.output()[-3000:]}")
        return json.loads(line)

    def call(self, timeout: float = 60, **command: Any) -> dict[str, Any]:
        import json

        assert self.popen.stdin is not None
        self.popen.stdin.write((json.dumps(command) + "\n").encode())
        self.popen.stdin.flush()
        return self._read(timeout)

    def append(self, workspace: str, prefix: str, count: int, *, hold: float = 0, spacing: float = 0,
               timeout: float = 60, payment: dict[str, Any] | None = None) -> list[list[Any]]:
        """Append ``count`` events (test.event, or payments by ``payment["emails"]``); return
        [source_event_id, event_id, position, created (or the error), seconds] per event."""
        extra = {"payment": payment} if payment else {}
        return self.call(timeout, op="append", workspace=workspace, prefix=prefix, count=count, hold=hold,
                         spacing=spacing, **extra)["results"]

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                assert self.popen.stdin is not None
                self.popen.stdin.write(b'{"op": "quit"}\n')
                self.popen.stdin.close()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log.close()


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc), e.g. a Celery worker's pool processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …": comm may contain spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def wait_for_worker_ready(worker: Process, timeout: float = 60) -> None:
    """Wait until a started Celery worker logs that it is ready (or fail with its log)."""
    try:
        wait_until(lambda: "ready." in worker.output() or not worker.alive(), timeout=timeout, interval=0.1,
                   message="the Celery worker to be ready")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; log:\n{worker.output()[-3000:]}") from None
    assert worker.alive(), worker.output()[-3000:]


def http(base: str, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
         raw: bytes | None = None, timeout: float = 15) -> tuple[int, Any, float]:
    """One HTTP request (new connection); returns (status, JSON body or text, seconds taken).
    A refused or broken connection, or an answer cut off half-way (a worker killed while writing
    it: ``IncompleteRead``), is status 0, so callers can count it as "not answered"."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Content-Type": "application/json", **(headers or {})}
    started = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}", time.monotonic() - started
    finally:
        conn.close()
    try:
        decoded: Any = json.loads(payload) if payload else None
    except ValueError:
        decoded = payload.decode(errors="replace")
    return status, decoded, time.monotonic() - started


def production_env(**overrides: str | None) -> dict[str, str]:
    """A gunicorn/worker environment shaped like production (DEBUG off) on the test database."""
    import secrets

    return subprocess_env(**{
        "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONN_MAX_AGE": "60", **overrides,
    })


STRIPE_FIXTURE = ROOT / "tests" / "fixtures" / "stripe" / "customer.created.json"


def stripe_delivery(secret: str, event_id: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A Stripe ``customer.created`` delivery (the stored fixture with its own event id), signed as
    Stripe signs: ``Stripe-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>")``."""
    import hashlib
    import hmac
    import json

    payload = json.loads(STRIPE_FIXTURE.read_text())
    payload["id"] = event_id
    payload["data"]["object"]["id"] = "cus_" + event_id.removeprefix("evt_")
    body = json.dumps(payload).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}
