"""The release of an assignment as this user last saw it, kept in nbgrader's cache.

``fetch_assignment`` (and a ``submit`` that had to ask) writes the release's file list
(path, size, SHA-256) and its ``released_at`` to
``<cache>/.releases/<course>/<assignment>.json``. A later ``submit`` reads it instead of
asking the server for the release again: the hashes tell which files are the release's own
and need not be sent, the notebooks' names feed nbgrader's missing/extra check. The server
answers the submission with the release's ``released_at``: when it differs from the
record's, the release changed since and the submit reads it again (``submit.py``).

The record is a hint, never trusted for what is stored: the server accepts a file without
its bytes only when the hash is one it holds for this student and the size is that file's.
A record that cannot be read or written is the same as none (the submit then asks, as it
always did), so a read-only or damaged cache costs one request, not a failure. The folder
starts with a dot: nbgrader's own listing of the cache (``<cache>/*/<student>+...``) never
sees it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ServiceError
from .files import folder_name

log = logging.getLogger(__name__)

FOLDER = ".releases"


@dataclass(frozen=True)
class SeenRelease:
    """A release's files (``{"path", "size", "sha256"}``) and when it was released."""

    released_at: str | None
    files: list[dict[str, Any]]

    @property
    def shas(self) -> set[str]:
        return {entry["sha256"] for entry in self.files}

    @property
    def notebooks(self) -> list[str]:
        """Its notebooks, sorted: what nbgrader's submit checks a submission against."""
        return sorted(
            entry["path"] for entry in self.files if PurePosixPath(entry["path"]).suffix == ".ipynb"
        )


def from_answer(answer: dict[str, Any]) -> SeenRelease:
    """The release in an answer of the server (the assignment, or its release's manifest)."""
    files = [
        {"path": entry["path"], "size": entry["size"], "sha256": entry["sha256"]}
        for entry in answer.get("files", [])
    ]
    return SeenRelease(released_at=answer.get("released_at"), files=files)


def _path(cache: str, course_id: str, assignment_id: str) -> Path:
    course = folder_name(course_id, "the course id")
    assignment = folder_name(assignment_id, "the assignment id")
    return Path(cache) / FOLDER / course / f"{assignment}.json"


def remember(cache: str, course_id: str, assignment_id: str, release: SeenRelease) -> None:
    """Write the record (whole or not at all); a failure to write is logged, not raised."""
    try:
        target = _path(cache, course_id, assignment_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"released_at": release.released_at, "files": release.files})
        fd, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise
    except (OSError, ServiceError) as exc:
        log.debug("the release of %s/%s is not remembered: %s", course_id, assignment_id, exc)


def recall(cache: str, course_id: str, assignment_id: str) -> SeenRelease | None:
    """The record, or None when there is none or it cannot be read as one."""
    try:
        data = json.loads(_path(cache, course_id, assignment_id).read_text())
        files = data["files"]
        released_at = data["released_at"]
        if not isinstance(files, list) or not (released_at is None or isinstance(released_at, str)):
            return None
        for entry in files:
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("path"), str)
                and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("size"), int)
            ):
                return None
        return SeenRelease(released_at=released_at, files=files)
    except (OSError, ValueError, KeyError, TypeError, ServiceError):
        return None
