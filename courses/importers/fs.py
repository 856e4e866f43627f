"""Reading nbgrader's filesystem exchange (``nbgrader/exchange/default/``, 0.9.x).

Layout under the exchange root, one directory per course::

    <course>/outbound/<assignment>/...                         released files
    <course>/inbound/<student>+<assignment>+<timestamp>[+<random>]/...
                                                               submissions, with timestamp.txt
                                                               and submission_secret.txt
    <course>/feedback/<hash>.html                              released feedback

Feedback is named by a hash, which is matched back to its submission the way nbgrader's
``fetch_feedback`` computes it: ``md5(secret + notebook_id)`` with the submission's
``submission_secret.txt``, or, for submissions made before nbgrader 0.9.3 without a secret,
``md5(notebook bytes + "course+assignment+notebook+student+timestamp")`` and then
``md5(notebook bytes)``. ``path_includes_course`` only changes the students' own
directories and ``groupshared`` only the permissions, so both read the same way here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from functools import partial
from pathlib import Path
from typing import IO

from courses.timestamps import parse_timestamp

from .common import CourseSource, Item, Person, SourceFile

# Files nbgrader's submit writes next to the student's files; the timestamp is the
# submission's own (collect writes it back from the record), the secret names feedback.
TIMESTAMP_FILE = "timestamp.txt"
SECRET_FILE = "submission_secret.txt"


def _open(path: Path) -> IO[bytes]:
    # Refuse anything but a regular file: a FIFO would block (hence O_NONBLOCK for the open
    # itself), a device never ends.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)


def _files(directory: Path, *, leave_out: tuple[str, ...] = ()) -> list[SourceFile]:
    """Every file below a directory, as bundle-relative paths, in a stable order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory, onerror=_raise):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(directory).as_posix()
            if rel in leave_out:
                continue
            found.append(SourceFile(path=rel, open=partial(_open, path)))
    return found


def _raise(exc: OSError) -> None:
    raise exc


def list_courses(root: Path) -> list[str]:
    """The course directories under an exchange root."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_course(root: Path, code: str) -> CourseSource:
    """One course of the exchange, with what cannot be read listed as skipped."""
    source = CourseSource(code=code)
    course_dir = root / code
    _read_outbound(course_dir / "outbound", source)
    hashes = _read_inbound(course_dir / "inbound", source)
    _read_feedback(course_dir / "feedback", source, hashes)
    return source


def _subdirs(directory: Path, source: CourseSource) -> list[Path]:
    if not directory.is_dir():
        return []
    try:
        return sorted(directory.iterdir())
    except OSError as exc:
        source.skip(str(directory), f"cannot read the directory: {exc.strerror}")
        return []


def _read_outbound(outbound: Path, source: CourseSource) -> None:
    for path in _subdirs(outbound, source):
        if not path.is_dir():
            source.skip(str(path), "not an assignment directory")
            continue
        try:
            files = _files(path)
            at = _mtime(path)
        except OSError as exc:
            source.skip(str(path), f"cannot read: {exc.strerror}")
            continue
        source.releases.append(
            Item(kind="release", assignment=path.name, files=files, where=str(path), at=at)
        )


def _read_inbound(inbound: Path, source: CourseSource) -> dict[str, tuple[Item, str]]:
    """Submissions; returns each feedback hash a submission's notebooks would be released
    under -> (submission, notebook id)."""
    hashes: dict[str, tuple[Item, str]] = {}
    seen: set[tuple[str, str, dt.datetime]] = set()
    for path in _subdirs(inbound, source):
        parts = path.name.split("+")
        if not path.is_dir() or len(parts) not in (3, 4) or not all(parts[:3]):
            source.skip(
                str(path),
                "not a submission: the name is not student+assignment+timestamp[+random]",
            )
            continue
        student, assignment, name_stamp = parts[:3]
        try:
            stamp_file = path / TIMESTAMP_FILE
            stamp_text = stamp_file.read_text() if stamp_file.is_file() else name_stamp
            timestamp = parse_timestamp(stamp_text)
            files = _files(path, leave_out=(TIMESTAMP_FILE,))
            secret_file = path / SECRET_FILE
            secret = secret_file.read_text() if secret_file.is_file() else None
            notebooks = sorted(p for p in path.glob("*.ipynb") if p.is_file())
            item_hashes = {
                h: nb.stem
                for nb in notebooks
                for h in _feedback_hashes(nb, secret, source.code, assignment, student, name_stamp)
            }
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            source.skip(str(path), f"cannot read: {reason}")
            continue
        except ValueError as exc:
            source.skip(str(path), f"{TIMESTAMP_FILE}: {exc}")
            continue
        key = (assignment, student, timestamp)
        if key in seen:
            source.skip(str(path), "another submission of this student has the same timestamp")
            continue
        seen.add(key)
        item = Item(
            kind="submission",
            assignment=assignment,
            student=student,
            timestamp=timestamp,
            files=files,
            where=str(path),
        )
        source.submissions.append(item)
        source.students.setdefault(student, Person())
        for digest, notebook_id in item_hashes.items():
            hashes.setdefault(digest, (item, notebook_id))
    return hashes


def _feedback_hashes(
    notebook: Path,
    secret: str | None,
    course: str,
    assignment: str,
    student: str,
    timestamp: str,
) -> list[str]:
    """The names nbgrader's fetch_feedback looks for, in its order."""
    notebook_id = notebook.stem
    if secret:
        return [hashlib.md5((secret + notebook_id).encode()).hexdigest()]
    data = notebook.read_bytes()
    unique_key = "+".join([course, assignment, notebook_id, student, timestamp])
    return [
        hashlib.md5(data + unique_key.encode()).hexdigest(),
        hashlib.md5(data).hexdigest(),
    ]


def _read_feedback(
    feedback_dir: Path, source: CourseSource, hashes: dict[str, tuple[Item, str]]
) -> None:
    # One feedback bundle per submission, with one <notebook>.html per notebook.
    bundles: dict[int, Item] = {}
    for path in _subdirs(feedback_dir, source):
        if path.suffix != ".html" or not path.is_file():
            source.skip(str(path), "not a feedback file (<hash>.html)")
            continue
        match = hashes.get(path.stem)
        if match is None:
            source.skip(str(path), "matches no submission's notebooks")
            continue
        submission, notebook_id = match
        try:
            at = _mtime(path)
        except OSError as exc:
            source.skip(str(path), f"cannot read: {exc.strerror}")
            continue
        item = bundles.get(id(submission))
        if item is None:
            item = Item(
                kind="feedback",
                assignment=submission.assignment,
                student=submission.student,
                timestamp=submission.timestamp,
                files=[],
                where=f"feedback for {submission.where}",
                at=at,
            )
            bundles[id(submission)] = item
            source.feedback.append(item)
        item.files.append(SourceFile(path=f"{notebook_id}.html", open=partial(_open, path)))
        item.at = max(item.at or at, at)
