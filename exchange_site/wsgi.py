"""WSGI entry point for gunicorn: ``gunicorn exchange_site.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

from exchange_site.env import prepare_data_dir
from exchange_site.lean import skip_postgres
from exchange_site.wsgi_input import fast_input

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
prepare_data_dir()
skip_postgres()
# gunicorn's request body, read in large pieces (wsgi_input.py).
application = fast_input(get_wsgi_application())
