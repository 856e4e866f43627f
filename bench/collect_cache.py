"""The plugin's own bookkeeping during ``nbgrader collect``: for every student, the files
downloaded into a staging directory are added to the collect's ``BlobCache`` (so a file
several students handed in is downloaded once), the directory is renamed into place, and
the cache is told where its files went (``BlobCache.moved``, which ``BlobCache.rename``
does after the rename). No server and no files: only the bookkeeping of the calls
``nbgrader_exchange/collect.py`` makes, so what grows with the course's size shows up
alone.

    python -m bench.collect_cache --students 2000 --files 3 [--gradebook]

Prints the CPU seconds in total and per student for the first and the last hundred
students: equal when the cost per student does not grow with the number collected before.
``--gradebook`` also times the roster's names written into an nbgrader gradebook (SQLite,
in the temporary directory) for those students, as the collect's last step does: once into
a gradebook without them, once more with nothing to change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nbgrader_exchange.transfer import BlobCache

from .common import machine


def run(*, students: int, files: int) -> dict[str, Any]:
    cache = BlobCache()
    root = Path("/nonexistent/submitted")
    per_student: list[float] = []
    started = time.process_time()
    for s in range(students):
        student = f"student{s:04d}"
        staging = root / student / f".collect-{s}"
        dest = root / student / "ps1"
        written = []
        for n in range(files):
            path = staging / f"ps1/notebook{n}.ipynb"
            cache.add(hashlib.sha256(f"{student} {n}".encode()).hexdigest(), path)
            written.append(path)
        before = time.process_time()
        cache.moved(staging, dest, written)
        per_student.append(time.process_time() - before)
    total = time.process_time() - started
    window = min(100, students)
    return {
        "machine": machine(),
        "students": students,
        "files_per_student": files,
        "cpu_s": round(total, 3),
        "moved_ms_first_students": round(1000 * sum(per_student[:window]) / window, 4),
        "moved_ms_last_students": round(1000 * sum(per_student[-window:]) / window, 4),
    }


def gradebook_sync(*, students: int) -> dict[str, float]:
    """Wall and CPU seconds of ``sync_students`` for ``students`` new students of a gradebook
    that exists already, then again with nothing to change."""
    members = [
        {"username": f"student{s:04d}", "first_name": "Stu", "last_name": f"Dent {s}"}
        for s in range(students)
    ]
    path = os.environ.get("PATH", "")
    # nbgrader's gradebook runs the alembic command it installs next to Python.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    try:
        with tempfile.TemporaryDirectory(prefix="exchange-bench-gradebook-") as scratch:
            return _time_syncs(f"sqlite:///{Path(scratch) / 'gradebook.db'}", members)
    finally:
        os.environ["PATH"] = path


def _time_syncs(url: str, members: list[dict[str, str]]) -> dict[str, float]:
    from nbgrader_exchange.gradebook import open_gradebook, sync_students

    with open_gradebook(url, "bench"):
        pass  # made before the clock starts: alembic's own start-up is not the sync's
    figures: dict[str, float] = {}
    for label in ("new_students", "nothing_changes"):
        wall, cpu = time.perf_counter(), time.process_time()
        assert len(sync_students(url, "bench", members)) == len(members)
        figures[f"gradebook_{label}_wall_s"] = round(time.perf_counter() - wall, 3)
        figures[f"gradebook_{label}_cpu_s"] = round(time.process_time() - cpu, 3)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", "-n", type=int, default=2000)
    parser.add_argument("--files", type=int, default=3, help="files per student")
    parser.add_argument("--gradebook", action="store_true", help="time the gradebook sync too")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    report = run(students=args.students, files=args.files)
    if args.gradebook:
        report.update(gradebook_sync(students=args.students))
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
