"""Request body parsers with a size limit: DRF's JSON parser reads the whole body into
memory, so a body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 before it is read."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from courses.exceptions import TooLarge


def check_body_size(parser_context: dict[str, Any] | None) -> None:
    request = (parser_context or {}).get("request")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        length = 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        raise TooLarge(f"The request body is {length} bytes; at most {limit} are accepted here.")


class LimitedJSONParser(JSONParser):
    """JSON, up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        check_body_size(parser_context)
        return super().parse(stream, media_type, parser_context)
