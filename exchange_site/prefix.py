"""Serving under the JupyterHub service prefix, which the hub's proxy does not strip.

The proxy forwards ``/services/<name>/admin/`` to us as it is. For requests under
EXCHANGE_URL_PREFIX this middleware moves the prefix from the path into the script name, as a
WSGI server mounted there would: URL resolution then sees ``/admin/``, and ``reverse()``,
``{% static %}``, redirects and the login round trip all produce prefixed URLs. Requests
without the prefix (a health probe talking to the pod directly) are served unchanged.
It runs first, before anything reads ``request.path_info``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import set_script_prefix


class ServicePrefixMiddleware:
    """Serve ``<prefix>/x`` as ``/x`` with the script name ``<prefix>``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        prefix = settings.EXCHANGE_URL_PREFIX
        path = request.path_info
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            request.path_info = path[len(prefix) :] or "/"
            request.script_name = prefix  # type: ignore[attr-defined]
            request.META["SCRIPT_NAME"] = prefix
            request.META["PATH_INFO"] = request.path_info
            set_script_prefix(prefix + "/")
        else:
            # The prefix is per thread: never let a previous request's leak into this one.
            set_script_prefix(request.META.get("SCRIPT_NAME", "").rstrip("/") + "/")
        return self.get_response(request)
