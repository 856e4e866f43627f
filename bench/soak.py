"""The soak: a steady rate of student operations (submit, fetch, fetch feedback) for a long
time, to show that the server's memory stays flat and nothing fails. Not for CI.

    python -m bench.soak --minutes 10 --rate 5

Each minute prints the operations done, errors, p95 latency and the server's RSS (all
gunicorn processes); at the end, the RSS of the first and the last minute are compared.
Every download is checked byte for byte, as in the rush.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.harness import live as live_setup

from .common import (
    Phase,
    add_server_options,
    client_files,
    counting_client,
    machine,
    percentile,
    server_under_test,
)
from .workload import ASSIGNMENT, COURSE, Workload, check_directory


def _minute_row(number: int, phase: Phase, rss: list[int]) -> dict[str, Any]:
    row = {
        "minute": number,
        "ops": phase.ops,
        "errors": len(phase.errors),
        "p95_ms": round(percentile(phase.latencies, 0.95) * 1000),
        "rss_min_MB": round(min(rss) / 1e6),
        "rss_max_MB": round(max(rss) / 1e6),
        "rss_last_MB": round(rss[-1] / 1e6),
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=5, help="operations per second")
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    add_server_options(parser)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from nbgrader_exchange.files import entry_from_bytes

    work = Workload(args.students)
    names = work.names
    minutes: list[dict[str, Any]] = []
    with (
        server_under_test(
            database=args.database, workers=args.workers, threads=args.threads
        ) as target,
        client_files("disk", "exchange-soak-") as scratch,
    ):
        tokens = target.tokens(
            {"soak-admin": True, "soak-instructor": False, **dict.fromkeys(names, False)}
        )
        live_setup.create_course(
            target.server,
            code=COURSE,
            admin_token=tokens["soak-admin"],
            instructor="soak-instructor",
            instructor_token=tokens["soak-instructor"],
            students=names,
        )
        phase_box = [Phase("minute 1")]
        instructor = counting_client(target.url, tokens["soak-instructor"], lambda: phase_box[0])
        url = f"courses/{COURSE}/assignments/{ASSIGNMENT}"
        instructor.upload_bundle(
            f"{url}/release",
            [entry_from_bytes(p, d) for p, d in work.release.items()],
            what="release",
        )
        feedback_lock = threading.Lock()
        with_feedback: set[str] = set()

        def operation(student: str, kind: str) -> None:
            with counting_client(target.url, tokens[student], lambda: phase_box[0]) as http:
                if kind == "fetch":
                    manifest = http.get(f"{url}/release/files", what="fetch")
                    dest = scratch / f"fetch-{student}-{time.monotonic_ns()}"
                    try:
                        http.download_bundle(manifest["files"], dest, what="fetch")
                        check_directory(dest, work.release, f"{student}'s fetch")
                    finally:
                        shutil.rmtree(dest, ignore_errors=True)
                elif kind == "submit":
                    detail = http.get(url, what="submit")
                    files = work.submission(student)
                    result = http.upload_bundle(
                        f"{url}/submissions",
                        [entry_from_bytes(p, d) for p, d in files.items()],
                        what="submit",
                        known_shas={f["sha256"] for f in detail["files"]},
                    )
                    with feedback_lock:
                        first = student not in with_feedback
                        with_feedback.add(student)
                    if first:
                        instructor.upload_bundle(
                            f"submissions/{result['id']}/feedback",
                            [entry_from_bytes(p, d) for p, d in work.feedback(student).items()],
                            what="release feedback",
                        )
                else:
                    released = http.get(f"{url}/feedback", what="fetch feedback")
                    if released:
                        dest = scratch / f"feedback-{student}-{time.monotonic_ns()}"
                        try:
                            first = next(f for f in released if f["files"])
                            http.download_bundle(first["files"], dest, what="fetch feedback")
                            check_directory(dest, work.feedback(student), "feedback")
                        finally:
                            shutil.rmtree(dest, ignore_errors=True)

        rng = random.Random("soak")
        interval = 1.0 / args.rate
        end = time.monotonic() + args.minutes * 60
        minute_end = time.monotonic() + 60
        rss: list[int] = []
        print(json.dumps(machine(target)))
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            next_at = time.monotonic()
            while time.monotonic() < end:
                kind = rng.choices(["submit", "fetch", "feedback"], weights=[5, 3, 2])[0]
                student = rng.choice(names)
                phase = phase_box[0]
                pool.submit(phase.run, lambda s=student, k=kind: operation(s, k))
                rss.append(target.sampler.current())
                next_at += interval
                now = time.monotonic()
                if now >= minute_end:
                    minutes.append(_minute_row(len(minutes) + 1, phase, rss))
                    phase_box[0] = Phase(f"minute {len(minutes) + 1}")
                    rss = []
                    minute_end += 60
                time.sleep(max(0.0, next_at - time.monotonic()))
            if rss:  # the last, partial minute
                minutes.append(_minute_row(len(minutes) + 1, phase_box[0], rss))
        instructor.close()
    errors = sum(row["errors"] for row in minutes)
    growth = minutes[-1]["rss_max_MB"] - minutes[0]["rss_max_MB"] if minutes else 0
    summary = {
        "minutes": len(minutes),
        "ops": sum(row["ops"] for row in minutes),
        "errors": errors,
        "rss_first_minute_max_MB": minutes[0]["rss_max_MB"] if minutes else None,
        "rss_last_minute_max_MB": minutes[-1]["rss_max_MB"] if minutes else None,
        "rss_growth_MB": growth,
        "settings": vars(args) | {"json": str(args.json) if args.json else None},
    }
    print(json.dumps(summary))
    ok = errors == 0 and bool(minutes)
    print("RESULT: " + ("OK" if ok else "FAILED"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"per_minute": minutes, **summary}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
