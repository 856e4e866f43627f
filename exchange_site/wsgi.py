"""WSGI entry point for gunicorn: ``gunicorn exchange_site.wsgi``.

gunicorn imports it in each worker (the service does not preload the application), so what it
sets up here is per worker: the modules a worker does not load (``lean.py``) and its malloc
settings (``memory.py``), both before Django loads and before the worker's threads start.
"""

import os

from django.core.wsgi import get_wsgi_application

from exchange_site.env import prepare_data_dir
from exchange_site.lean import DEFERRED, defer, skip_postgres
from exchange_site.memory import lean_malloc
from exchange_site.wsgi_input import fast_input

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
prepare_data_dir()
skip_postgres()
defer(*DEFERRED)
lean_malloc()
# gunicorn's request body, read in large pieces (wsgi_input.py).
application = fast_input(get_wsgi_application())
