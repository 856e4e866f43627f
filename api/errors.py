"""The one error form of the API: ``{"error": code, "detail": sentence}`` with a real status.

``exception_handler`` is DRF's hook for errors raised in API views; what fails before or
outside a view (an unknown URL, a crash) is answered by the site's handlers in
``exchange_site/errors.py``, in the same form under the API's prefix.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from courses.dependencies import RETRY_AFTER_SECONDS, as_unavailable
from courses.exceptions import ExchangeError
from exchange_site.errors import error_body

logger = logging.getLogger(__name__)

# DRF's codes, renamed where ours say the same thing.
DRF_CODES = {
    "permission_denied": "forbidden",
    "invalid": "bad_request",
    "parse_error": "bad_request",
}


def _sentence(detail: Any) -> str:
    """DRF's nested error details as one readable sentence."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = _sentence(value)
            parts.append(text if key == "non_field_errors" else f"{key}: {text}")
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(_sentence(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's hook: every error an API view raises, in the one error form."""
    headers: dict[str, str] = {}
    # A database or storage that is away is a 503 with a sentence, not a crash.
    exc = as_unavailable(exc) or exc
    if isinstance(exc, ExchangeError):
        status, code, detail = exc.status_code, exc.code, exc.detail
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)  # type: ignore[attr-defined]
    elif isinstance(exc, Http404):
        status, code, detail = 404, "not_found", "Not found."
    elif isinstance(exc, DjangoPermissionDenied):
        status, code, detail = 403, "forbidden", "You may not do this."
    elif isinstance(exc, RequestDataTooBig):
        status, code, detail = 413, "too_large", "The request is too large."
    elif isinstance(exc, SuspiciousOperation):
        status, code, detail = 400, "bad_request", str(exc) or "The request is malformed."
    elif isinstance(exc, exceptions.APIException):
        status = exc.status_code
        default = exc.default_code if isinstance(exc.default_code, str) else "error"
        code = DRF_CODES.get(default, default)
        detail = _sentence(exc.detail)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    else:
        return None
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    set_rollback()
    return Response(error_body(code, detail), status=status, headers=headers)
