"""``nbgrader release_assignment``: upload ``release/<assignment>`` as the course's release."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nbgrader.exchange.abc import ExchangeReleaseAssignment as ABCExchangeReleaseAssignment

from .errors import ServiceError
from .exchange import Exchange
from .files import FileEntry, scan_directory


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
        cd = self.coursedir
        max_dir = 1000 * cd.max_dir_size
        files = scan_directory(
            Path(self.src_path),
            exclude=cd.ignore,
            include=cd.include,
            max_file_size=1000 * cd.max_file_size if cd.max_file_size else None,
            on_skip=self.log_skipped,
        )
        total = sum(entry.size for entry in files)
        if max_dir and total > max_dir:
            self.fail(
                f"{self.src_path} holds {total} bytes, more than the limit of {max_dir} bytes "
                "(CourseDirectory.max_dir_size, in kilobytes)."
            )
        return files

    def due_date(self) -> str | None:
        """The gradebook's due date for the assignment, if it has one."""
        from nbgrader.api import Gradebook, MissingEntry

        db_url = self.coursedir.db_url
        if db_url.startswith("sqlite:///") and not os.path.exists(db_url[len("sqlite:///") :]):
            return None
        try:
            with Gradebook(db_url, self.course_id) as gb:
                duedate = gb.find_assignment(self.assignment_id).duedate
        except MissingEntry:
            return None
        return duedate.strftime("%Y-%m-%d %H:%M:%S.%f UTC") if duedate else None

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
