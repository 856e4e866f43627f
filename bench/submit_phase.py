"""The rush's submit phase alone, run again and again: the CPU each submission costs.

    python -m bench.submit_phase --repeat 2 --at-once 1,16 [--database postgres --storage s3]

One N=200, C=16 rush first (so the course, the release and each student's remembered
release are those of the rush), then every student submits again ``--repeat`` times at
each concurrency of ``--at-once``, each run after ``--pause`` seconds: new notebooks (each
run's own bytes), the data file unchanged, as the plugin sends them (``send_submission``).
For each run: the wall time, the submit's p50 and p95, and the CPU ms per submission of the
server (gunicorn's processes), of the clients (this process) and of the machine's SeaweedFS
and PostgreSQL processes (``weed``, ``postgres``; give them the machine alone).

With every CPU busy, a submit waits for the others' CPU: with C students at once on two
CPUs its median is about C times the CPU per submission over two, which is what these
figures are for (RESULTS.md, "What a submit's p95 needs").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from nbgrader_exchange.files import entry_from_bytes
from nbgrader_exchange.submit import send_submission

from .common import (
    CLIENT_FILES,
    Phase,
    Target,
    add_server_options,
    counting_client,
    cpu_of_others,
    cpu_of_others_since,
    percentile,
)
from .rush import after_a_rush
from .workload import ASSIGNMENT, COURSE, NOTEBOOKS, Workload, parallel


def repeat_phase(
    target: Target,
    work: Workload,
    *,
    at_once: list[int],
    repeat: int,
    pause: float,
    caches: Path,
    course: str = COURSE,
) -> list[dict[str, float]]:
    """Every student of ``work`` submits again, ``repeat`` times at each concurrency of
    ``at_once``, after a rush on ``course`` whose students' nbgrader caches are under
    ``caches``: per run ``at_once``, ``wall_s``, ``p50_ms``, ``p95_ms`` and the CPU ms per
    submission of each kind of process. Raises AssertionError, with the first failures'
    sentences, on any failure or an answer that does not count the files sent."""
    n = len(work.names)
    tokens = target.tokens(dict.fromkeys(work.names, False))
    url = f"courses/{course}/assignments/{ASSIGNMENT}"
    rows = []
    run = 0
    for _ in range(repeat):
        for concurrency in at_once:
            run += 1
            # New notebooks (the server has not seen these bytes), the data file as released:
            # made before the clock, as the rush's.
            files = {
                student: {
                    path: data + b" " * run if path in NOTEBOOKS else data
                    for path, data in work.submission(student).items()
                }
                for student in work.names
            }
            time.sleep(pause)
            phase = Phase("submit")

            def submit(student: str, phase: Phase = phase, files: Any = files) -> None:
                sent = files[student]
                with counting_client(target.url, tokens[student], lambda: phase) as http:
                    answer = send_submission(
                        http,
                        url,
                        [entry_from_bytes(p, d) for p, d in sent.items()],
                        what="submit",
                        cache=str(caches / student),
                        course_id=course,
                        assignment_id=ASSIGNMENT,
                    )
                counted = (answer["file_count"], answer["total_size"])
                if counted != (len(sent), sum(map(len, sent.values()))):
                    raise AssertionError(f"{student}'s submission counts {counted}")

            others = cpu_of_others()
            server = target.sampler.cpu_seconds()
            clients = time.process_time()
            started = time.perf_counter()
            parallel(concurrency, work.names, lambda s, phase=phase: phase.run(lambda: submit(s)))
            wall = time.perf_counter() - started
            spent = {
                "server": target.sampler.cpu_seconds() - server,
                "clients": time.process_time() - clients,
                **cpu_of_others_since(others),
            }
            if phase.errors:
                raise AssertionError(phase.errors[:3])
            rows.append(
                {
                    "at_once": concurrency,
                    "wall_s": wall,
                    "p50_ms": percentile(phase.latencies, 0.5) * 1000,
                    "p95_ms": percentile(phase.latencies, 0.95) * 1000,
                    **{k: v / n * 1000 for k, v in spent.items()},
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_phase")
    parser.add_argument("--students", "-n", type=int, default=200)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="sqlite")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    add_server_options(parser)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--at-once", default="1,16", help="students submitting at once, one run each: %(default)s"
    )
    parser.add_argument("--pause", type=float, default=11.0, help="seconds before each run")
    parser.add_argument("--client-files", choices=CLIENT_FILES, default="memory")
    args = parser.parse_args(argv)
    at_once = [int(c) for c in args.at_once.split(",")]
    with after_a_rush(args, concurrency=16, prefix="exchange-submit-phase-") as rushed:
        if rushed is None:
            return 1
        target, work, scratch = rushed
        rows = repeat_phase(
            target,
            work,
            at_once=at_once,
            repeat=args.repeat,
            pause=args.pause,
            caches=scratch / "rush" / "caches",
        )
    for row in rows:
        cpu = {k: v for k, v in row.items() if k not in ("at_once", "wall_s", "p50_ms", "p95_ms")}
        print(
            f"C={row['at_once']}: {row['wall_s']:.2f} s, p50 {row['p50_ms']:.0f} ms, "
            f"p95 {row['p95_ms']:.0f} ms; CPU ms per submission: "
            + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
            + f"; all {sum(cpu.values()):.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
