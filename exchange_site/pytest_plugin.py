"""Loaded by pytest before pytest-django reads the settings (``-p`` in pyproject's addopts):
the embedded data directory and secret key, made as ``manage.py`` makes them."""

from exchange_site.env import prepare_data_dir

prepare_data_dir()
