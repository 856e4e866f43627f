"""The upload parser: an upload's archive is read straight from the request body.

Django's multipart parser spools every file part to a temporary file before the view runs,
so a 1 GiB archive was written to disk, read back, and written once more into the blob
store. This parser reads the form fields (the manifest among them) into memory, and when
it reaches the ``archive`` part of a form that promised it as its last part (the field
``archive_last=true`` before it, as the plugin sends) it stops there: the archive is handed
to the view as a file that reads the rest of the body as it arrives (``LiveArchive``). The
service then checks the upload as before (``stage_bundle``: quota and deadline before a
byte of the archive is read), and the archive reader hashes and writes each member once.

A form without the promise (older plugins, curl, the fields in any order) is parsed as
Django would: file parts spooled to temporary files. A part after a promised-last archive
makes the upload fail with a sentence: the view could not have seen that field in time.
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadedfile import (
    InMemoryUploadedFile,
    TemporaryUploadedFile,
    UploadedFile,
)
from django.http import QueryDict
from django.http.multipartparser import (
    FIELD,
    FILE,
    ChunkIter,
    LazyStream,
    MultiPartParserError,
    Parser,
    exhaust,
)
from django.http.multipartparser import (
    MultiPartParser as DjangoMultiPartParser,
)
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser

from courses.exceptions import BadArchive

# Bytes asked of the request body at a time: big enough that a 1 GiB body is 1024 reads.
READ_SIZE = 1024 * 1024
ARCHIVE_FIELD = "archive"
# A form field before the archive: "true" promises that the archive is the form's last part.
LAST_FIELD = "archive_last"


class LiveArchive:
    """The archive part of a form, read from the request body while the body arrives.

    Quacks as an uploaded file for the serializer (``name``, ``size``); ``read`` returns
    the part's bytes. When the part ends, the rest of the body is read: another part after
    it is refused (a field the view never saw).
    """

    name = "bundle.tar.gz"
    # Unknown until read; the archive reader counts the bytes it takes out against limits.
    size = 0
    content_type = "application/gzip"

    def __init__(self, part: LazyStream, parts: Any) -> None:
        self._part = part
        self._parts = parts
        self._buffer = b""
        self._offset = 0
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes, fewer when the chunk at hand has fewer (as a raw stream's
        read may): no bytes are copied to join chunks. ``b""`` at the part's end."""
        if size is None or size < 0:
            raise ValueError("LiveArchive.read needs a size: the archive is read in chunks.")
        if self._offset >= len(self._buffer):
            chunk = None if self._ended else self._next_chunk()
            if chunk is None:
                return b""
            self._buffer, self._offset = chunk, 0
        if self._offset == 0 and size >= len(self._buffer):
            data = self._buffer
        else:
            data = self._buffer[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    def _next_chunk(self) -> bytes | None:
        # next() on the part's LazyStream hands over whole chunks as they arrive; its read(n)
        # would copy the unread rest of a chunk on every call.
        for chunk in self._part:
            if chunk:
                return chunk
        self._ended = True
        self._check_rest()
        return None

    def _check_rest(self) -> None:
        """Read what follows the archive: nothing but the closing boundary may."""
        try:
            for item_type, meta_data, stream in self._parts:
                name = _field_name(meta_data)
                exhaust(stream)
                if item_type in (FIELD, FILE) and name is not None:
                    raise BadArchive(
                        f"The form field {name!r} comes after the archive; send the archive "
                        "as the last part of the form.",
                        code="bad_request",
                    )
        except MultiPartParserError as exc:
            raise BadArchive(f"The upload's form is malformed: {exc}.", code="bad_request") from exc

    def close(self) -> None:
        """Read what is left of the body (a refused upload stops reading the archive): the
        server then answers a client that is still sending instead of resetting it."""
        self._buffer = b""
        if self._ended:
            return
        self._ended = True
        try:
            exhaust(self._part)
            for _, _, stream in self._parts:
                exhaust(stream)
        except Exception:  # the client went away: nothing is left to read
            pass


def _field_name(meta_data: dict[str, Any]) -> str | None:
    try:
        name = meta_data["content-disposition"][1]["name"].strip()
    except (KeyError, IndexError, AttributeError):
        return None
    return force_str(name, errors="replace")


def _spool(stream: LazyStream, name: str, content_type: str) -> UploadedFile:
    """A file part kept in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, written to a temporary
    file beyond it, as Django's parser would."""
    memory = io.BytesIO()
    spooled: TemporaryUploadedFile | None = None
    size = 0
    for chunk in stream:
        size += len(chunk)
        if spooled is None and size > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            spooled = TemporaryUploadedFile(name or "file", content_type, 0, None)
            spooled.write(memory.getvalue())
            memory = io.BytesIO()
        (spooled if spooled is not None else memory).write(chunk)
    if spooled is None:
        memory.seek(0)
        return InMemoryUploadedFile(memory, None, name or "file", content_type, size, None)
    spooled.seek(0)
    spooled.size = size
    return spooled


class StreamingUploadParser(MultiPartParser):
    """multipart/form-data whose archive (after the manifest) is read as it arrives."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> DataAndFiles:
        context = parser_context or {}
        encoding = context.get("encoding", settings.DEFAULT_CHARSET)
        data = QueryDict(mutable=True, encoding=encoding)
        files = MultiValueDict()
        if stream is None:
            return DataAndFiles(data, files)
        _, options = parse_header_parameters(media_type or "")
        boundary = options.get("boundary", "")
        if not boundary or not DjangoMultiPartParser.boundary_re.fullmatch(boundary):
            raise ParseError("Multipart form parse error - Invalid boundary in multipart.")
        parts = iter(Parser(LazyStream(ChunkIter(stream, READ_SIZE)), boundary.encode("ascii")))
        field_bytes = 0
        count = 0
        try:
            for item_type, meta_data, part in parts:
                name = _field_name(meta_data)
                if name is None or item_type not in (FIELD, FILE):
                    exhaust(part)
                    continue
                count += 1
                limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
                if limit is not None and count > limit:
                    raise TooManyFieldsSent("The upload has too many form fields.")
                if item_type == FIELD:
                    memory = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
                    value = part.read(None if memory is None else memory - field_bytes + 1)
                    field_bytes += len(value)
                    if memory is not None and field_bytes > memory:
                        raise RequestDataTooBig("The upload's form fields are too large.")
                    exhaust(part)
                    data.appendlist(name, force_str(value, encoding, errors="replace"))
                    continue
                if name == ARCHIVE_FIELD and data.get(LAST_FIELD) == "true":
                    files.appendlist(name, LiveArchive(part, parts))
                    # The rest of the body is the archive's to read.
                    return DataAndFiles(data, files)
                filename = force_str(meta_data["content-disposition"][1].get("filename", b""))
                content_type = meta_data.get("content-type", ("application/octet-stream",))[0]
                files.appendlist(name, _spool(part, filename, content_type.strip()))
        except MultiPartParserError as exc:
            _close(files)
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        except BaseException:
            _close(files)
            raise
        return DataAndFiles(data, files)


def _close(files: MultiValueDict) -> None:
    for _, values in files.lists():
        for value in values:
            value.close()
