"""Previews of notebooks, made once per blob outside the request workers.

A notebook's HTML costs tens of seconds of CPU per MiB, and the file is a student's to make
as large as the upload limit allows. So a request never renders one: it looks for the
stored preview (``previews/<aa>/<sha256>.html`` in the file storage, shared by every
replica), and if there is none, starts ``python -m web.render_worker <sha256>`` (detached,
limited in CPU time, memory and wall time, see that module) and answers at once that the
preview is being made; the page refreshes until it is there. A render that fails stores why
(``.failed.json``), so the page can say it and nobody renders the same file again with the
same limits. Files above ``EXCHANGE_RENDER_MAX_SIZE`` are offered for download only.

Each replica renders at most ``EXCHANGE_RENDER_CONCURRENCY`` notebooks at a time and never
the same blob twice at once. Both are ``flock`` locks on files in a private directory under
the temporary directory (``/tmp``, writable in the chart): the request takes the blob's lock
and a free slot's lock, and hands both to the worker as inherited file descriptors, so they
are held exactly as long as the worker lives, across gunicorn's processes and threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.translation import gettext as _

from courses import blobstore
from courses.models import BundleEntry, blob_storage_name, preview_storage_names

from . import rendering

READY = "ready"
PENDING = "pending"
FAILED = "failed"
TOO_LARGE = "too_large"
INLINE = "inline"  # text and HTML: made in the request, cheaply
REFRESH_SECONDS = 5


@dataclass(frozen=True)
class Preview:
    """What a page can show of one file now."""

    state: str
    reason: str = ""

    @property
    def pending(self) -> bool:
        return self.state == PENDING


def limits() -> dict[str, int]:
    return {"seconds": settings.EXCHANGE_RENDER_SECONDS, "memory": settings.EXCHANGE_RENDER_MEMORY}


def failure_sentence(record: dict[str, Any]) -> str:
    """Why a stored preview failed, as a sentence for the page."""
    reason = record.get("reason")
    seconds = record.get("limits", {}).get("seconds", settings.EXCHANGE_RENDER_SECONDS)
    memory = record.get("limits", {}).get("memory", settings.EXCHANGE_RENDER_MEMORY)
    if reason == "timeout":
        return _("Making the preview took longer than %(seconds)s seconds, so it was stopped.") % {
            "seconds": seconds
        }
    if reason == "cpu":
        return _(
            "Making the preview used more than %(seconds)s seconds of processor time, "
            "so it was stopped."
        ) % {"seconds": seconds}
    if reason == "memory":
        return _(
            "Making the preview needed more than %(mib)s MiB of memory, so it was stopped."
        ) % {"mib": memory // (1024 * 1024)}
    if reason == "invalid":
        return _("This file is not a notebook that can be read: %(detail)s") % {
            "detail": record.get("detail", "")
        }
    return _("The preview could not be made: %(detail)s") % {"detail": record.get("detail", "")}


def preview(entry: BundleEntry, *, start: bool = True) -> Preview:
    """The state of a file's preview; with ``start``, a missing notebook preview is started
    (if this replica has a free slot and is not already making it)."""
    if entry.blob.size > settings.EXCHANGE_RENDER_MAX_SIZE:
        return Preview(TOO_LARGE)
    if not rendering.is_notebook(entry.path):
        return Preview(INLINE)
    storage = blobstore.get_storage()
    html_name, failed_name = preview_storage_names(entry.blob_id)
    if storage.exists(html_name):
        return Preview(READY)
    record = _failure(storage, failed_name)
    # A failure under other limits (raised since, say) is worth another try.
    if record is not None and record.get("limits") == limits():
        return Preview(FAILED, failure_sentence(record))
    if start:
        start_render(entry.blob_id)
    return Preview(PENDING)


def _failure(storage: Any, name: str) -> dict[str, Any] | None:
    if not storage.exists(name):
        return None
    try:
        with storage.open(name, "rb") as handle:
            return json.load(handle)
    except FileNotFoundError:  # removed since: a new render succeeded
        return None


def too_large_sentence(size: int) -> str:
    return _(
        "This file is too large to preview here (%(size)s MiB; the limit is %(limit)s MiB). "
        "Download it instead."
    ) % {
        "size": f"{size / (1024 * 1024):.1f}",
        "limit": f"{settings.EXCHANGE_RENDER_MAX_SIZE / (1024 * 1024):.1f}",
    }


def response_for(entry: BundleEntry) -> HttpResponseBase:
    """The page the preview frame shows: the file, or a sentence about its preview."""
    state = preview(entry)
    if state.state == INLINE:
        with blobstore.open_blob(entry.blob_id) as handle:
            data = handle.read(settings.EXCHANGE_RENDER_MAX_SIZE + 1)
        page = rendering.inline_page(entry.path, data)
        return rendering.sandboxed(HttpResponse(page, content_type="text/html; charset=utf-8"))
    if state.state == READY:
        html_name, _failed = preview_storage_names(entry.blob_id)
        handle = blobstore.get_storage().open(html_name, "rb")
        chunks = iter(lambda: handle.read(blobstore.CHUNK_SIZE), b"")
        response = StreamingHttpResponse(chunks, content_type="text/html; charset=utf-8")
        response._resource_closers.append(handle.close)
        return rendering.sandboxed(response)
    if state.state == TOO_LARGE:
        return rendering.message_response(too_large_sentence(entry.blob.size))
    if state.state == FAILED:
        return rendering.message_response(state.reason + " " + _("Download it instead."))
    return rendering.message_response(
        _("The preview is being made; this page refreshes until it is ready."),
        refresh_seconds=REFRESH_SECONDS,
    )


# --- starting a worker --------------------------------------------------------------------

_children: list[subprocess.Popen[bytes]] = []
_children_lock = threading.Lock()


def work_dir() -> Path:
    """This replica's lock and scratch directory for one storage (a test's servers with
    their own storage do not share slots or locks)."""
    storage = json.dumps(settings.STORAGES["default"], sort_keys=True, default=str)
    digest = hashlib.sha256(storage.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"exchange-render-{os.getuid()}-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def start_render(sha256: str) -> bool:
    """Start the worker for a blob unless it is in flight here or every slot is busy; True
    if one was started."""
    directory = work_dir()
    blob_lock = _try_lock(directory / f"{sha256}.lock")
    if blob_lock is None:
        return False
    slot_lock = None
    try:
        for slot in range(settings.EXCHANGE_RENDER_CONCURRENCY):
            slot_lock = _try_lock(directory / f"slot-{slot}")
            if slot_lock is not None:
                break
        if slot_lock is None:
            return False  # the page refreshes and asks again
        html_name, failed_name = preview_storage_names(sha256)
        job = {
            "storage": settings.STORAGES["default"],
            "blob_name": blob_storage_name(sha256),
            "html_name": html_name,
            "failed_name": failed_name,
            "work_dir": str(directory),
            "limits": limits(),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "web.render_worker", sha256],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=settings.BASE_DIR,
            pass_fds=(blob_lock, slot_lock),
            start_new_session=True,  # not killed with the request worker's process group
        )
        assert process.stdin is not None
        # On stdin, not in argv: the storage's credentials stay out of the process list.
        process.stdin.write(json.dumps(job, default=str).encode())
        process.stdin.close()
    finally:
        # The worker holds its own copies of the locks now.
        os.close(blob_lock)
        if slot_lock is not None:
            os.close(slot_lock)
    with _children_lock:
        # Reap the workers that ended (no zombies left in a long-lived request worker).
        _children[:] = [child for child in _children if child.poll() is None]
        _children.append(process)
    return True
