"""``nbgrader submit``: upload ``./<assignment>`` as a new submission.

The server assigns the submission's timestamp; it is written, exactly as received, to
``timestamp.txt`` in the local submission record under the nbgrader cache, next to the
``submission_secret.txt`` that nbgrader 0.9.3+ uses to name feedback (the secret travels in
the submission too, so collect, autograde and generate_feedback carry it along).

Files unchanged from the release are not sent. Which they are comes from the release as the
student last saw it, remembered by ``fetch_assignment`` (``seen_release.py``), so a submit
is one request; without that record, or with ``--strict``, it asks the server first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from nbgrader.exchange.abc import ExchangeSubmit as ABCExchangeSubmit

from . import seen_release
from .client import ExchangeClient
from .errors import ServiceError
from .exchange import Exchange
from .files import FileEntry, entry_from_bytes
from .seen_release import SeenRelease

# Written by the exchange, never taken from the student's directory.
RESERVED = ("timestamp.txt", "submission_secret.txt")


class ExchangeSubmit(Exchange, ABCExchangeSubmit):
    """Submit an assignment; ``--strict`` refuses a submission missing a released notebook."""

    def init_src(self) -> None:
        cd = self.coursedir
        self.src_path = str(self.local_assignment_path(cd.course_id, cd.assignment_id))
        self.coursedir.assignment_id = os.path.split(self.src_path)[-1]
        if not os.path.isdir(self.src_path):
            self.fail(f"Assignment not found at: {self.src_path}")

    def init_dest(self) -> None:
        self.course_id = self.require_course()
        self.assignment_id = self.coursedir.assignment_id
        self.check_student_id()

    def files(self) -> list[FileEntry]:
        return self.scan_files(
            self.src_path,
            leave_out=RESERVED,
            refusal=f"Assignment {self.assignment_id} not submitted: ",
        )

    def check_filename_diff(self, released: list[str], submitted: list[str]) -> None:
        """nbgrader's check: warn about missing or extra notebooks, refuse if strict."""
        release_diff = [
            f"{name}: {'FOUND' if name in submitted else 'MISSING'}" for name in released
        ]
        submitted_diff = [f"{name}: {'OK' if name in released else 'EXTRA'}" for name in submitted]
        missing = any(name not in submitted for name in released)
        extra = any(name not in released for name in submitted)
        if not (missing or extra):
            return
        diff_msg = "Expected:\n\t{}\nSubmitted:\n\t{}".format(
            "\n\t".join(release_diff), "\n\t".join(submitted_diff)
        )
        if missing and self.strict:
            self.fail(
                f"Assignment {self.assignment_id} not submitted. "
                f"There are missing notebooks for the submission:\n{diff_msg}"
            )
        self.log.warning(
            "Possible missing notebooks and/or extra notebooks submitted for assignment "
            f"{self.assignment_id}:\n{diff_msg}"
        )

    def copy_files(self) -> None:
        what = f"submit {self.assignment_id} to course {self.course_id}"
        files = self.files()
        submitted = _notebooks(f.path for f in files)
        secret = secrets.token_hex(64)
        files.append(entry_from_bytes("submission_secret.txt", secret.encode()))
        self.log.info("Source: %s", self.src_path)
        self.log.info("Destination: %s course %s", self.client.server, self.course_id)
        submission = send_submission(
            self.client,
            self.assignment_url(self.course_id, self.assignment_id),
            files,
            what=what,
            cache=self.cache,
            course_id=self.course_id,
            assignment_id=self.assignment_id,
            # --strict refuses before sending: it checks against the release as it is now.
            fresh=self.strict,
            check=lambda release: self.check_filename_diff(release.notebooks, submitted),
        )
        timestamp = submission["timestamp"]
        self.timestamp = timestamp
        try:
            record = self.submission_record(
                self.course_id, submission["student"], self.assignment_id, timestamp
            )
        except ServiceError as exc:
            self.log.error("Submitted, but no local record of it is kept: %s", exc)
            return
        record.mkdir(parents=True, exist_ok=True)
        (record / "timestamp.txt").write_text(timestamp)
        (record / "submission_secret.txt").write_text(secret)
        (record / "submission_id.txt").write_text(str(submission["id"]))
        self.log.info("Submitted as: %s %s %s", self.course_id, self.assignment_id, timestamp)


def send_submission(
    client: ExchangeClient,
    url: str,
    files: list[FileEntry],
    *,
    what: str,
    cache: str,
    course_id: str,
    assignment_id: str,
    fresh: bool = False,
    check: Callable[[SeenRelease], None] | None = None,
) -> dict[str, Any]:
    """Upload ``files`` as a submission to the assignment at ``url``; returns the server's
    answer.

    The release's own files are left out, known from the release as this user last saw it
    (``seen_release.py``: one request in all), or, with ``fresh`` or no record, from the
    server (one more request; remembered). ``check`` sees the release before anything is
    sent, and again afterwards if the answer shows it was released again since it was seen.
    """

    def read() -> SeenRelease:
        release = seen_release.from_answer(client.get(url, what=what))
        seen_release.remember(cache, course_id, assignment_id, release)
        return release

    seen = None if fresh else seen_release.recall(cache, course_id, assignment_id)
    release = seen if seen is not None else read()
    checked = release
    if check is not None:
        check(release)

    def known_again() -> set[str]:
        # The server lacks bytes the record said it had: released again since.
        nonlocal release
        release = read()
        return release.shas

    submission: dict[str, Any] = client.upload_bundle(
        f"{url}/submissions",
        files,
        what=what,
        known_shas=release.shas,
        known_again=known_again if seen is not None else None,
    )
    if seen is not None and submission.get("assignment_released_at") != release.released_at:
        release = read()
    if check is not None and release != checked:
        check(release)
    return submission


def _notebooks(paths: object) -> list[str]:
    return sorted(p for p in paths if PurePosixPath(p).suffix == ".ipynb")  # type: ignore[attr-defined]
