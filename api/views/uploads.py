"""What every upload view shares: the early size check and turning the form into an Upload."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request

from courses.exceptions import TooLarge
from courses.services import Upload

from ..upload_parser import StreamingUploadParser

# Room for the manifest and the multipart framing on top of the files' bytes.
UPLOAD_OVERHEAD = 16 * 1024 * 1024


def check_content_length(request: Request) -> None:
    """413 before a byte of the body is read when the request announces too much."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.EXCHANGE_MAX_BUNDLE_SIZE + UPLOAD_OVERHEAD
    if length > limit:
        raise TooLarge(
            f"The upload is {length} bytes; at most {settings.EXCHANGE_MAX_BUNDLE_SIZE} bytes "
            "of files (plus the manifest) are accepted in one upload."
        )


def upload_of(data: dict[str, Any]) -> Upload:
    """The Upload of validated form data; the archive is handed on as it came: read from
    the body as it arrives, or a spooled file (an archive sent before the manifest)."""
    return Upload(manifest=data["manifest"], archive=data.get("archive"))


class UploadParsers:
    """Uploads are multipart/form-data only; anything else gets 415. The archive is read
    from the body as it arrives (``upload_parser``)."""

    parser_classes = [StreamingUploadParser]
