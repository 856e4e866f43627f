"""Several small files in one request: ``POST files/archive`` with their signed tokens, or
their bytes with the manifest itself (``content``: ``write_inline``; in an answer of JSON
and bytes, ``read_inline_answer``).

With small files a download costs its request, not its bytes, so files under
``ARCHIVE_FILE_LIMIT`` whose manifest entry offers an ``archive_url`` (every file with local
storage, files up to 256 KiB with S3) come in batches of one streamed tar each; larger
files, and every file of a server that offers no archive (an older service), keep their
own signed URL. Each member is checked against
the manifest's size and SHA-256 before it replaces its target, so a cut or damaged archive
leaves no partial file; such an archive is asked for again (only its missing files) under
the client's retry rules.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
import urllib3

from .errors import ServiceError, failure_reason
from .files import CHUNK_SIZE

ARCHIVE_FILE_LIMIT = 1024 * 1024
ARCHIVE_BATCH_BYTES = 8 * 1024 * 1024
ARCHIVE_BATCH_FILES = 500
# An answer to ``?inline=true`` whose files' bytes follow its JSON, not in it as base64; the
# plugin asks for it in ``Accept`` (the service's ``api.spliced_json``).
INLINE_BYTES_TYPE = "application/vnd.nbgrader-exchange.inline"
# What the plugin accepts for such a read: errors, and an older server's answer, are JSON.
INLINE_ACCEPT = f"{INLINE_BYTES_TYPE}, application/json;q=0.9"

Item = tuple[dict[str, Any], Path]


def split(items: Iterable[Item]) -> tuple[list[list[Item]], list[Item]]:
    """(batches for the archive path, files to download one by one)."""
    batches: dict[str, list[list[Item]]] = {}
    single: list[Item] = []
    for entry, target in items:
        url = entry.get("archive_url")
        if not url or not entry.get("token") or entry["size"] > ARCHIVE_FILE_LIMIT:
            single.append((entry, target))
            continue
        runs = batches.setdefault(url, [[]])
        run = runs[-1]
        if run and (
            len(run) >= ARCHIVE_BATCH_FILES
            or sum(e["size"] for e, _ in run) + entry["size"] > ARCHIVE_BATCH_BYTES
        ):
            run = []
            runs.append(run)
        run.append((entry, target))
    return [run for runs in batches.values() for run in runs], single


class _Damaged(Exception):
    """The archive did not hold what the manifest says (cut short, or wrong bytes)."""


def download_batch(
    client: Any, batch: list[Item], *, what: str, on_file: Callable[[Item], None], progress: Any
) -> None:
    """Download ``batch`` through one archive request (again for what is missing, on a
    broken answer); ``on_file`` is called for each file once it is in place."""
    missing = {entry["sha256"]: (entry, target) for entry, target in batch}
    attempt = 0
    while True:
        try:
            _read_archive(client, list(missing.values()), missing, what, on_file, progress)
            return
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            tarfile.TarError,
            _Damaged,
        ) as exc:
            reason = failure_reason(exc) if isinstance(exc, requests.RequestException) else str(exc)
            if attempt < client.retries:
                attempt += 1
                client._sleep(attempt, reason)
                continue
            raise ServiceError(
                f"Could not {what}: the download of {len(missing)} file(s) from the exchange "
                f"server at {client.server} broke off or was damaged ({reason})."
            ) from None


def _read_archive(
    client: Any,
    items: list[Item],
    missing: dict[str, Item],
    what: str,
    on_file: Callable[[Item], None],
    progress: Any,
) -> None:
    url = items[0][0]["archive_url"]
    tokens = [entry["token"] for entry, _ in items]
    response = client.request(
        "POST",
        url,
        what=what,
        json_body={"tokens": tokens},
        idempotent=True,
        stream=True,
        timeout=client.transfer_timeout,
    )
    try:
        with tarfile.open(fileobj=response.raw, mode="r|") as archive:
            for member in archive:
                item = missing.get(member.name)
                source = archive.extractfile(member) if member.isfile() else None
                if item is None or source is None:
                    continue
                _write_member(source, item, progress)
                del missing[member.name]
                on_file(item)
    finally:
        response.close()
    if missing:
        raise _Damaged(f"{len(missing)} file(s) missing from the answer")


def read_inline_answer(body: bytes) -> Any:
    """The JSON of an answer in INLINE_BYTES_TYPE (the JSON document, a newline, then the
    files' bytes), each file entry that says where its bytes start (``content_at``) given
    them as ``content`` (``size`` bytes from there, or as many as there are: they are
    checked against the entry's size and SHA-256 when written). ValueError if the JSON is
    not JSON."""
    end = body.find(b"\n")
    if end < 0:
        raise ValueError("no newline after the JSON")
    answer = json.loads(body[:end])
    tail = memoryview(body)[end + 1 :]
    todo = [answer]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, dict):
            at, size = node.get("content_at"), node.get("size")
            if at is None:
                todo.extend(node.values())
            elif _count(at) and _count(size):
                node["content"] = tail[at : at + size]
            else:
                node["content"] = b""  # checked as any other: only an empty file matches it
    return answer


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def write_inline(server: str, item: Item, *, what: str, progress: Any) -> None:
    """Write a file whose bytes came with the manifest (``content``: base64 in a JSON
    answer to ``?inline=true``, the bytes themselves from ``read_inline_answer``), checked
    as an archive member."""
    entry, _ = item
    try:
        content = entry["content"]
        # Not validated first (base64's validate matches a pattern over the whole text, at
        # the cost of the decoding itself): whatever the text holds, the bytes it decodes to
        # must have the size and SHA-256 of the manifest.
        data = binascii.a2b_base64(content) if isinstance(content, str) else content
        _write_member(io.BytesIO(data), item, progress)
    except (ValueError, TypeError, _Damaged):  # binascii.Error is a ValueError
        raise ServiceError(
            f"Could not {what}: the file {entry['path']!r} from the exchange server at "
            f"{server} is damaged (its size or SHA-256 does not match)."
        ) from None


def _write_member(source: Any, item: Item, progress: Any) -> None:
    entry, target = item
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK_SIZE):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                progress.add(len(chunk))
        if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
            raise _Damaged(f"the file {entry['path']!r} is damaged")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
