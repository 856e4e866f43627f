"""Loaded by pytest before pytest-django reads the settings (``-p`` in pyproject's addopts):
the embedded data directory and secret key, made as ``manage.py`` makes them."""

import sys

from exchange_site.env import prepare_data_dir

prepare_data_dir()
# Imported again, from scratch, by the settings once coverage measures the run.
del sys.modules["exchange_site.env"]
