"""The OpenAPI schema and its docs page, with drf-spectacular loaded on their first request.

drf-spectacular's views import its generator and plumbing (and through them DRF's and
Django's test modules): about 16 MB that a worker which never serves these two pages need
not hold. The URLconf names these two small views; each builds drf-spectacular's own view
once, on first use, and hands it the request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

View = Callable[..., HttpResponse]


def lazy_view(build: Callable[[], View]) -> View:
    """A view that calls ``build()`` on its first request, then the view it returned."""
    built: list[View] = []
    lock = threading.Lock()

    @csrf_exempt  # as DRF's own views are: they check CSRF for sessions themselves
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with lock:  # two first requests at once build it once
            if not built:
                built.append(build())
        return built[0](request, *args, **kwargs)

    return view


def _schema() -> View:
    from drf_spectacular.views import SpectacularAPIView
    from rest_framework.permissions import AllowAny

    # The contract is public: clients and tools read it before they have a token.
    return SpectacularAPIView.as_view(permission_classes=[AllowAny])


def _docs() -> View:
    from drf_spectacular.views import SpectacularSwaggerView
    from rest_framework.permissions import AllowAny

    return SpectacularSwaggerView.as_view(url_name="api:schema", permission_classes=[AllowAny])


schema_view = lazy_view(_schema)
docs_view = lazy_view(_docs)
