"""Health probes for load balancers and Kubernetes: unauthenticated, cheap, no secrets."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from exchange_site.version import VERSION

from . import blobstore

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering, and which release it runs."""
    return JsonResponse({"status": "ok", "version": VERSION})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the file storage answer."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readyz: database check failed: %s", exc)
        checks["database"] = "unavailable"
    try:
        blobstore.get_storage().exists("blobs/.ready")
        checks["storage"] = "ok"
    except Exception as exc:  # any backend error means "not ready"
        logger.warning("readyz: storage check failed: %s", exc)
        checks["storage"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503
    )
