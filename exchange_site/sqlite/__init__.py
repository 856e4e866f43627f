"""The service's SQLite backend (``DATABASES["default"]["ENGINE"]`` on the embedded
default): Django's, with write transactions queued in line (``base.py``)."""
