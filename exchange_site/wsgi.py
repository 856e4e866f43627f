"""WSGI entry point for gunicorn: ``gunicorn exchange_site.wsgi``.

gunicorn imports it in each worker (the service does not preload the application), so what it
sets up here is per worker: the modules a worker does not load (``lean.py``) and its malloc
settings (``memory.py``), both before Django loads and before the worker's threads start;
then the URLconf with every view, before the first request; then, with S3 storage, its
client, made in the background (``courses/s3_backend.py``).
"""

import os

from django.core.wsgi import get_wsgi_application

from exchange_site.env import prepare_data_dir
from exchange_site.lean import DEFERRED, defer, skip_postgres
from exchange_site.memory import lean_malloc
from exchange_site.wsgi_input import fast_input


def warm_up_storage() -> None:
    """With S3 storage: its client made in the background as the worker starts
    (courses/s3_backend.py). Asked by name, so a worker on local storage never loads boto3."""
    from django.conf import settings

    if settings.STORAGES["default"]["BACKEND"] == "courses.s3_backend.ExchangeS3Storage":
        from courses.s3_backend import warm_up

        warm_up()


def load_urls() -> None:
    """Import the URLconf, and with it every view, before the worker takes a request. Django
    does it on a worker's first request, which then took 0.2-0.3 s longer: after a start or
    a restart, the first release, submit or page each worker served (bench/RESULTS.md)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imported for its side effect)


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
prepare_data_dir()
skip_postgres()
defer(*DEFERRED)
lean_malloc()
# gunicorn's request body, read in large pieces (wsgi_input.py).
application = fast_input(get_wsgi_application())
load_urls()
warm_up_storage()
