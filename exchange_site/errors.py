"""How the whole site answers what fails outside a view's own handling: JSON in the API's one
error form (``{"error": code, "detail": sentence}``) under ``settings.API_PREFIX``, Django's
pages elsewhere.

The ``handler*`` views are Django's hooks for an unknown URL, a refused or malformed request
and a crash (exchange_site/urls.py); the middleware answers 503 with a sentence when a view
fails because a dependency (database, file storage) is away. API views' own errors go
through DRF's handler, ``api/errors.py``, which uses ``error_body`` too.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from courses.dependencies import RETRY_AFTER_SECONDS, as_unavailable


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def is_api(request: HttpRequest) -> bool:
    """Whether the request is for the API (settings.API_PREFIX), which answers JSON."""
    return request.path_info.startswith("/" + settings.API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body("too_large", "The request is too large."), status=413)
    return JsonResponse(error_body("bad_request", "The request is malformed."), status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body("forbidden", "You may not do this."), status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(
        error_body("not_found", f"There is no API endpoint {request.path_info!r}."), status=404
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api(request):
        return defaults.server_error(request)
    return JsonResponse(
        error_body(
            "server_error",
            "The service failed to handle this request; the error is in its log.",
        ),
        status=500,
    )


class DependencyUnavailableMiddleware:
    """Outside the API (whose exception handler does the same), a view that fails because a
    dependency is away answers 503 with the sentence, as JSON under ``/api/`` and as a short
    page elsewhere."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        unavailable = as_unavailable(exception)
        if unavailable is None:
            return None
        if is_api(request):
            response: HttpResponse = JsonResponse(
                error_body(unavailable.code, unavailable.detail), status=503
            )
        else:
            response = HttpResponse(
                unavailable.detail, status=503, content_type="text/plain; charset=utf-8"
            )
        response["Retry-After"] = str(unavailable.retry_after or RETRY_AFTER_SECONDS)
        return response
