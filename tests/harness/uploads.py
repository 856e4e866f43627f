"""Uploads built the way the plugin builds them: its own file entries, manifest and archive
code (``nbgrader_exchange``), so a test sends what a student's ``nbgrader submit`` sends.

- :func:`manifest_of` / :func:`tar_gz`: the two parts of an upload;
- :func:`make_upload`: a ``courses.services.Upload`` for the domain's services;
- :func:`upload_form`: the form for Django's and DRF's test clients;
- :func:`multipart_files`: the form for ``requests``' ``files=`` (live servers);
- :func:`notebook`: a small notebook with one output, to submit and to preview;
- :func:`recorded_rows`: what an upload records, to check that a refused one left nothing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import nbformat

from nbgrader_exchange.files import FileEntry, entry_from_bytes
from nbgrader_exchange.transfer import write_archive

if TYPE_CHECKING:
    from courses.services import Upload

Files = Mapping[str, bytes]


def entries(files: Files) -> list[FileEntry]:
    """The plugin's entries of ``files`` (bundle path -> bytes), in path order."""
    return [entry_from_bytes(path, data) for path, data in sorted(files.items())]


def manifest_of(files: Files) -> list[dict[str, Any]]:
    """The manifest the plugin sends: path, size and SHA-256 of every file."""
    return [entry.manifest() for entry in entries(files)]


def tar_gz(files: Files) -> bytes:
    """The archive the plugin sends, with every file of ``files`` in it."""
    buffer = io.BytesIO()
    write_archive(entries(files), buffer)
    return buffer.getvalue()


def _sent(files: Files, omit: Iterable[str]) -> dict[str, bytes]:
    """The files whose bytes go in the archive: those not in ``omit`` (the server has them)."""
    skip = set(omit)
    return {path: data for path, data in files.items() if path not in skip}


def make_upload(files: Files, *, omit: Iterable[str] = ()) -> Upload:
    """An upload of ``files`` for the services; paths in ``omit`` are listed, not sent."""
    from courses.services import Upload

    return Upload(
        manifest=json.dumps(manifest_of(files)), archive=io.BytesIO(tar_gz(_sent(files, omit)))
    )


def upload_form(files: Files, *, omit: Iterable[str] = ()) -> dict[str, Any]:
    """The multipart form of an upload for Django's and DRF's test clients."""
    return {
        "manifest": json.dumps(manifest_of(files)),
        "archive": io.BytesIO(tar_gz(_sent(files, omit))),
    }


def multipart_files(files: Files, *, omit: Iterable[str] = ()) -> dict[str, tuple[str, bytes, str]]:
    """The multipart form of an upload for ``requests``' ``files=``, as the plugin posts it."""
    return {
        "manifest": ("manifest.json", json.dumps(manifest_of(files)).encode(), "application/json"),
        "archive": ("archive.tar.gz", tar_gz(_sent(files, omit)), "application/gzip"),
    }


def notebook(text: str) -> bytes:
    """A notebook with a heading ``text`` and a code cell that printed 42."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"# {text}"),
            nbformat.v4.new_code_cell(
                "print(6 * 7)", outputs=[nbformat.v4.new_output("stream", text="42\n")]
            ),
        ]
    )
    return nbformat.writes(nb).encode()


def recorded_rows() -> tuple[int, ...]:
    """What an upload records (submissions, bundles, entries, blobs, audit events); a refused
    one leaves only its ``upload_failed`` audit event."""
    from courses.models import AuditEvent, Blob, Bundle, BundleEntry, Submission

    return (
        Submission.objects.count(),
        Bundle.objects.count(),
        BundleEntry.objects.count(),
        Blob.objects.count(),
        AuditEvent.objects.exclude(action="upload_failed").count(),
    )
