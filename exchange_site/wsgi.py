"""WSGI entry point for gunicorn: ``gunicorn exchange_site.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

from exchange_site.env import prepare_data_dir
from exchange_site.lean import skip_postgres

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
prepare_data_dir()
skip_postgres()
application = get_wsgi_application()
