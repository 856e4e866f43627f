"""Health probes for load balancers and Kubernetes: unauthenticated, cheap, no secrets."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from exchange_site.version import VERSION

from . import blobstore
from .models import Course

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering, and which release it runs."""
    return JsonResponse({"status": "ok", "version": VERSION})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database (reachable and migrated) and the file storage answer."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readyz: database check failed: %s", exc)
        checks["database"] = "unavailable"
    if checks["database"] == "ok":
        try:
            # A database that answers but was never migrated (a new SQLite file, a
            # PostgreSQL database before the migrate Job) fails every request.
            Course.objects.exists()
        except DatabaseError as exc:
            logger.warning("readyz: the database has no tables, run migrate: %s", exc)
            checks["database"] = "not migrated"
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
