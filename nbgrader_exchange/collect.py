"""``nbgrader collect``: download each student's latest submission into ``submitted/``.

Each distinct file is downloaded once per run (the release's files, which students hand back
unchanged, are copied from the local ``release/`` directory instead), in parallel, with every
hash checked; ``collect_submissions_at_once`` submissions are downloaded at a time.
``timestamp.txt`` holds the server's timestamp of the submission. The collected students'
names, email and LMS id from the course's roster on the exchange are written into the
gradebook (``nbgrader_exchange.gradebook.sync_students``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbgrader.exchange.abc import ExchangeCollect as ABCExchangeCollect
from nbgrader.utils import parse_utc

from .errors import ServiceError
from .exchange import Exchange
from .files import folder_name
from .gradebook import sync_students
from .parallel import at_most
from .transfer import DownloadStats


class ExchangeCollect(Exchange, ABCExchangeCollect):
    """Collect submissions: ``--update`` replaces older ones, ``--before-duedate`` picks the
    last one before the student's own due date (an extension's on the exchange, else the
    gradebook's, else the exchange's)."""

    def init_src(self) -> None:
        self.course_id = self.require_course()
        self.assignment_id = self.coursedir.assignment_id
        self.what = f"collect {self.assignment_id} from course {self.course_id}"
        url = self.assignment_url(self.course_id, self.assignment_id)
        student = self.coursedir.student_id
        payload: dict[str, Any] = {"latest": not self.before_duedate}
        if student and student != "*":
            payload["student"] = student
        submissions = self.client.post(f"{url}/collect", payload, what=self.what, idempotent=True)
        by_student: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for submission in submissions:
            try:
                folder_name(submission["student"], "the student name")
            except ServiceError as exc:
                self.log.error("Not collected: %s", exc)
                continue
            submission["parsed"] = parse_utc(submission["timestamp"])
            by_student[submission["student"]].append(submission)
        service_due = gradebook_due = None
        if self.before_duedate:
            detail = self.client.get(url, what=self.what)
            service_due = parse_utc(detail["due_date"]) if detail.get("due_date") else None
            gradebook_due = self.gradebook_duedate()
        self.duedate = gradebook_due or service_due
        self.src_records = []
        for records in by_student.values():
            records.sort(key=lambda item: item["parsed"], reverse=True)
            chosen = records[0]
            if self.before_duedate:
                due = self._own_duedate(records[0], service_due) or self.duedate
                before = [r for r in records if due is not None and r["parsed"] <= due]
                if before:
                    chosen = before[0]
            self.src_records.append(chosen)
        self.src_records.sort(key=lambda item: item["student"])

    @staticmethod
    def _own_duedate(record: dict[str, Any], service_due: Any) -> Any:
        """The student's extended due date, when the exchange gave them one: their own due
        date differs from the assignment's (servers before extensions send none)."""
        own = parse_utc(record["due_date"]) if record.get("due_date") else None
        return own if own is not None and own != service_due else None

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        if not self.src_records:
            self.log.warning(
                "No submissions of '%s' for course '%s' to collect",
                self.assignment_id,
                self.course_id,
            )
            return
        self.log.info(
            "Processing %d submissions of '%s' for course '%s'",
            len(self.src_records),
            self.assignment_id,
            self.course_id,
        )
        cache = self.new_blob_cache()
        cd = self.coursedir
        cache.add_directory(Path(cd.format_path(cd.release_directory, ".", self.assignment_id)))
        stats = DownloadStats()

        def downloads() -> Iterator[tuple[dict[str, Any], Path, bool]]:
            """The submissions to download, each logged as it starts."""
            for rec in self.src_records:
                dest = Path(
                    cd.format_path(cd.submitted_directory, rec["student"], self.assignment_id)
                )
                updating = self._to_update(rec, dest)
                if updating is not None:
                    yield rec, dest, updating

        def download(job: tuple[dict[str, Any], Path, bool]) -> None:
            rec, dest, updating = job
            self._download(rec, dest, cache, stats, replace=updating)

        failure = at_most(downloads(), download, at_once=self.collect_submissions_at_once)
        self.log.info(
            "Collected %d files: %d downloaded (%.1f MB), %d copied from local copies",
            stats.files,
            stats.downloaded_files,
            stats.downloaded_bytes / 1e6,
            stats.reused_files,
        )
        if failure is not None:
            raise failure
        self._sync_gradebook()

    def _to_update(self, rec: dict[str, Any], dest: Path) -> bool | None:
        """Whether ``rec`` is collected into ``dest`` (True: replacing an older one there),
        or None when it is not (logged)."""
        student_id = rec["student"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy = updating = False
        if dest.is_dir():
            existing = self.coursedir.get_existing_timestamp(str(dest))
            if self.update and (existing is None or rec["parsed"] > existing):
                copy = updating = True
            elif self.before_duedate and existing != rec["parsed"]:
                copy = updating = True
        else:
            copy = True
        if not copy:
            if self.update:
                self.log.info(
                    "No newer submission to collect: %s %s", student_id, self.assignment_id
                )
            else:
                self.log.info(
                    "Submission already exists, use --update to update: %s %s",
                    student_id,
                    self.assignment_id,
                )
            return None
        if updating:
            self.log.info("Updating submission: %s %s", student_id, self.assignment_id)
        else:
            self.log.info("Collecting submission: %s %s", student_id, self.assignment_id)
        return updating

    def _sync_gradebook(self) -> None:
        """The collected students' names from the roster into the gradebook; a roster that
        cannot be read costs the names, not the collection."""
        try:
            members = self.client.get(f"courses/{self.course_id}/members", what=self.what)
        except ServiceError as exc:
            self.log.warning("The gradebook keeps its student names: %s", exc)
            return
        written = sync_students(
            self.coursedir.db_url,
            self.course_id,
            members,
            only={rec["student"] for rec in self.src_records},
        )
        self.log.info("Wrote the roster's names of %d student(s) into the gradebook", len(written))

    def _download(
        self, rec: dict[str, Any], dest: Path, cache: Any, stats: DownloadStats, replace: bool
    ) -> None:
        files = rec.get("files")
        if files is None:
            files = self.client.get(f"submissions/{rec['id']}", what=self.what)["files"]
        self.client.download_into_place(
            [f for f in files if f["path"] != "timestamp.txt"],
            dest,
            what=self.what,
            cache=cache,
            stats=stats,
            also={"timestamp.txt": rec["timestamp"]},
            replace=replace,
        )
