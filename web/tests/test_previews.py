"""Notebook previews never run in a request worker (issue: one student's large notebook
stalled the service): the view answers at once while a separate, limited process renders,
once per blob, the outcome stored for every replica; too large, failed and pending previews
are sentences; rendered and HTML files are sanitized; downloads are named through Django's
header helper."""

from __future__ import annotations

import json
import re
import resource
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils.http import content_disposition_header

from courses import blobstore, services
from courses.models import preview_storage_names
from tests.harness.uploads import make_upload, notebook
from web import previews, render_worker, rendering

from .notebooks import large_notebook
from .support import wait_for_preview

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
# Tens of seconds of nbconvert's CPU: what used to hold a request worker that long.
BIG = large_notebook(1 * MIB)


def submit(work, files: dict[str, bytes]):
    return services.submit_assignment(
        student=work["tia"].student, assignment=work["assignment"], upload=make_upload(files)
    )


def body(response) -> str:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return data.decode()


def live_workers() -> list:
    return [child for child in previews._children if child.poll() is None]


def sha_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_large_notebook_view_answers_at_once_and_renders_elsewhere(work, client_as):
    sub = submit(work, {"big.ipynb": BIG})
    url = f"/submissions/{sub.pk}/submission/view/big.ipynb"
    tia = client_as("tia")
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    response = tia.get(url)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    # Rendered in the request, this took tens of seconds of this process's CPU.
    assert elapsed < 5, elapsed
    assert (after.ru_utime - before.ru_utime) < 2
    assert response.status_code == 200
    assert "The preview is being made" in body(response)
    assert '<meta http-equiv="refresh"' in body(response)
    [worker] = live_workers()
    # More views of the same file while it renders start nothing more.
    for _ in range(5):
        assert "being made" in body(tia.get(url))
        assert "being made" in client_as("ines").get(f"/submissions/{sub.pk}/").content.decode()
    assert live_workers() == [worker]


def test_renders_per_replica_are_bounded(work, client_as, settings):
    settings.EXCHANGE_RENDER_CONCURRENCY = 1
    first = submit(work, {"a.ipynb": BIG})
    second = submit(work, {"b.ipynb": large_notebook(MIB, seed=2)})
    tia = client_as("tia")
    assert "being made" in body(tia.get(f"/submissions/{first.pk}/submission/view/a.ipynb"))
    assert "being made" in body(tia.get(f"/submissions/{second.pk}/submission/view/b.ipynb"))
    assert len(live_workers()) == 1  # the second waits for a free slot; its page refreshes


@pytest.mark.storage
def test_a_preview_is_made_once_and_found_in_storage_by_any_replica(work, client_as, tmp_path):
    sub = work["tia"]
    url = f"/submissions/{sub.pk}/submission/view/ps1.ipynb"
    page = wait_for_preview(client_as("tia"), url)
    assert "Tia" in page and "42" in page
    [entry] = sub.bundle.entries.filter(path="ps1.ipynb")
    html_name, _failed = preview_storage_names(entry.blob_id)
    storage = blobstore.get_storage()
    assert storage.exists(html_name)
    # Another replica has none of this one's locks or processes: it finds the stored HTML.
    previews._children.clear()
    for lock in previews.work_dir().iterdir():
        lock.unlink()
    response = client_as("ines").get(url)
    assert "Tia" in body(response) and live_workers() == []
    assert response["Content-Security-Policy"].startswith("sandbox;")
    page = client_as("ines").get(f"/submissions/{sub.pk}/").content.decode()
    assert 'http-equiv="refresh"' not in page and "<iframe sandbox" in page
    # The preview is removed with its blob.
    blobstore.delete(entry.blob_id)
    assert not storage.exists(html_name)


def test_a_file_over_the_size_cap_is_offered_for_download(work, client_as, settings):
    settings.EXCHANGE_RENDER_MAX_SIZE = 1000
    sub = submit(work, {"big.ipynb": notebook("x" * 2000), "log.txt": b"y" * 2000})
    page = client_as("tia").get(f"/submissions/{sub.pk}/").content.decode()
    assert page.count("too large to preview here") == 2
    assert f'href="/submissions/{sub.pk}/submission/files/big.ipynb" download' in page
    assert "<iframe" not in page and 'http-equiv="refresh"' not in page
    view = client_as("tia").get(f"/submissions/{sub.pk}/submission/view/big.ipynb")
    assert "too large to preview here" in body(view) and "the limit is 0.0 MiB" in body(view)
    assert live_workers() == []


def test_a_broken_notebook_says_why(work, client_as):
    sub = submit(work, {"ps1.ipynb": b"{not json"})
    url = f"/submissions/{sub.pk}/submission/view/ps1.ipynb"
    page = wait_for_preview(client_as("tia"), url)
    assert "not a notebook that can be read" in page
    assert "Download it instead." in page
    page = client_as("tia").get(f"/submissions/{sub.pk}/").content.decode()
    assert "not a notebook that can be read" in page and 'http-equiv="refresh"' not in page
    # The failure is stored: no one renders it again under the same limits.
    assert "not a notebook" in body(client_as("ines").get(url)) and live_workers() == []


def test_a_render_past_its_time_is_stopped_and_tried_again_with_a_higher_limit(
    work, client_as, settings
):
    settings.EXCHANGE_RENDER_SECONDS = 2
    sub = submit(work, {"big.ipynb": BIG})
    url = f"/submissions/{sub.pk}/submission/view/big.ipynb"
    page = wait_for_preview(client_as("tia"), url)
    # Wall time or processor time, whichever the converter reaches first on this machine.
    assert re.search(
        r"(took longer than 2 seconds|used more than 2 seconds of processor time), "
        r"so it was stopped",
        page,
    )
    # The worker stores its failure just before it exits; let it finish exiting.
    for child in list(previews._children):
        child.wait(timeout=30)
    settings.EXCHANGE_RENDER_SECONDS = 300
    assert "being made" in body(client_as("tia").get(url))
    assert len(live_workers()) == 1


# --- the worker itself, in this process ---------------------------------------------------


def job_for(sha: str, tmp_path: Path, **limits: int) -> dict:
    html_name, failed_name = preview_storage_names(sha)
    return {
        "storage": {},
        "blob_name": f"blobs/{sha[:2]}/{sha}",
        "html_name": html_name,
        "failed_name": failed_name,
        "work_dir": str(tmp_path),
        "limits": {"seconds": 120, "memory": 1024 * MIB, **limits},
    }


def stored_failure(sha: str) -> dict:
    with blobstore.get_storage().open(preview_storage_names(sha)[1], "rb") as handle:
        return json.load(handle)


@pytest.mark.storage
def test_worker_records_memory_exhaustion(tmp_path):
    data = notebook("small")
    sha, _size = blobstore.store_bytes(data)
    job = job_for(sha, tmp_path, memory=64 * MIB)
    assert render_worker.supervise(sha, job) == "failed: memory"
    assert stored_failure(sha)["limits"]["memory"] == 64 * MIB
    assert "needed more than 64 MiB of memory" in previews.failure_sentence(stored_failure(sha))
    # Once stored, the same job does nothing more; with another limit it renders.
    assert render_worker.supervise(sha, job) == "already failed under the same limits"
    assert render_worker.supervise(sha, job_for(sha, tmp_path)) == "rendered"
    assert render_worker.supervise(sha, job_for(sha, tmp_path)) == "already rendered"
    assert not blobstore.get_storage().exists(preview_storage_names(sha)[1])


def test_worker_main_reads_its_job_and_removes_its_lock(tmp_path, monkeypatch, capsys):
    import io

    sha, _size = blobstore.store_bytes(b"{not json")
    (tmp_path / f"{sha}.lock").touch()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(job_for(sha, tmp_path))))
    assert render_worker.main([sha]) == 0
    assert not (tmp_path / f"{sha}.lock").exists()
    assert f"{sha}: failed: invalid" in capsys.readouterr().err
    assert stored_failure(sha)["detail"]


def test_converter_exit_statuses(tmp_path):
    source, target = tmp_path / "in.ipynb", tmp_path / "out.html"
    source.write_bytes(notebook("fine"))
    assert render_worker.convert(source, target) == 0
    assert "fine" in target.read_text()
    source.write_bytes(b"\xff\xfe")
    assert render_worker.convert(source, target) == render_worker.EXIT_INVALID
    # Past its time, the converter is stopped: the CPU and the wall-time limits are the same
    # number of seconds, so which one stops it first depends on the machine's load.
    source.write_bytes(BIG)
    outcome = render_worker.run_converter(source, target, seconds=1, memory=1024 * MIB)
    assert outcome in ({"ok": False, "reason": "timeout"}, {"ok": False, "reason": "cpu"})
    # A converter that crashes (here: its input is gone) is an error with its last words.
    outcome = render_worker.run_converter(tmp_path / "gone", target, seconds=60, memory=1024 * MIB)
    assert outcome["reason"] == "error" and "FileNotFoundError" in outcome["detail"]


@pytest.mark.parametrize(
    ("record", "sentence"),
    [
        ({"reason": "cpu", "limits": {"seconds": 9}}, "more than 9 seconds of processor time"),
        ({"reason": "error", "detail": "boom"}, "The preview could not be made: boom"),
        ({"reason": "timeout"}, "took longer than"),
    ],
)
def test_failure_sentences(record, sentence):
    assert sentence in previews.failure_sentence(record)


# --- sanitizing ---------------------------------------------------------------------------

HOSTILE = (
    '<script>alert(1)</script><img src="x" onerror="alert(2)">'
    '<a href="javascript:alert(3)">link</a><b onclick="alert(4)">bold</b>'
    '<iframe src="https://evil.example"></iframe><form action="/x"><input name="q"></form>'
    '<svg onload="alert(5)"></svg><object data="x"></object>'
)


def assert_harmless(page: str) -> None:
    import re

    lowered = page.lower()
    for needle in ("<script", "javascript:", "<iframe", "<form", "<object", "<input", "<svg"):
        assert needle not in lowered, needle
    handlers = re.findall(r"<[^>]*\son[a-z]+\s*=[^>]*>", lowered)
    assert not handlers, handlers


def test_sanitizer_strips_scripts_handlers_and_dangerous_urls():
    clean = rendering.sanitize(HOSTILE + '<p style="color:red" class="x">kept</p>')
    assert_harmless(clean)
    assert '<p style="color:red" class="x">kept</p>' in clean
    assert "<b>bold</b>" in clean


def test_hostile_notebook_and_feedback_html_are_sanitized(work, client_as, people):
    import nbformat

    hostile = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Answer " + HOSTILE),
            nbformat.v4.new_code_cell(
                "x",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data", data={"text/html": HOSTILE, "text/plain": "x"}
                    )
                ],
            ),
        ]
    )
    sub = submit(work, {"ps1.ipynb": nbformat.writes(hostile).encode()})
    page = wait_for_preview(client_as("ines"), f"/submissions/{sub.pk}/submission/view/ps1.ipynb")
    assert "Answer" in page and "bold" in page
    assert_harmless(page)
    assert "<style" in page  # the notebook's look is kept
    services.release_feedback(
        actor=people["ines"],
        submission=sub,
        upload=make_upload({"ps1.html": f"<p>Good</p>{HOSTILE}".encode()}),
    )
    view = client_as("tia").get(f"/submissions/{sub.pk}/feedback/view/ps1.html")
    assert "Good" in body(view)
    assert_harmless(body(view))


# --- file names in headers ----------------------------------------------------------------


def test_download_names_with_quotes_and_non_latin1_characters(work, client_as):
    name = 'rés "final" 答案.txt'
    sub = submit(work, {f"dir/{name}": b"answer"})
    response = client_as("tia").get(f"/submissions/{sub.pk}/submission/files/dir/{name}")
    header = response["Content-Disposition"]
    assert header == content_disposition_header(True, name)
    assert header.startswith("attachment; filename*=utf-8''")
    assert "%22final%22" in header and "=?utf-8?" not in header
    assert b"".join(response.streaming_content) == b"answer"


def test_zip_download_name_goes_through_the_helper(work, client_as):
    sub = work["tia"]
    response = client_as("tia").get(f"/submissions/{sub.pk}/download")
    stamp = sub.timestamp.strftime("%Y%m%d-%H%M%S")
    assert response["Content-Disposition"] == f'attachment; filename="ps1-tia-{stamp}.zip"'


def test_a_failure_record_removed_while_read_counts_as_none(work, monkeypatch, settings):
    """A worker that renders successfully removes the old failure record; a page reading it
    at that moment sees the preview as pending, not a 500."""
    [entry] = work["tia"].bundle.entries.filter(path="ps1.ipynb")
    storage = blobstore.get_storage()
    _html, failed_name = preview_storage_names(entry.blob_id)
    storage.save(failed_name, ContentFile(b'{"reason": "timeout"}'))

    def gone(*args, **kwargs):
        raise FileNotFoundError(failed_name)

    monkeypatch.setattr(type(storage), "open", gone)
    assert previews.preview(entry, start=False) == previews.Preview(previews.PENDING)


def test_running_out_of_memory_is_told_apart_from_a_bad_notebook():
    import errno

    def chained(outer: BaseException, inner: BaseException) -> BaseException:
        outer.__cause__ = inner
        return outer

    out_of_memory = render_worker._out_of_memory
    assert out_of_memory(MemoryError())
    assert out_of_memory(OSError(errno.ENOMEM, "Cannot allocate memory"))
    assert out_of_memory(chained(ImportError("no module"), OSError(errno.ENOMEM, "mmap")))
    assert out_of_memory(SystemError("error return without exception set"))
    assert not out_of_memory(ValueError("Notebook does not appear to be JSON"))
    assert not out_of_memory(OSError(errno.ENOENT, "No such file"))
