"""What a server process on SQLite does not load: PostgreSQL's driver.

Django REST framework imports ``django.contrib.postgres.fields`` when it can (to map
PostgreSQL's array and hstore model fields to serializer fields), and with it psycopg: about
11 MB in every worker, although on SQLite nothing can use them (no model of the service has
such a field; they need a PostgreSQL database). The WSGI entry calls ``skip_postgres`` before
Django loads: on SQLite it marks that module as absent, which Python's import system answers
with ``ImportError``, and DRF then does without it, as when psycopg is not installed.
"""

from __future__ import annotations

import sys
from typing import Any

# Imported by DRF (rest_framework.compat) only; it imports psycopg.
POSTGRES_ONLY = "django.contrib.postgres.fields"


def skip_postgres(databases: dict[str, dict[str, Any]] | None = None) -> bool:
    """Without a PostgreSQL database (``settings.DATABASES`` by default), make
    ``POSTGRES_ONLY`` unimportable unless something loaded it already; True when it did."""
    if databases is None:
        from django.conf import settings

        databases = settings.DATABASES
    if any("postgresql" in db["ENGINE"] for db in databases.values()):
        return False
    if POSTGRES_ONLY in sys.modules:
        return False
    sys.modules[POSTGRES_ONLY] = None  # type: ignore[assignment]
    return True
