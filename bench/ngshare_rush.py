"""The deadline rush of ``bench.rush`` against ngshare 0.6.0 (``make ngshare``), for the side
by side comparison in bench/RESULTS.md: the same workload (three ~200 KB notebooks and a
5 MB data file; each student submits changed notebooks and the data file; 50 KB of feedback
per notebook) and the same phases, through ngshare's HTTP API as its nbgrader exchange
plugin calls it (every file base64 in JSON, a submission sends every file). Every byte
downloaded is checked.

    python -m bench.ngshare_rush --students 200 --concurrency 16
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from .common import Phase, RssSampler, machine, sigterm_as_exit, table
from .workload import Workload, digests, hold_checks, parallel, same_files

COURSE = "bench101"
ASSIGNMENT = "ps1"


def pack(files: dict[str, bytes]) -> str:
    return json.dumps(
        [{"path": p, "content": base64.encodebytes(b).decode()} for p, b in files.items()]
    )


def unpack(entries: list[dict[str, Any]]) -> dict[str, bytes]:
    return {e["path"]: base64.decodebytes(e["content"].encode()) for e in entries}


def run(students: int, concurrency: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    from tests.plugin.test_import_ngshare import Ngshare

    work = Workload(students)
    names = work.names
    base = Path(tempfile.mkdtemp(prefix="ngshare-rush-"))
    server = Ngshare(base).start()
    sampler = RssSampler(server.process.pid).start()
    phases: list[Phase] = []
    try:
        idle = sampler.current()

        def call(method: str, path: str, user: str, **kwargs: Any) -> dict[str, Any]:
            response = requests.request(
                method,
                f"{server.url}/{path}",
                headers={"Authorization": f"token {user}"},
                timeout=600,
                **kwargs,
            )
            body = response.json()
            if not body.get("success"):
                raise RuntimeError(f"{method} {path}: {body}")
            return body

        teacher = "bench-instructor"
        call("POST", f"course/{COURSE}", "ng-admin", data={"instructors": json.dumps([teacher])})
        call(
            "POST",
            f"students/{COURSE}",
            teacher,
            data={
                "students": json.dumps(
                    [
                        {"username": n, "first_name": n, "last_name": "S", "email": f"{n}@x.org"}
                        for n in names
                    ]
                )
            },
        )

        def begin(name: str) -> Phase:
            phase = Phase(name)
            phases.append(phase)
            sampler.mark()
            phase.server_cpu = -sampler.cpu_seconds()
            phase.started = time.perf_counter()
            log(f"phase {name} ...")
            return phase

        def end(phase: Phase) -> None:
            phase.ended = phase.ended or time.perf_counter()
            phase.server_cpu += sampler.cpu_seconds()
            phase.peak_rss = sampler.mark()
            phase.settle()  # the checks held back, after the clock, as bench.rush
            log(f"  {json.dumps(phase.summary())}")

        phase = begin("release")
        phase.run(
            lambda: call(
                "POST",
                f"assignment/{COURSE}/{ASSIGNMENT}",
                teacher,
                data={"files": pack(work.release)},
            )
        )
        end(phase)

        def check(got: dict[str, Any], expected: dict[str, Any], what: str) -> None:
            if not same_files(got, expected):
                raise AssertionError(f"{what}: files differ")

        # What each student fetched is kept for its check after the phase, as bench.rush
        # keeps the files, within the same HOLD_BYTES.
        hold = hold_checks(work.release for _ in names)
        phase = begin("fetch")
        parallel(
            concurrency,
            names,
            lambda s: phase.run(
                lambda: unpack(call("GET", f"assignment/{COURSE}/{ASSIGNMENT}", s)["files"]),
                lambda got: check(got, work.release, f"{s}'s fetch"),
                later=hold,
            ),
        )
        end(phase)

        stamps: dict[str, str] = {}
        submission_files = {s: work.submission(s) for s in names}  # before the clock, as bench.rush
        phase = begin("submit")

        def submit(s: str) -> None:
            body = call(
                "POST",
                f"submission/{COURSE}/{ASSIGNMENT}",
                s,
                data={"files": pack(submission_files[s])},
            )
            stamps[s] = body["timestamp"]

        parallel(concurrency, names, lambda s: phase.run(lambda: submit(s)))
        end(phase)

        def collect_one(s: str) -> dict[str, bytes]:
            return unpack(call("GET", f"submission/{COURSE}/{ASSIGNMENT}/{s}", teacher)["files"])

        expected_collect = work.collected(submission_files)  # before the clock, as bench.rush
        phase = begin("collect")

        def collect() -> None:
            call("GET", f"submissions/{COURSE}/{ASSIGNMENT}", teacher)
            for s in names:
                start = time.perf_counter()
                phase.run(
                    lambda s=s: collect_one(s),
                    lambda got, s=s: check(got, expected_collect[s], f"{s}'s collect"),
                    later=hold,
                )
                phase.notes.setdefault("_t", []).append(time.perf_counter() - start)

        collect()
        phase.latencies = phase.notes.pop("_t", phase.latencies)
        end(phase)

        phase = begin("collect_concurrent")
        parallel(
            concurrency,
            names,
            lambda s: phase.run(
                lambda: collect_one(s),
                lambda got: check(got, expected_collect[s], f"{s}'s collect"),
                later=hold,
            ),
        )
        end(phase)

        feedback = {s: work.feedback(s) for s in names}  # before the clock, as bench.rush
        phase = begin("release_feedback")
        for s in names:
            phase.run(
                lambda s=s: call(
                    "POST",
                    f"feedback/{COURSE}/{ASSIGNMENT}/{s}",
                    teacher,
                    data={"timestamp": stamps[s], "files": pack(feedback[s])},
                )
            )
        end(phase)

        expected = {s: digests(feedback[s]) for s in names}  # as bench.rush does
        hold_feedback = hold_checks(expected.values())
        phase = begin("fetch_feedback")

        def fetch_feedback(s: str) -> dict[str, bytes]:
            listed = call("GET", f"submissions/{COURSE}/{ASSIGNMENT}/{s}", s)["submissions"]
            files: dict[str, bytes] = {}
            for sub in listed:
                got = call(
                    "GET",
                    f"feedback/{COURSE}/{ASSIGNMENT}/{s}",
                    s,
                    params={"timestamp": sub["timestamp"]},
                )
                files.update(unpack(got["files"]))
            return files

        parallel(
            concurrency,
            names,
            lambda s: phase.run(
                lambda: fetch_feedback(s),
                lambda got: check(got, expected[s], f"{s}'s feedback"),
                later=hold_feedback,
            ),
        )
        end(phase)
        stored = sum(p.stat().st_size for p in server.storage.rglob("*") if p.is_file())
        return {
            "phases": [p.summary() for p in phases],
            "totals": {
                "wall_s": round(sum(p.wall for p in phases), 1),
                "server_idle_rss_MB": round(idle / 1e6),
                "server_peak_rss_MB": round(sampler.peak / 1e6),
                "stored_files_MB": round(stored / 1e6, 1),
            },
            "ok": not any(p.errors for p in phases),
            "errors": {p.name: p.errors[:5] for p in phases if p.errors},
            "machine": machine(),
            "settings": {
                "students": students,
                "concurrency": concurrency,
                "server": "ngshare",
                "checks_held": hold,
            },
        }
    finally:
        sampler.stop()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ngshare_rush")
    parser.add_argument("--students", "-n", type=int, default=200)
    parser.add_argument("--concurrency", "-c", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with sigterm_as_exit():  # ngshare stopped and its directory removed on SIGTERM too
        report = run(args.students, args.concurrency)
    print(table(report["phases"]))
    print(f"Totals: {json.dumps(report['totals'])}")
    print("RESULT: " + ("OK" if report["ok"] else "FAILED"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
