"""WSGI entry point for gunicorn: ``gunicorn exchange_site.wsgi``.

gunicorn imports it in each worker (the service does not preload the application), so what it
sets up here is per worker: the modules a worker does not load (``lean.py``) and its malloc
settings (``memory.py``), both before Django loads and before the worker's threads start;
then, with S3 storage, its client, made in the background (``courses/s3_backend.py``).
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


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
prepare_data_dir()
skip_postgres()
defer(*DEFERRED)
lean_malloc()
# gunicorn's request body, read in large pieces (wsgi_input.py).
application = fast_input(get_wsgi_application())
warm_up_storage()
