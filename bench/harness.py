"""Shared plumbing for the benchmarks: the machine, fresh databases, processes, wrk, reports.

Nothing here is a benchmark on its own; ``ingest.py``, ``replay.py`` and ``lag.py`` use it. Every
process it starts is ended by its own id (its process group, created by us) and every load goes to
127.0.0.1 only, bounded in time.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK = os.environ.get("BENCH_WRK", "/usr/bin/wrk")
WRK_SCRIPT = Path(__file__).with_name("wrk_replay.lua")
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/8")
HOST = "127.0.0.1"


# --- the machine --------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    """What the figures were measured on: cores, memory, CPU model, PostgreSQL, Python, time."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "cpu": cpu,
        "postgresql": f"{pg} (synchronous_commit={sync}, fsync={fsync})",
        "python": platform.python_version(),
        "load average at start": load,
    }


def print_machine() -> dict[str, str]:
    info = machine()
    print("machine:")
    for key, value in info.items():
        print(f"  {key:<22} {value}")
    return info


# --- databases ----------------------------------------------------------------------------------

def fresh_database(name: str) -> str:
    """Drop and create database ``name`` (ours alone); return its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{PG_SERVER}/{name}"


def app_env(database_url: str, *, broker: bool = True, **extra: str) -> dict[str, str]:
    """The environment of every Refairn process of a benchmark: production settings on loopback."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "false",
        # The benchmark is one API key sending thousands of requests a second: lift its rate limit
        # (the throttle still runs and counts every request in Redis, as in production).
        "REFAIRN_API_RATE": "100000000/min",
        "CACHE_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if broker:
        env["CELERY_BROKER_URL"] = REDIS_URL
    else:
        env.pop("CELERY_BROKER_URL", None)
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Configure this process like the app's processes and migrate the database."""
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT",
                "REFAIRN_API_RATE", "CACHE_URL", "LOG_LEVEL", "CELERY_BROKER_URL"):
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def create_reference_table() -> None:
    """Create ``bench_event``: the store's table copied (columns, identity, indexes) plus its FK."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_event")
        cursor.execute("CREATE TABLE bench_event (LIKE ingestion_event INCLUDING ALL)")
        cursor.execute(
            "ALTER TABLE bench_event ADD CONSTRAINT bench_event_workspace_fk FOREIGN KEY (workspace_id) "
            "REFERENCES ingestion_workspace (id) DEFERRABLE INITIALLY DEFERRED"
        )


def close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# --- processes ----------------------------------------------------------------------------------

@dataclass
class Service:
    """A process we started in its own process group, with its output in a log file."""

    name: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM our child (gunicorn and celery shut down warmly), then SIGKILL what is left of its group."""
        pgid = self.process.pid  # start_new_session: the group id is our child's pid
        if self.process.poll() is None:
            self.process.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash, not a shutdown)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def start(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    handle = log.open("ab")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    handle.close()
    return Service(name, process, log)


@dataclass(frozen=True)
class Gunicorn:
    """How the web tier runs. See RESULTS.md for why these defaults on two cores."""

    workers: int = 4
    worker_class: str = "sync"
    threads: int = 1
    backlog: int = 2048

    def args(self, port: int) -> list[str]:
        args = [str(BIN / "gunicorn"), "refairn.wsgi:application", "--bind", f"{HOST}:{port}",
                "--workers", str(self.workers), "--worker-class", self.worker_class,
                "--backlog", str(self.backlog), "--log-level", "warning", "--timeout", "60"]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args

    def describe(self) -> str:
        extra = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.workers} {self.worker_class} workers{extra}"


def free_port() -> int:
    """A loopback port nobody listens on now (the machine is shared: fixed ports collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def start_gunicorn(config: Gunicorn, port: int, env: dict[str, str], log_dir: Path) -> Service:
    """Start gunicorn on ``port``, refusing a port someone else already serves (it would answer for us)."""
    if not port_is_free(port):
        raise RuntimeError(f"port {port} is already in use by another process; pass --port 0 for a free one")
    service = start("gunicorn", config.args(port), env, log_dir)
    wait_http(f"http://{HOST}:{port}/healthz", service)
    return service


def start_worker(env: dict[str, str], log_dir: Path, concurrency: int = 1, name: str = "worker",
                 loglevel: str = "WARNING") -> Service:
    args = [str(BIN / "celery"), "-A", "refairn", "worker", "--loglevel", loglevel, "--concurrency",
            str(concurrency), "--pool", "prefork", "-n", f"bench-{name}@%h", "--without-gossip",
            "--without-mingle", "--without-heartbeat"]
    return start(name, args, env, log_dir)


def start_beat(env: dict[str, str], log_dir: Path) -> Service:
    schedule = log_dir / "celerybeat-schedule"
    args = [str(BIN / "celery"), "-A", "refairn", "beat", "--loglevel", "WARNING", "-s", str(schedule)]
    return start("beat", args, env, log_dir)


def wait_http(url: str, service: Service, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited; see {service.log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s; see {service.log}")


@contextmanager
def running(*services: Service) -> Iterator[None]:
    try:
        yield
    finally:
        for service in reversed(services):
            service.stop()


# --- other load on the machine ------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")
# Processes that work for the benchmark even though we did not start them.
_SERVING = {"postgres", "wrk", "redis-server"}


def _busy_ticks() -> int:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[1]) + int(fields[2]) + int(fields[3])  # user + nice + system


def _process_ticks() -> dict[int, tuple[int, str, int]]:
    """pid -> (process group, command, user + system ticks) for every process we can read."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        rest = text[text.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(rest[2]), comm, int(rest[11]) + int(rest[12]))
    return table


class CpuWatch:
    """How much CPU processes foreign to the benchmark used during a run (other engineers' tests).

    The machine is shared; a figure measured while something else burns a core is not the
    machine's figure, and the report says so instead of hiding it.
    """

    def __init__(self, groups: set[int]) -> None:
        self.groups = groups | {os.getpgrp()}

    def __enter__(self) -> CpuWatch:
        self.start = time.monotonic()
        self.busy = _busy_ticks()
        self.table = _process_ticks()
        self.cores = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self.start
        busy = _busy_ticks() - self.busy
        ours = 0
        for pid, (group, comm, ticks) in _process_ticks().items():
            if group in self.groups or comm in _SERVING:
                before = self.table.get(pid)
                ours += ticks - (before[2] if before and before[0] == group else 0)
        self.cores = max(0.0, (busy - ours) / _TICK / elapsed) if elapsed > 0 else 0.0


# --- wrk ----------------------------------------------------------------------------------------

def http_request(method: str, path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def write_requests(path: Path, requests: Iterable[bytes]) -> int:
    """Write length-prefixed requests for wrk_replay.lua; return how many."""
    count = 0
    with path.open("wb") as out:
        for request in requests:
            out.write(b"%d\n" % len(request))
            out.write(request)
            count += 1
    return count


@dataclass
class LoadResult:
    name: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    exhausted: bool
    statuses: str = ""
    other_cores: float = 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    def row(self) -> str:
        flag = "  (request file ran out: raise --max-rate)" if self.exhausted else ""
        statuses = f"  [{self.statuses}]" if self.statuses else ""
        if self.other_cores >= 0.1:
            flag += f"  (other processes used {self.other_cores:.1f} cores meanwhile)"
        return (f"  {self.name:<34} c={self.connections:<3} {self.rps:>8.0f} req/s  p50 {self.p50_ms:>6.2f} ms  "
                f"p99 {self.p99_ms:>7.2f} ms  p99.9 {self.p999_ms:>7.2f} ms  errors {self.errors}{statuses}{flag}")


def run_wrk(name: str, url: str, request_file: Path, connections: int, seconds: float, *,
            cycle: bool = False, timeout_s: int = 5, groups: set[int] | None = None) -> LoadResult:
    """Run wrk (one thread: the load generator must leave the cores to the server) and parse it."""
    env = {**os.environ, "BENCH_REQUESTS": str(request_file), "BENCH_CYCLE": "1" if cycle else "0"}
    args = [WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
            "-s", str(WRK_SCRIPT), url]
    with CpuWatch(groups or set()) as watch:
        out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    duration = raw["duration_us"] / 1e6
    return LoadResult(
        name=name, connections=connections, seconds=duration, requests=raw["requests"],
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000, p999_ms=raw["p999_us"] / 1000,
        max_ms=raw["max_us"] / 1000, non2xx=raw["non2xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        exhausted=bool(raw["exhausted"]), statuses=raw["statuses"], other_cores=watch.cores,
    )


# --- reporting ----------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]
