"""The base of every exchange role: where the service is, who the user is, how failures read.

Mirrors ``nbgrader/exchange/default/exchange.py``: configuration as traitlets under
``c.Exchange`` (with environment defaults), an HTTP client made on first use, and ``fail()``.
Every expected failure (server down, bad token, not enrolled, unknown course or assignment,
a file over the limit) ends as nbgrader's ``ExchangeError`` carrying one sentence, which
nbgrader's applications log without a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from nbgrader.exchange.abc import Exchange as ABCExchange
from traitlets import Bool, Float, Integer, Unicode, default

from .client import ExchangeClient
from .errors import ServiceError
from .feedback_batch import BATCH_BYTES, BATCH_STUDENTS
from .files import FileEntry, folder_name, scan_directory
from .gradebook import assignment_duedate
from .parallel import BATCHES_AT_ONCE, COLLECT_AT_ONCE
from .transfer import BlobCache

# nbgrader's timestamp format; the service sends timestamps in exactly this shape.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


class Exchange(ABCExchange):
    """Common configuration and helpers of the exchange service's nbgrader plugin."""

    url = Unicode(
        help=(
            "Base URL of the nbgrader exchange service, e.g. "
            "http://nbgrader-exchange:8000 or https://hub.example.org/services/nbgrader-exchange. "
            "Defaults to the NBGRADER_EXCHANGE_URL environment variable."
        )
    ).tag(config=True)

    @default("url")
    def _url_default(self) -> str:
        return os.environ.get("NBGRADER_EXCHANGE_URL", "")

    token = Unicode(
        help=(
            "API token sent to the exchange service. Defaults to NBGRADER_EXCHANGE_TOKEN, "
            "then to JUPYTERHUB_API_TOKEN (set in every JupyterHub single-user server)."
        )
    ).tag(config=True)

    @default("token")
    def _token_default(self) -> str:
        return os.environ.get("NBGRADER_EXCHANGE_TOKEN") or os.environ.get(
            "JUPYTERHUB_API_TOKEN", ""
        )

    timeout = Float(
        30.0, help="Seconds to wait for the exchange service to connect and to answer."
    ).tag(config=True)

    transfer_timeout = Float(
        600.0, help="Seconds to wait between bytes while uploading or downloading files."
    ).tag(config=True)

    retries = Integer(
        3,
        help=(
            "How often a request that is safe to repeat is retried after a connection error "
            "or a 502/503/504 answer (with exponential backoff)."
        ),
    ).tag(config=True)

    backoff = Float(0.5, help="Seconds before the first retry; doubled for each next one.").tag(
        config=True
    )

    download_workers = Integer(4, help="How many files are downloaded in parallel.").tag(
        config=True
    )

    collect_submissions_at_once = Integer(
        COLLECT_AT_ONCE,
        min=1,
        help="collect: how many students' submissions are downloaded at the same time.",
    ).tag(config=True)

    feedback_batch_students = Integer(
        BATCH_STUDENTS,
        min=1,
        help="release_feedback: at most this many students' feedback in one request.",
    ).tag(config=True)

    feedback_batch_bytes = Integer(
        BATCH_BYTES,
        min=1,
        help=(
            "release_feedback: at most about this many bytes of files in one request (a "
            "student whose feedback alone is larger goes in a request of their own)."
        ),
    ).tag(config=True)

    feedback_batches_at_once = Integer(
        BATCHES_AT_ONCE,
        min=1,
        help=(
            "release_feedback: how many batch requests are sent at the same time (each is "
            "recorded by one of the server's workers)."
        ),
    ).tag(config=True)

    cache = Unicode(
        help=(
            "Local cache directory for nbgrader submit and nbgrader list (small records of "
            "your submissions, and of the releases you fetched). Defaults to "
            "$JUPYTER_DATA_DIR/nbgrader_cache."
        )
    ).tag(config=True)

    @default("cache")
    def _cache_default(self) -> str:
        return os.path.join(jupyter_data_dir(), "nbgrader_cache")

    path_includes_course = Bool(
        False,
        help=(
            "Whether the local path of fetched and submitted assignments starts with the course "
            "id (./course123/ps1) rather than not (./ps1)."
        ),
    ).tag(config=True)

    _client: ExchangeClient | None = None

    @property
    def client(self) -> ExchangeClient:
        if self._client is None:
            self._client = ExchangeClient(
                self.url,
                self.token,
                timeout=self.timeout,
                transfer_timeout=self.transfer_timeout,
                retries=self.retries,
                backoff=self.backoff,
                workers=self.download_workers,
                connections=self.download_workers * self.collect_submissions_at_once,
                report=self.log.info,
            )
        return self._client

    def start(self) -> Any:
        try:
            return super().start()
        except ServiceError as exc:
            message = str(exc)
        except OSError as exc:
            message = f"A local file operation failed: {exc}."
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None
        # Failing outside the handler keeps the sentence alone: no chained traceback in the
        # logs or in the JupyterLab dialogs that show nbgrader's error text.
        self.fail(message)

    # --- helpers shared by the roles -------------------------------------------------------

    def require_course(self) -> str:
        course_id = self.coursedir.course_id
        if not course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        return course_id

    def check_student_id(self) -> None:
        """nbgrader's rule for a student's own commands: the id names one student."""
        student_id = self.coursedir.student_id
        if student_id not in ("", "*") and ("*" in student_id or "+" in student_id):
            self.fail(f"The student ID should contain no '*' nor '+'; got {student_id}")

    def submission_record(
        self, course_id: str, student: str, assignment_id: str, timestamp: str
    ) -> Path:
        """Where nbgrader's cache keeps the record of a submission,
        ``<cache>/<course>/<student>+<assignment>+<timestamp>``; ServiceError when the names
        (the student and the timestamp come from the server) would not make one folder there,
        as ``..`` or a slash would: the record is written, emptied and removed."""
        name = folder_name(f"{student}+{assignment_id}+{timestamp}", "a submission record name")
        return Path(self.cache) / folder_name(course_id, "the course id") / name

    def local_assignment_dir(self, course_id: str, assignment_id: str) -> str:
        """Where a student's copy of an assignment lives, as nbgrader writes it (relative to
        ``assignment_dir`` when that is relative: ``nbgrader list`` shows such paths)."""
        if self.path_includes_course:
            return os.path.join(self.assignment_dir, course_id, assignment_id)
        return os.path.join(self.assignment_dir, assignment_id)

    def local_assignment_path(self, course_id: str, assignment_id: str) -> Path:
        """The absolute :meth:`local_assignment_dir`."""
        return Path(os.path.abspath(self.local_assignment_dir(course_id, assignment_id)))

    def scan_files(
        self, root: str, *, leave_out: tuple[str, ...] = (), refusal: str = ""
    ) -> list[FileEntry]:
        """The files under ``root`` that nbgrader would copy (``CourseDirectory.ignore``,
        ``include`` and ``max_file_size``), less the paths in ``leave_out``; fails, the
        sentence starting with ``refusal``, when together they exceed ``max_dir_size``."""
        cd = self.coursedir
        files = scan_directory(
            Path(root),
            exclude=cd.ignore,
            include=cd.include,
            max_file_size=1000 * cd.max_file_size if cd.max_file_size else None,
            on_skip=self.log_skipped,
        )
        files = [entry for entry in files if entry.path not in leave_out]
        total = sum(entry.size for entry in files)
        max_dir = 1000 * cd.max_dir_size
        if max_dir and total > max_dir:
            self.fail(
                f"{refusal}{root} holds {total} bytes, more than the limit of {max_dir} bytes "
                "(CourseDirectory.max_dir_size, in kilobytes)."
            )
        return files

    def gradebook_duedate(self) -> dt.datetime | None:
        """The due date the course's gradebook holds for ``self.assignment_id`` (naive UTC,
        as nbgrader keeps it), if any; a gradebook that does not exist yet is not created."""
        return assignment_duedate(self.coursedir.db_url, self.course_id, self.assignment_id)

    def assignment_url(self, course_id: str, assignment_id: str = "") -> str:
        path = f"courses/{course_id}/assignments"
        return f"{path}/{assignment_id}" if assignment_id else path

    def new_blob_cache(self) -> BlobCache:
        return BlobCache()

    def log_skipped(self, path: str, reason: str) -> None:
        """Say which files a release or submission leaves out, as nbgrader's own exchange does."""
        if reason == "too large":
            self.log.warning(
                "Ignoring file too large '%s' (see config option CourseDirectory.max_file_size)",
                path,
            )
        else:
            self.log.debug("Ignoring %s file '%s'", reason, path)


def format_timestamp(moment: dt.datetime) -> str:
    """A naive UTC datetime (the gradebook's) in nbgrader's ``TIMESTAMP_FORMAT``."""
    return moment.replace(tzinfo=dt.timezone.utc).strftime(TIMESTAMP_FORMAT)
