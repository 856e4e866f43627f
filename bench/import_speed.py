"""Import speed: ``manage.py import_exchange fs`` over a generated filesystem exchange of
STUDENTS students x SUBMISSIONS submissions of one ~SIZE_MIB MiB notebook each (random,
incompressible bytes), plus one release and feedback on each student's last submission,
laid out exactly as nbgrader 0.9's filesystem exchange writes it. Then the same run again
(idempotent: nothing new). The server's database and storage are fresh (a throwaway
PostgreSQL by default).

    python -m bench.import_speed --students 500 --submissions 3 --size-mib 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import MIB, machine, server_under_test

COURSE = "move500"


def generate(root: Path, *, students: int, submissions: int, size: int) -> int:
    """The exchange under ``root``; returns the bytes written."""
    rng = random.Random("import-speed")
    release = root / COURSE / "outbound" / "ps1"
    release.mkdir(parents=True)
    (release / "ps1.ipynb").write_bytes(b'{"cells": []}')
    total = 0
    for s in range(students):
        student = f"student{s:04d}"
        for n in range(submissions):
            stamp = f"2026-11-{1 + n:02d} 10:{s // 60 % 60:02d}:{s % 60:02d}.{s:06d} UTC"
            path = root / COURSE / "inbound" / f"{student}+ps1+{stamp}+r{n}"
            path.mkdir(parents=True)
            body = rng.randbytes(size)
            (path / "ps1.ipynb").write_bytes(body)
            secret = f"{student}-{n}"
            (path / "submission_secret.txt").write_text(secret)
            (path / "timestamp.txt").write_text(stamp)
            total += len(body)
        digest = hashlib.md5((secret + "ps1").encode()).hexdigest()  # nbgrader's feedback name
        feedback = root / COURSE / "feedback" / f"{digest}.html"
        feedback.parent.mkdir(parents=True, exist_ok=True)
        feedback.write_bytes(f"<html>{student}</html>".encode())
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--submissions", type=int, default=3)
    parser.add_argument("--size-mib", type=float, default=1.0)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="exchange-import-bench-"))
    root = workdir / "exchange"
    started = time.perf_counter()
    written = generate(
        root,
        students=args.students,
        submissions=args.submissions,
        size=int(args.size_mib * MIB),
    )
    generated = time.perf_counter() - started
    with server_under_test(database=args.database, workdir=workdir / "srv", workers=1) as target:
        runs = []
        for label in ("first", "second"):
            t0 = time.perf_counter()
            out = target.server.manage("import_exchange", "fs", str(root)).stdout
            runs.append({"run": label, "seconds": round(time.perf_counter() - t0, 2), "out": out})
        info = machine(target)
    first = runs[0]["seconds"]
    report: dict[str, Any] = {
        "students": args.students,
        "submissions": args.students * args.submissions,
        "bytes": written,
        "database": args.database,
        "generate_seconds": round(generated, 2),
        "first_import_seconds": first,
        "first_import_MiB_per_s": round(written / MIB / first, 1),
        "submissions_per_s": round(args.students * args.submissions / first, 1),
        "second_import_seconds": runs[1]["seconds"],
        "machine": info,
        "output": [r["out"].strip() for r in runs],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    ok = "nothing new" in runs[1]["out"] and "skipped" not in runs[0]["out"]
    print("RESULT:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
