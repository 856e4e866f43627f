"""What every benchmark shares: the server under test (gunicorn on a throwaway PostgreSQL or
SQLite, local files or S3), the RSS sampler of its processes, per-phase statistics, clients
that count the bytes they send and receive, and a description of the machine."""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from exchange_site import gunicorn_conf
from tests.harness.live import LiveServer
from tests.harness.postgres import ThrowawayPostgres

MIB = 1024 * 1024
# Threads per gunicorn worker unless a benchmark is told otherwise: the service's own, as
# `make run`, the image and the chart start it.
THREADS = gunicorn_conf.threads


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--threads`` of the gunicorn under test, the service's defaults
    on a 2-CPU machine unless given."""
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="threads per gunicorn worker (the service's: %(default)s)",
    )


def client_class() -> Any:
    """The plugin's HTTP client class (imported late: the plugin is an optional part)."""
    from nbgrader_exchange.client import ExchangeClient

    return ExchangeClient


# --- statistics ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Phase:
    """One phase of a benchmark: its operations' latencies, errors and bytes."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0
    started: float = 0.0
    ended: float = 0.0
    peak_rss: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    # CPU seconds of the machine's SeaweedFS and PostgreSQL processes (OTHER_PROCESSES).
    others_cpu: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Checks waiting for ``settle``, with what they check.
    held: list[tuple[Callable[[Any], None], Any]] = field(default_factory=list, repr=False)

    @property
    def wall(self) -> float:
        return self.ended - self.started

    failed_ops: int = 0

    @property
    def ops(self) -> int:
        return len(self.latencies) + self.failed_ops

    def count(self, sent: int = 0, received: int = 0) -> None:
        with self.lock:
            self.bytes_sent += sent
            self.bytes_received += received

    def _failed(self, exc: Exception) -> None:
        cause = exc.__cause__ or exc.__context__
        because = f" [{type(cause).__name__}: {cause}]" if cause is not None else ""
        with self.lock:
            self.errors.append(f"{type(exc).__name__}: {exc}{because}")
            if len(self.errors) <= 3:
                traceback.print_exception(exc)

    def run(
        self,
        operation: Callable[[], Any],
        check: Callable[[Any], None] | None = None,
        *,
        later: bool = False,
    ) -> Any:
        """Time one operation; then, untimed, ``check(result)``: at once, or with ``later``
        when the phase is settled (``settle``), after its clock and CPU figures. An exception
        of either is an error of the phase, with its sentence."""
        start = time.perf_counter()
        try:
            result = operation()
        except Exception as exc:  # every failure counts, whatever it is
            with self.lock:
                self.failed_ops += 1
            self._failed(exc)
            return None
        with self.lock:
            self.latencies.append(time.perf_counter() - start)
            if check is not None and later:
                self.held.append((check, result))
                return result
        if check is not None:
            self._check(check, result)
        return result

    def _check(self, check: Callable[[Any], None], result: Any) -> None:
        try:
            check(result)
        except Exception as exc:  # a byte that differs, a lost submission
            self._failed(exc)

    def settle(self) -> None:
        """The checks held back (``run(later=True)``), one after another."""
        with self.lock:
            held, self.held = self.held, []
        for check, result in held:
            self._check(check, result)

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "ops": self.ops,
            "wall_s": round(self.wall, 2),
            "ops_per_s": round(self.ops / self.wall, 1) if self.wall else 0.0,
            "p50_ms": round(percentile(self.latencies, 0.50) * 1000),
            "p95_ms": round(percentile(self.latencies, 0.95) * 1000),
            "p99_ms": round(percentile(self.latencies, 0.99) * 1000),
            "errors": len(self.errors),
            "sent_MB": round(self.bytes_sent / 1e6, 1),
            "received_MB": round(self.bytes_received / 1e6, 1),
            "server_peak_rss_MB": round(self.peak_rss / 1e6),
            "server_cpu_s": round(self.server_cpu, 1),
            "client_cpu_s": round(self.client_cpu, 1),
            **{f"{name}_cpu_s": round(cpu, 1) for name, cpu in self.others_cpu.items()},
            **self.notes,
        }


def counting_client(url: str, token: str, phase_ref: Callable[[], Phase], **options: Any) -> Any:
    """The plugin's client, counting request and response bodies into the current phase."""
    client = client_class()(url, token, **options)

    def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        body = response.request.body
        sent = len(body) if body is not None and hasattr(body, "__len__") else 0
        received = int(response.headers.get("Content-Length") or 0)
        phase_ref().count(sent, received)

    client.session.hooks["response"].append(count)
    return client


# Where the students' own files go: each student of a rush stands for a notebook server in
# a pod of its own, with a disk of its own. Written to this machine's disk, 200 students'
# file writes and deletes (kernel time on the same two CPUs, the same journal as the
# server's blob store) were counted against the server; ngshare's rush client keeps what
# it fetches in memory and writes no file at all. "memory" puts them in /dev/shm.
CLIENT_FILES = ("memory", "disk")


@contextmanager
def client_files(where: str, prefix: str) -> Iterator[Path]:
    """A new directory for the clients' files, in memory (/dev/shm) or on disk (the
    temporary directory's file system), removed with all it holds when the block ends,
    however it ends (in memory, a leftover would hold RAM until the machine restarts)."""
    if where not in CLIENT_FILES:
        raise ValueError(f"client files go to {' or '.join(CLIENT_FILES)}, not {where!r}")
    memory = Path("/dev/shm")
    if where == "memory" and not (memory.is_dir() and os.access(memory, os.W_OK)):
        raise SystemExit(
            "--client-files memory needs a writable /dev/shm; use --client-files disk."
        )
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=memory if where == "memory" else None))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table (columns of the first row)."""
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


# What else shares the machine's CPUs with the service and its clients in a run.
OTHER_PROCESSES = ("weed", "postgres")


def cpu_of_others() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each of the machine's SeaweedFS and PostgreSQL processes."""
    found: dict[int, tuple[str, float]] = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        name = next((n for n in OTHER_PROCESSES if n in (process.info["name"] or "")), None)
        times = process.info["cpu_times"]
        if name and times is not None:
            found[process.pid] = (name, times.user + times.system)
    return found


def cpu_of_others_since(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """Their CPU since ``before``: a process started since counts whole, one that ended is
    left out (a PostgreSQL backend that exits takes its figure with it)."""
    spent = dict.fromkeys(OTHER_PROCESSES, 0.0)
    for pid, (name, cpu) in cpu_of_others().items():
        earlier = before.get(pid)
        spent[name] += cpu - (earlier[1] if earlier and earlier[0] == name else 0.0)
    return spent


# --- the server under test ----------------------------------------------------------------


class RssSampler:
    """Samples the summed RSS of a process and all its children (gunicorn's master and
    workers) in a thread; ``peak`` since start, ``phase_peak`` since the last ``mark``."""

    # Finding a process's children reads every process's /proc entry (1-2 ms of the
    # clients' CPU with a PostgreSQL and a SeaweedFS running); sampled ten times a second,
    # the list is looked up again only this often, or when one of its processes has ended.
    CHILDREN_EVERY = 1.0

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.phase_peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._known: list[psutil.Process] = []
        self._known_at = -math.inf

    def _processes(self, *, fresh: bool = True) -> list[psutil.Process]:
        """The server's process and all its children ([] once it has ended); unless
        ``fresh``, the list found less than CHILDREN_EVERY seconds ago."""
        now = time.monotonic()
        if fresh or now - self._known_at >= self.CHILDREN_EVERY:
            try:
                self._known = [self.process, *self.process.children(recursive=True)]
            except psutil.NoSuchProcess:
                self._known = []
            self._known_at = now
        return self._known

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far."""
        total = 0.0
        for process in self._processes():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def current(self, *, fresh: bool = True) -> int:
        """The summed RSS of the server's processes now."""
        total = 0
        for process in self._processes(fresh=fresh):
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                self._known_at = -math.inf  # a worker replaced: look again next time
                continue
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            value = self.current(fresh=False)
            self.samples.append((time.monotonic(), value))
            self.peak = max(self.peak, value)
            self.phase_peak = max(self.phase_peak, value)
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def mark(self) -> int:
        """The peak since the last mark, and start a new one."""
        peak, self.phase_peak = self.phase_peak, self.current()
        return max(peak, self.phase_peak)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Target:
    """A running server under test, with what the report needs to know about it."""

    server: LiveServer
    database: str
    storage: str
    postgres: ThrowawayPostgres | None
    sampler: RssSampler
    workers: int
    threads: int

    @property
    def url(self) -> str:
        return self.server.url

    def tokens(self, users: dict[str, bool]) -> dict[str, str]:
        return self.server.tokens(users)

    def bytes_stored(self) -> dict[str, int]:
        """Bytes of file storage (local blobs) and of the database."""
        result: dict[str, int] = {}
        blobs = self.server.data_dir / "files" / "blobs"
        if blobs.is_dir():
            result["files"] = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file())
        code = (
            "from django.db import connection\n"
            "c = connection.cursor()\n"
            "c.execute('SELECT pg_database_size(current_database())')\n"
            "print(c.fetchone()[0])"
            if self.database == "postgres"
            else "from django.conf import settings; import os\n"
            "print(os.path.getsize(settings.DATABASES['default']['NAME']))"
        )
        result["database"] = int(self.server.manage("shell", "-c", code).stdout.split()[-1])
        return result


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """In the main thread: SIGTERM (``kill``, ``timeout``) ends the benchmark as Ctrl-C
    does, through every ``finally``. Without it the process died at once, and the
    throwaway PostgreSQL (a daemon of its own, which outlives its parent) and the run's
    directories stayed behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def server_under_test(
    *,
    database: str = "postgres",
    storage: str = "local",
    workers: int = 2,
    threads: int = THREADS,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> Iterator[Target]:
    """gunicorn serving the exchange on a fresh database and storage, sampled for RSS; all
    of it stopped and removed at the end, also when the benchmark is stopped by SIGTERM."""
    with sigterm_as_exit(), _served(database, storage, workers, threads, env, workdir) as target:
        yield target


@contextmanager
def _served(
    database: str,
    storage: str,
    workers: int,
    threads: int,
    env: dict[str, str] | None,
    workdir: Path | None,
) -> Iterator[Target]:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="exchange-bench-"))
    data_dir = workdir / "server"
    data_dir.mkdir(parents=True, exist_ok=True)
    extra = {"EXCHANGE_UPLOAD_TEMP_DIR": str(data_dir / "spool"), **(env or {})}
    (data_dir / "spool").mkdir(exist_ok=True)
    postgres = store = None
    try:
        if database == "postgres":
            postgres = ThrowawayPostgres().start()
        if storage == "s3":
            from tests.harness.seaweedfs import SeaweedFS

            store = SeaweedFS(workdir / "seaweedfs").start()
            store.warm_up()
            extra.update(store.env())
        server = LiveServer(
            data_dir=data_dir,
            database_url=postgres.url if postgres else None,
            env=extra,
            workers=workers,
            threads=threads,
        )
        server.start()
        assert server.process is not None
        sampler = RssSampler(server.process.pid).start()
        try:
            yield Target(server, database, storage, postgres, sampler, workers, threads)
        finally:
            sampler.stop()
            server.stop()
    finally:
        if store is not None:
            store.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_probe_ms() -> float:
    """CPU ms of a fixed pure-Python loop (best of three): the machine's speed for this
    kind of work at this moment. On a shared virtual machine it changes between rounds by
    more than most changes to the service do, so each report says what it was."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def machine(target: Target | None = None) -> dict[str, Any]:
    """The machine and software the figures come from."""
    load = os.getloadavg()
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_GB": round(psutil.virtual_memory().total / 1e9, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "cpu_probe_ms": cpu_probe_ms(),
    }
    if target is not None:
        info["database"] = target.database
        if target.postgres is not None:
            info["postgresql"] = target.postgres.version()
        info["storage"] = target.storage
        info["gunicorn"] = f"{target.workers} workers x {target.threads} threads"
    return info
