"""``nbgrader release_assignment``: upload ``release/<assignment>`` as the course's release."""

from __future__ import annotations

import os
from typing import Any

from nbgrader.exchange.abc import ExchangeReleaseAssignment as ABCExchangeReleaseAssignment

from .errors import ServiceError
from .exchange import Exchange, format_timestamp
from .files import FileEntry


class ExchangeReleaseAssignment(Exchange, ABCExchangeReleaseAssignment):
    """Release an assignment: refused if already released unless ``--force``, like nbgrader."""

    def init_src(self) -> None:
        cd = self.coursedir
        self.src_path = cd.format_path(cd.release_directory, ".", cd.assignment_id)
        if not os.path.isdir(self.src_path):
            source = cd.format_path(cd.source_directory, ".", cd.assignment_id)
            if os.path.isdir(source):
                self.fail(
                    f"Assignment found in '{source}' but not '{self.src_path}', run "
                    "`nbgrader generate_assignment` first."
                )
            self.fail(f"Assignment not found at: {self.src_path}")

    def init_dest(self) -> None:
        self.course_id = self.require_course()
        self.assignment_id = self.coursedir.assignment_id

    def files(self) -> list[FileEntry]:
        return self.scan_files(self.src_path)

    def due_date(self) -> str | None:
        """The gradebook's due date for the assignment, if it has one."""
        duedate = self.gradebook_duedate()
        return format_timestamp(duedate) if duedate else None

    def copy_files(self) -> None:
        what = f"release {self.assignment_id} to course {self.course_id}"
        url = self.assignment_url(self.course_id, self.assignment_id)
        current: dict[str, Any] | None
        try:
            current = self.client.get(url, what=what)
        except ServiceError as exc:
            if exc.status != 404:
                raise
            current = None
        if current and current.get("released") and not self.force:
            self.fail(
                "Destination already exists, add --force to overwrite: "
                f"{self.course_id} {self.assignment_id}"
            )
        if current and current.get("released"):
            self.log.info("Overwriting files: %s %s", self.course_id, self.assignment_id)
        known = {f["sha256"] for f in (current or {}).get("files", [])}
        files = self.files()
        fields = {"force": "true" if self.force else "false"}
        due = self.due_date()
        if due:
            fields["due_date"] = due
        self.log.info("Source: %s", self.src_path)
        self.log.info("Destination: %s course %s", self.client.server, self.course_id)
        self.client.upload_bundle(
            f"{url}/release", files, what=what, fields=fields, known_shas=known
        )
        self.log.info("Released as: %s %s", self.course_id, self.assignment_id)
