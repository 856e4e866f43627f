"""The idle server's memory: gunicorn's master and workers on SQLite and local files, as
``make run`` and the image run it (2 workers x 4 threads), measured after start-up, after
the course is set up, and after a small rush has served every kind of request (release,
fetch, submit, collect, feedback both ways); then idle again for a few seconds.

    python -m bench.idle_rss
    python -m bench.idle_rss --gunicorn-args "--preload"

RSS is what ``bench.common.RssSampler`` sums (master + workers; shared pages count once per
process); PSS divides shared pages among the processes that map them and USS is what each
process alone holds, so PSS and USS show what copy-on-write sharing saves, RSS does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import psutil

from .common import Target, add_server_options, machine, server_under_test
from .rush import run_rush


def processes(target: Target) -> list[psutil.Process]:
    """gunicorn's master first, then its workers."""
    master = target.sampler.process
    return [master, *master.children(recursive=True)]


def memory(target: Target, *, settle: float = 3.0, samples: int = 5) -> dict[str, Any]:
    """Median RSS, PSS and USS (MB) of each process and their sums, over ``samples`` samples
    taken after ``settle`` seconds of quiet."""
    time.sleep(settle)
    taken: list[list[Any]] = []
    for _ in range(samples):
        taken.append([p.memory_full_info() for p in processes(target)])
        time.sleep(0.5)

    def median(kind: str, index: int | None = None) -> float:
        values = [
            sum(getattr(m, kind) for m in sample) if index is None else getattr(sample[index], kind)
            for sample in taken
        ]
        return round(statistics.median(values) / 1e6, 1)

    count = min(len(sample) for sample in taken)
    return {
        "rss_MB": median("rss"),
        "pss_MB": median("pss"),
        "uss_MB": median("uss"),
        "per_process_rss_MB": [median("rss", i) for i in range(count)],
        "per_process_uss_MB": [median("uss", i) for i in range(count)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.idle_rss", description=__doc__.split("\n\n")[0]
    )
    add_server_options(parser)
    parser.add_argument("--students", type=int, default=8, help="students of the small rush")
    parser.add_argument(
        "--gunicorn-args", default="", help="extra gunicorn options (GUNICORN_CMD_ARGS)"
    )
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    env = {"GUNICORN_CMD_ARGS": args.gunicorn_args} if args.gunicorn_args else {}
    result: dict[str, Any] = {"gunicorn_args": args.gunicorn_args}
    with server_under_test(
        database="sqlite", storage="local", workers=args.workers, threads=args.threads, env=env
    ) as target:
        result["started"] = memory(target)
        report = run_rush(target, students=args.students, concurrency=4, log=lambda line: None)
        result["rush_ok"] = report.ok
        result["rush_peak_rss_MB"] = round(target.sampler.peak / 1e6, 1)
        result["after_rush"] = memory(target)
        result["machine"] = machine(target)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0 if result["rush_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
