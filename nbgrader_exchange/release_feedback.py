"""``nbgrader release_feedback``: upload each student's ``feedback/<student>/<assignment>/*.html``.

Feedback is addressed to one submission by its id. The submission is the student's one whose
server timestamp equals the ``timestamp.txt`` that collect wrote (autograde and
generate_feedback carry it along); when ``submission_secret.txt`` (nbgrader 0.9.3+) is there
too, it must match the secret handed in with that submission, so feedback never reaches
another submission, let alone another student.

Each notebook's score and max score from the gradebook go with the files (the ``scores``
form field); a server that predates scores ignores the field.

The students' feedback goes in batches, one request each, two at a time
(``feedback_batch.py``); a server without the batch endpoint gets one upload per student.
The submissions listing names each submission's ``submission_secret.txt`` hash; only a
server that does not is asked for each submission's files.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from nbgrader.exchange.abc import ExchangeReleaseFeedback as ABCExchangeReleaseFeedback
from nbgrader.utils import parse_utc

from .errors import ServiceError
from .exchange import Exchange
from .feedback_batch import (
    FeedbackRelease,
    PreparedBatch,
    batch_unsupported,
    batches,
    post_batch,
    send_batches,
)
from .files import entry_from_file, sha256_of
from .gradebook import gradebook_exists, notebook_scores, open_gradebook


class ExchangeReleaseFeedback(Exchange, ABCExchangeReleaseFeedback):
    """Release generated feedback to the submissions it was generated from."""

    def init_src(self) -> None:
        cd = self.coursedir
        student_id = cd.student_id if cd.student_id else "*"
        self.src_path = cd.format_path(cd.feedback_directory, student_id, cd.assignment_id)

    def init_dest(self) -> None:
        self.course_id = self.require_course()
        self.assignment_id = self.coursedir.assignment_id

    def _feedback_dirs(self) -> dict[str, list[tuple[str, str]]]:
        """Student id -> [(notebook id, html path)], with excluded students left out."""
        cd = self.coursedir
        exclude = set(cd.student_id_exclude.split(",")) if cd.student_id_exclude else set()
        regexp = re.escape(os.path.sep).join(
            [
                cd.format_path(
                    cd.feedback_directory, "(?P<student_id>.*)", self.assignment_id, escape=True
                ),
                "(?P<notebook_id>.*).html",
            ]
        )
        found: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for html_file in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            match = re.match(regexp, html_file)
            if match is None:
                self.log.error("Could not match '%s' with regexp '%s'", html_file, regexp)
                continue
            student_id, notebook_id = match.group("student_id"), match.group("notebook_id")
            if student_id in exclude:
                self.log.debug("Skipping student '%s'", student_id)
                continue
            found[student_id].append((notebook_id, html_file))
        return found

    def copy_files(self) -> None:
        what = f"release feedback on {self.assignment_id} in course {self.course_id}"
        url = self.assignment_url(self.course_id, self.assignment_id)
        feedback = self._feedback_dirs()
        if not feedback:
            self.log.warning("No feedback found in %s", self.src_path)
            return
        submissions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for sub in self.client.get(f"{url}/submissions", what=what):
            submissions[sub["student"]].append(sub)
        failed: list[str] = []
        with ExitStack() as stack:
            gb = None
            if gradebook_exists(self.coursedir.db_url):
                gb = stack.enter_context(open_gradebook(self.coursedir.db_url, self.course_id))
            releases = self._releases(feedback, submissions, gb, failed, what)
        self._send(url, releases)
        if failed:
            self.fail(
                f"Feedback for {', '.join(failed)} was not released: no submission on the "
                "exchange matches its timestamp.txt and submission_secret.txt (collect the "
                "submission again, then autograde and generate_feedback)."
            )

    def _releases(
        self,
        feedback: dict[str, list[tuple[str, str]]],
        submissions: dict[str, list[dict[str, Any]]],
        gb: Any,
        failed: list[str],
        what: str,
    ) -> list[FeedbackRelease]:
        """Each student's feedback matched to its submission; unmatched ones into ``failed``."""
        releases = []
        for student_id, notebooks in sorted(feedback.items()):
            feedback_dir = Path(os.path.dirname(notebooks[0][1]))
            submission = self._submission_for(student_id, feedback_dir, submissions, what)
            if submission is None:
                failed.append(student_id)
                continue
            for notebook_id, _ in notebooks:
                self.log.info(
                    "Releasing feedback for student '%s' on assignment '%s/%s/%s' (%s)",
                    student_id,
                    self.course_id,
                    self.assignment_id,
                    notebook_id,
                    submission["timestamp"],
                )
            scores = None
            if gb is not None:
                scores = notebook_scores(
                    gb, self.assignment_id, student_id, [nb for nb, _ in notebooks]
                )
            files = [entry_from_file(f"{nb}.html", Path(path)) for nb, path in notebooks]
            releases.append(FeedbackRelease(student_id, submission["id"], files, scores or None))
        return releases

    def _send(self, url: str, releases: list[FeedbackRelease]) -> None:
        """In batches (one request each, ``feedback_batches_at_once`` at a time); one by one
        to a server without the batch endpoint."""
        groups = batches(
            releases,
            max_students=self.feedback_batch_students,
            max_bytes=self.feedback_batch_bytes,
        )

        def send(batch: PreparedBatch) -> None:
            names = ", ".join(r.student_id for r in batch.releases)
            what = f"release feedback to {names} on {self.assignment_id}"
            post_batch(self.client, url, batch, what=what)

        def recorded(group: list[FeedbackRelease]) -> None:
            for release in group:
                self._released(release)

        pending, failure = send_batches(
            groups, send, at_once=self.feedback_batches_at_once, recorded=recorded
        )
        if failure is not None:
            if not (isinstance(failure, ServiceError) and batch_unsupported(failure)):
                raise failure
            self.log.debug("Releasing feedback one student at a time: %s", failure)
        for release in pending:
            self.client.upload_bundle(
                f"submissions/{release.submission_id}/feedback",
                release.files,
                what=f"release feedback to {release.student_id} on {self.assignment_id}",
                fields={"scores": json.dumps(release.scores)} if release.scores else None,
            )
            self._released(release)

    def _released(self, release: FeedbackRelease) -> None:
        self.log.info(
            "Feedback released to: %s (submission %s)", release.student_id, release.submission_id
        )

    def _submission_for(
        self,
        student_id: str,
        feedback_dir: Path,
        submissions: dict[str, list[dict[str, Any]]],
        what: str,
    ) -> dict[str, Any] | None:
        candidates = submissions.get(student_id, [])
        stamp_file = feedback_dir / "timestamp.txt"
        if stamp_file.is_file():
            stamp = parse_utc(stamp_file.read_text().strip())
            matching = [s for s in candidates if parse_utc(s["timestamp"]) == stamp]
            if not matching:
                self.log.error(
                    "No submission of %s to %s on the exchange has the timestamp %s",
                    student_id,
                    self.assignment_id,
                    stamp_file.read_text().strip(),
                )
            candidates = matching
        secret_file = feedback_dir / "submission_secret.txt"
        if secret_file.is_file():
            secret = sha256_of(secret_file)
            with_secret = []
            for sub in candidates:
                if self._secret_of(sub, what) == secret:
                    with_secret.append(sub)
            if candidates and not with_secret:
                self.log.error(
                    "The submission_secret.txt in %s does not match the submission of %s",
                    feedback_dir,
                    student_id,
                )
            candidates = with_secret
        elif not stamp_file.is_file():
            self.log.error("Neither timestamp.txt nor submission_secret.txt in %s", feedback_dir)
            return None
        if not candidates:
            return None
        return max(candidates, key=lambda s: parse_utc(s["timestamp"]))

    def _secret_of(self, submission: dict[str, Any], what: str) -> str | None:
        """The SHA-256 of the submission's submission_secret.txt: from the listing, or (a
        server that does not list it) from the submission's files."""
        if "submission_secret_sha256" in submission:
            return submission["submission_secret_sha256"]
        files = self.client.get(f"submissions/{submission['id']}", what=what)["files"]
        found = [f["sha256"] for f in files if f["path"] == "submission_secret.txt"]
        return found[0] if found else None
