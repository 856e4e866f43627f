"""The server's CPU per request over HTTP (gunicorn included), by request kind.

    python -m bench.http_requests [--requests 2000] [--concurrency 16]
        [--database postgres --storage s3]

One N=200 rush first (its course, submissions and feedback), then each kind ``--requests``
times from ``--concurrency`` client threads (plain ``requests``, students in turn, their
tokens in the server's cache after the first round), on a new connection per request and
on kept-alive connections: the wall time and the CPU ms per request of the server's
processes (master and workers) and of this process. ``bench.profile_requests`` gives the
same kinds' CPU inside Django alone; the difference is the HTTP server and the sockets.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

import requests

from nbgrader_exchange.archive_download import INLINE_ACCEPT

from .common import client_files, machine, server_under_test
from .rush import run_rush
from .workload import ASSIGNMENT, COURSE, Workload

Request = tuple[str, dict[str, str]]


def measure(
    target_cpu: Callable[[], float],
    request_for: Callable[[str], Request],
    names: list[str],
    *,
    count: int,
    concurrency: int,
    keep_alive: bool,
) -> dict[str, float]:
    """``count`` GETs of ``request_for(student)``; raises AssertionError on any answer but 200."""
    next_index = [0]
    failures: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session() if keep_alive else None
        while True:
            with lock:
                if next_index[0] >= count or failures:
                    return
                index = next_index[0]
                next_index[0] += 1
            url, headers = request_for(names[index % len(names)])
            response = (session or requests).get(url, headers=headers, timeout=60)
            if response.status_code != 200:
                with lock:
                    failures.append(f"{url}: {response.status_code} {response.text[:200]}")

    server, clients, started = target_cpu(), time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise AssertionError(failures[0])
    return {
        "wall_s": time.perf_counter() - started,
        "server_ms": (target_cpu() - server) / count * 1000,
        "client_ms": (time.process_time() - clients) / count * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_requests")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", "-c", type=int, default=16)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="sqlite")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    args = parser.parse_args(argv)
    with server_under_test(database=args.database, storage=args.storage) as target:
        work = Workload(200)
        with client_files("memory", "exchange-http-requests-") as scratch:
            report = run_rush(
                target, students=200, concurrency=16, workload=work, workdir=scratch / "rush"
            )
        if not report.ok:
            print("the rush failed; nothing measured", file=sys.stderr)
            return 1
        tokens = target.tokens(dict.fromkeys(work.names, False))
        api = f"{target.url.rstrip('/')}/api/v1/courses/{COURSE}/assignments/{ASSIGNMENT}"

        def auth(student: str) -> dict[str, str]:
            return {"Authorization": f"token {tokens[student]}"}

        kinds: dict[str, Callable[[str], Request]] = {
            "GET /healthz": lambda s: (f"{target.url.rstrip('/')}/healthz", {}),
            "an assignment's JSON": lambda s: (api, auth(s)),
            "a student's feedback, files inline (base64 in JSON)": lambda s: (
                f"{api}/feedback?inline=true",
                auth(s),
            ),
            "a student's feedback, files inline (after the JSON, as the plugin asks)": lambda s: (
                f"{api}/feedback?inline=true",
                {**auth(s), "Accept": INLINE_ACCEPT},
            ),
        }
        print("| request | connection | wall s | server CPU ms | client CPU ms |")
        print("|---|---|---|---|---|")
        for kind, request_for in kinds.items():
            for keep_alive in (False, True):
                row = measure(
                    target.sampler.cpu_seconds,
                    request_for,
                    work.names,
                    count=args.requests,
                    concurrency=args.concurrency,
                    keep_alive=keep_alive,
                )
                print(
                    f"| {kind} | {'kept alive' if keep_alive else 'new'} | {row['wall_s']:.2f} "
                    f"| {row['server_ms']:.2f} | {row['client_ms']:.2f} |"
                )
        print(f"machine: {machine(target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
