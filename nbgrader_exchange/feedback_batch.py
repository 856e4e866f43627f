"""Feedback to many students in few requests: ``POST .../assignments/{a}/feedback``.

Students are grouped into batches (at most ``BATCH_STUDENTS`` students and about
``BATCH_BYTES`` of distinct files each); a batch is one multipart upload holding a manifest
(per submission its files and scores) and one tar.gz of each distinct file once, named by
its SHA-256. The server records a batch all or nothing. The next batch's archive is
written while the current ones are being sent, ``BATCHES_AT_ONCE`` at a time (the server
records each in one of its workers, so two keep both of a two-process server busy).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Any

from .errors import ServiceError
from .files import FileEntry
from .parallel import BATCHES_AT_ONCE, at_most
from .transfer import MultipartBody, Progress, spool, write_archive

BATCH_STUDENTS = 50
BATCH_BYTES = 32 * 1024 * 1024
# What a server without the batch endpoint answers (405: the URL has a GET only; 404: no
# such URL at all), and 413: the batch is over a limit of the server (files or bytes in one
# upload, at most 100 submissions) or of a proxy in front of it (body size). Each of them
# refused the whole batch, so its students can go one by one.
NO_BATCH_STATUSES = (404, 405, 413)


@dataclass
class FeedbackRelease:
    """One student's feedback: the submission it goes to, its files, its scores (or None)."""

    student_id: str
    submission_id: int
    files: list[FileEntry]
    scores: list[dict[str, Any]] | None = None
    sizes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.sizes = {entry.sha256: entry.size for entry in self.files}


def batches(
    releases: Iterable[FeedbackRelease],
    *,
    max_students: int = BATCH_STUDENTS,
    max_bytes: int = BATCH_BYTES,
) -> Iterator[list[FeedbackRelease]]:
    """Consecutive groups of at most ``max_students``, with at most ``max_bytes`` of distinct
    file bytes (a single student over it goes alone)."""
    batch: list[FeedbackRelease] = []
    distinct: dict[str, int] = {}
    for release in releases:
        more = {sha: size for sha, size in release.sizes.items() if sha not in distinct}
        over = sum(distinct.values()) + sum(more.values()) > max_bytes
        if batch and (len(batch) >= max_students or over):
            yield batch
            batch, distinct = [], {}
            more = dict(release.sizes)
        batch.append(release)
        distinct.update(more)
    if batch:
        yield batch


def manifest_of(batch: Sequence[FeedbackRelease]) -> dict[str, Any]:
    """The batch's manifest: per submission its files' path, size, SHA-256, and scores."""
    items = []
    for release in batch:
        item: dict[str, Any] = {
            "id": release.submission_id,
            "files": [entry.manifest() for entry in release.files],
        }
        if release.scores:
            item["scores"] = release.scores
        items.append(item)
    return {"submissions": items}


def distinct_files(batch: Sequence[FeedbackRelease]) -> list[FileEntry]:
    """Each distinct file of the batch once, renamed to its SHA-256 (the archive's names)."""
    seen: dict[str, FileEntry] = {}
    for release in batch:
        for entry in release.files:
            seen.setdefault(entry.sha256, replace(entry, path=entry.sha256))
    return list(seen.values())


@dataclass
class PreparedBatch:
    """A batch ready to send: its manifest and its archive, spooled (``transfer.spool``)."""

    releases: list[FeedbackRelease]
    manifest: str
    archive: IO[bytes]


def prepare(batch: Sequence[FeedbackRelease]) -> PreparedBatch:
    """Write the batch's archive (the caller closes it, or ``post_batch`` does)."""
    spooled = spool()
    try:
        write_archive(distinct_files(batch), spooled)
    except BaseException:
        spooled.close()
        raise
    return PreparedBatch(list(batch), json.dumps(manifest_of(batch)), spooled)


def prepared(groups: Iterable[list[FeedbackRelease]]) -> Iterator[PreparedBatch]:
    """The batches in order, each next one compressed while the current one is being sent
    (so the client's gzip and the server's work overlap); archives not taken are closed."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        queue: list[Future[PreparedBatch]] = []
        try:
            for group in groups:
                queue.append(pool.submit(prepare, group))
                if len(queue) == 2:
                    yield queue.pop(0).result()
            while queue:
                yield queue.pop(0).result()
        finally:
            for future in queue:
                if future.exception() is None:
                    future.result().archive.close()


def send_batches(
    groups: Iterable[list[FeedbackRelease]],
    send: Callable[[PreparedBatch], Any],
    *,
    at_once: int = BATCHES_AT_ONCE,
    recorded: Callable[[list[FeedbackRelease]], None],
) -> tuple[list[FeedbackRelease], BaseException | None]:
    """Each group prepared and given to ``send`` (which closes its archive), at most
    ``at_once`` at a time; ``recorded(releases)`` for each batch sent, as each finishes.
    After the first failure no further batch is sent (those under way finish). Returns the
    releases of every batch not recorded, in their order, and that first failure (None
    when every batch was recorded)."""
    groups = list(groups)
    done: set[int] = set()

    def finished(index: int) -> None:
        done.add(index)
        recorded(groups[index])

    ready = prepared(groups)
    try:
        failure = at_most(ready, send, at_once=at_once, finished=finished)
    finally:
        ready.close()  # the archive written ahead, if any, is closed unsent
    unsent = [release for i, group in enumerate(groups) if i not in done for release in group]
    return unsent, failure


def post_batch(client: Any, url: str, batch: PreparedBatch, *, what: str) -> Any:
    """POST one prepared batch to ``{url}/feedback`` and close its archive; ServiceError as
    the client raises it."""
    with batch.archive:
        progress = Progress("Uploaded", 0, client.report, client.progress_threshold)
        body = MultipartBody({"manifest": batch.manifest}, batch.archive, progress)
        progress.total = len(body)
        response = client.request(
            "POST", f"{url}/feedback", what=what, body=body, timeout=client.transfer_timeout
        )
    return client._json(response, what)


def batch_unsupported(exc: ServiceError) -> bool:
    """True when the server has no batch endpoint (an older version) or refuses a batch this
    large: send one by one."""
    return exc.status in NO_BATCH_STATUSES
