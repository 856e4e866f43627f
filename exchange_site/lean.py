"""What a server process does not load until it needs it: PostgreSQL's driver on SQLite,
``requests`` until an outgoing HTTP call, PyYAML until a YAML schema.

Django REST framework imports ``django.contrib.postgres.fields`` when it can (to map
PostgreSQL's array and hstore model fields to serializer fields), and with it psycopg: about
11 MB in every worker, although on SQLite nothing can use them (no model of the service has
such a field; they need a PostgreSQL database). The WSGI entry calls ``skip_postgres`` before
Django loads: on SQLite it marks that module as absent, which Python's import system answers
with ``ImportError``, and DRF then does without it, as when psycopg is not installed.

``requests`` (with urllib3, idna, charset_normalizer and http.cookiejar) is imported at
start-up by the hub sign-in library (``social_core``) and by ``hub/client.py``, but only the
hub sign-in and the hub's API calls use it, inside functions; a worker serving the API never
does. ``defer`` puts a stand-in module in ``sys.modules`` that loads the real one on the
first attribute anyone reads from it (``requests.Session``, ``requests.HTTPError`` in an
``except`` being evaluated, ``from requests import ...``, ``import requests.auth``): about
3-4 MB less in every worker that never calls the hub (bench/RESULTS.md, "Idle RSS after
serving requests"). PyYAML likewise: DRF imports it when installed, for its own schema
renderer (not used here); drf-spectacular's YAML schema (``GET schema/``) loads it.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any

# Imported by DRF (rest_framework.compat) only; it imports psycopg.
POSTGRES_ONLY = "django.contrib.postgres.fields"
# Imported with the application, used only inside functions: requests by the hub sign-in and
# hub/client.py's calls to the hub, yaml by DRF's and drf-spectacular's YAML renderers.
DEFERRED = ("requests", "yaml")

_loading = threading.Lock()


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


class Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module not loaded yet. Reading any attribute it does
    not have loads the real module (once, under a lock: a worker has several threads), puts
    it in ``sys.modules`` and copies its namespace here, so that the modules that imported
    the stand-in see the real module's attributes from then on."""

    def __getattr__(self, attribute: str) -> Any:
        with _loading:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__.update(real.__dict__)
        return getattr(real, attribute)


def defer(*names: str) -> list[str]:
    """Put a ``Deferred`` stand-in in ``sys.modules`` for each module not imported yet;
    the names it did that for."""
    deferred = []
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = Deferred(name)
            deferred.append(name)
    return deferred
