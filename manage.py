#!/usr/bin/env python
"""Django's command-line utility for the nbgrader exchange service.

Two mistakes of a first install end in a sentence on standard error and exit status 1, not a
traceback: settings that cannot be used (a secret file that is missing, a bad value), and a
command run against a database that was never migrated (usually: run without the service's
environment, so on another database).
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    from exchange_site.env import prepare_data_dir

    try:
        prepare_data_dir()
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        sys.exit(f"The exchange's settings are not usable: {exc}")
    except DatabaseError as exc:
        sentence = missing_table_sentence(exc)
        if sentence is None:
            raise
        sys.exit(sentence)


def missing_table_sentence(exc: Exception, database: dict | None = None) -> str | None:
    """What to do when a table is missing (SQLite: "no such table", PostgreSQL: "relation
    ... does not exist"); None for any other database error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "no such table" not in text and not ("relation" in text and "does not exist" in text):
        return None
    if database is None:
        from django.conf import settings

        database = settings.DATABASES["default"]
    if "sqlite" in database["ENGINE"]:
        where = f"the SQLite file {database['NAME']}"
    else:
        where = f"the database {database['NAME']} on {database.get('HOST') or 'localhost'}"
    return (
        f"The database has not been set up ({text}). This command used {where}: if that is "
        "the service's database, run `python manage.py migrate` first; if not, run the "
        "command with the service's environment (DATABASE_URL, or EXCHANGE_DATA_DIR for "
        "SQLite)."
    )


if __name__ == "__main__":
    main()
