"""The deadline rush's workload: the course, the assignment's files, what each student
submits and gets back, and the byte-for-byte check of a downloaded directory. Shared by
``bench.rush``, ``bench.ngshare_rush``, ``bench.soak`` and ``bench.resets``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COURSE = "bench101"
ASSIGNMENT = "ps1"
NOTEBOOKS = ("ps1/problem1.ipynb", "ps1/problem2.ipynb", "ps1/problem3.ipynb")
DATA_FILE = "ps1/data/measurements.bin"


# --- the workload -------------------------------------------------------------------------


def _text(seed: str, size: int) -> bytes:
    """``size`` bytes of printable text, the same for the same seed."""
    raw = random.Random(seed).randbytes(size * 3 // 4 + 3)
    return base64.b64encode(raw)[:size]


def notebook(seed: str, size: int, answer: bytes = b"") -> bytes:
    """A notebook-shaped JSON document of about ``size`` bytes."""
    body = _text(seed, size).decode()
    cells = [{"cell_type": "code", "source": body, "metadata": {}, "outputs": []}]
    if answer:
        cells.append({"cell_type": "code", "source": answer.decode(), "metadata": {}})
    return json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5}).encode()


@dataclass
class Workload:
    """Every file of the run, made from seeds so that nothing large is kept per student."""

    students: int
    notebook_size: int = 200 * 1000
    data_size: int = 5 * 1000 * 1000
    feedback_size: int = 50 * 1000
    release: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.release = {path: notebook(path, self.notebook_size) for path in NOTEBOOKS}
        self.release[DATA_FILE] = random.Random("data").randbytes(self.data_size)

    @property
    def names(self) -> list[str]:
        return [f"student{i:04d}" for i in range(self.students)]

    def submission(self, student: str) -> dict[str, bytes]:
        """The student's notebooks (changed: an answer cell of their own), and the data file
        unchanged."""
        files = {
            path: notebook(path, self.notebook_size, _text(f"{student}/{path}", 2000))
            for path in NOTEBOOKS
        }
        files[DATA_FILE] = self.release[DATA_FILE]
        return files

    def collected(
        self, submitted: dict[str, dict[str, bytes]] | None = None
    ) -> dict[str, dict[str, bytes | Digest]]:
        """What collecting each student's submission must give: the notebooks' sizes and
        SHA-256, and the data file's bytes (the release's, shared by all). Made before a
        collect's clock starts, as ``digests``: making a student's notebooks again costs 3 ms
        of the clients' CPU, on the server's two CPUs, in the middle of the phase. From
        ``submitted`` (each student's files, as ``submission`` made them) when given, so
        that a rush that made them before its submit does not make them again."""
        data = self.release[DATA_FILE]
        expected: dict[str, dict[str, bytes | Digest]] = {}
        for student in self.names:
            files = submitted[student] if submitted is not None else self.submission(student)
            notebooks = {path: made for path, made in files.items() if path != DATA_FILE}
            expected[student] = {**digests(notebooks), DATA_FILE: data}
        return expected

    def feedback(self, student: str) -> dict[str, bytes]:
        return {
            Path(path).with_suffix(".html").name: b"<html><body><pre>"
            + _text(f"feedback/{student}/{path}", self.feedback_size - 40)
            + b"</pre></body></html>"
            for path in NOTEBOOKS
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A file as a check needs it: its size and SHA-256.
Digest = tuple[int, str]


def digests(files: dict[str, bytes]) -> dict[str, Digest]:
    """Each file's size and SHA-256: made before a phase's clock starts, so that the phase
    times the exchange and not the making of the bytes it checks against."""
    return {path: (len(data), sha256(data)) for path, data in files.items()}


# The clients' files a phase may keep until its clock has stopped, so that the benchmark's
# checks of them (reading each file back, comparing it, removing it: 2-3 ms of CPU per
# student's fetched assignment) run after the phase (``Phase.run(later=True)``) rather than
# on the two CPUs the phase is timed on. 200 students' fetched assignments are 1.2 GB;
# beyond the limit (2000 students: 11.6 GB) each operation's files are checked and removed
# as it ends, inside the phase, as before.
HOLD_BYTES = 3 * 10**9


def hold_checks(expected: Iterable[dict[str, bytes] | dict[str, Digest]]) -> bool:
    """Whether the files of every operation of a phase (what each is checked against) fit
    in HOLD_BYTES, so that their checks may wait for the phase's end."""
    total = sum(
        len(want) if isinstance(want, bytes) else want[0]
        for files in expected
        for want in files.values()
    )
    return total <= HOLD_BYTES


def _matches(data: bytes, want: bytes | Digest) -> bool:
    """``data`` is the expected bytes (or has the expected size and SHA-256)."""
    return data == want if isinstance(want, bytes) else (len(data), sha256(data)) == want


def same_files(got: dict[str, bytes], expected: dict[str, bytes] | dict[str, Digest]) -> bool:
    """``got`` holds exactly the expected files, each with the expected bytes (or size and
    SHA-256)."""
    return set(got) == set(expected) and all(
        _matches(got[path], want) for path, want in expected.items()
    )


def check_directory(root: Path, expected: dict[str, bytes] | dict[str, Digest], what: str) -> None:
    """Every expected file under ``root`` with exactly the expected bytes (or size and
    SHA-256), and nothing else."""
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    if found != set(expected):
        raise AssertionError(f"{what}: files {sorted(found)} instead of {sorted(expected)}")
    for path, want in expected.items():
        actual = (root / path).read_bytes()
        if _matches(actual, want):
            continue
        if isinstance(want, bytes):
            want = (len(want), sha256(want))
        raise AssertionError(
            f"{what}: {path} differs ({len(actual)} bytes, SHA-256 {sha256(actual)}; "
            f"uploaded {want[0]} bytes, SHA-256 {want[1]})"
        )


def parallel(concurrency: int, items: Iterable[Any], work: Callable[[Any], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(work, items))
