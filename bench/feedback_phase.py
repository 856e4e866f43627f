"""The rush's fetch-feedback phase alone, run again and again: where its time goes.

    python -m bench.feedback_phase --repeat 4 [--database postgres --storage s3]

One N=200, C=16 rush first (so the course, submissions and feedback are those of the
rush), then the phase ``--repeat`` times, each after ``--pause`` seconds (longer than
EXCHANGE_API_TOKEN_CACHE_SECONDS, so that tokens are out of the cache as in the rush). For
each run: the wall time, and the CPU per student of the server (gunicorn's processes), of
the clients (this process) and of the machine's SeaweedFS and PostgreSQL processes
(``weed``, ``postgres``; give them the machine alone). The clients are those of
``bench.rush``: the plugin's, one per student, checking every byte.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    CLIENT_FILES,
    Phase,
    Target,
    add_server_options,
    counting_client,
    cpu_of_others,
    cpu_of_others_since,
)
from .rush import after_a_rush, fetch_feedback_phase
from .workload import ASSIGNMENT, COURSE, Workload, digests


def repeat_phase(
    target: Target,
    work: Workload,
    *,
    concurrency: int,
    repeat: int,
    pause: float,
    scratch: Path,
    course: str = COURSE,
) -> list[dict[str, float]]:
    """The fetch-feedback phase ``repeat`` times on a course a rush has run on: per run the
    wall time (``wall_s``) and the CPU ms per student of each kind of process. Raises
    AssertionError, with the first failures' sentences, on any failure or byte that differs."""
    n = len(work.names)
    tokens = target.tokens(dict.fromkeys(work.names, False))
    expected = {student: digests(work.feedback(student)) for student in work.names}
    url = f"courses/{course}/assignments/{ASSIGNMENT}"
    rows = []
    for _ in range(repeat):
        time.sleep(pause)
        phase = Phase("fetch_feedback")

        def client(student: str, phase: Phase = phase) -> Any:
            return counting_client(target.url, tokens[student], lambda: phase)

        others = cpu_of_others()
        server = target.sampler.cpu_seconds()
        clients = time.process_time()
        started = time.perf_counter()
        fetch_feedback_phase(
            phase,
            client,
            work.names,
            assignment_url=url,
            scratch=scratch,
            expected=expected,
            concurrency=concurrency,
        )
        wall = time.perf_counter() - started
        spent = {
            "server": target.sampler.cpu_seconds() - server,
            "clients": time.process_time() - clients,
            **cpu_of_others_since(others),
        }
        phase.settle()  # the checks held back, after the clock
        if phase.errors:
            raise AssertionError(phase.errors[:3])
        rows.append({"wall_s": wall, **{k: v / n * 1000 for k, v in spent.items()}})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feedback_phase")
    parser.add_argument("--students", "-n", type=int, default=200)
    parser.add_argument("--concurrency", "-c", type=int, default=16)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="sqlite")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    add_server_options(parser)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--pause", type=float, default=11.0, help="seconds before each run")
    parser.add_argument("--client-files", choices=CLIENT_FILES, default="memory")
    args = parser.parse_args(argv)
    with after_a_rush(
        args, concurrency=args.concurrency, prefix="exchange-feedback-phase-"
    ) as rushed:
        if rushed is None:
            return 1
        target, work, scratch = rushed
        rows = repeat_phase(
            target,
            work,
            concurrency=args.concurrency,
            repeat=args.repeat,
            pause=args.pause,
            scratch=scratch / "again",
        )
    for number, row in enumerate(rows):
        print(
            f"run {number}: {row['wall_s']:.2f} s; CPU ms per student: "
            + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "wall_s")
        )
    print(f"median {statistics.median(r['wall_s'] for r in rows):.2f} s over {len(rows)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
