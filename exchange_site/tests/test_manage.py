"""manage.py ends a first install's two usual mistakes with a sentence, not a traceback: a
secret file that does not exist, and a command run against a database never migrated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, ProgrammingError

from tests.harness import REPO

sys.path.insert(0, str(REPO))
import manage


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EXCHANGE_", "DATABASE_URL", "SECRET_KEY", "COV_CORE"))
    }
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=tmp_path,
        env={**base, "DJANGO_SETTINGS_MODULE": "exchange_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_secret_file_is_a_sentence(tmp_path):
    missing = tmp_path / "secret_key"
    result = run(tmp_path, "migrate", SECRET_KEY_FILE=str(missing), EXCHANGE_DATA_DIR=str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"The exchange's settings are not usable: SECRET_KEY_FILE={missing}: cannot read it "
        f"(No such file or directory). Create that file (for SECRET_KEY: `openssl rand "
        f"-base64 48 > {missing}`, readable by the service only) or set SECRET_KEY instead."
    )


def test_a_command_on_an_unmigrated_database_says_which_database_and_what_to_do(tmp_path):
    data = tmp_path / "elsewhere"
    result = run(
        tmp_path,
        "add_member",
        "phys101",
        "ines",
        "--role",
        "student",
        SECRET_KEY="k",
        EXCHANGE_DATA_DIR=str(data),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "The database has not been set up (no such table: courses_course)" in result.stderr
    assert f"This command used the SQLite file {data / 'db.sqlite3'}" in result.stderr
    assert "run `python manage.py migrate` first" in result.stderr
    assert "with the service's environment (DATABASE_URL" in result.stderr


def test_postgresql_wording_is_recognised_and_other_database_errors_are_not():
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "exchange", "HOST": "db"}
    sentence = manage.missing_table_sentence(
        ProgrammingError('relation "courses_course" does not exist\nLINE 1: SELECT ...'),
        postgres,
    )
    assert sentence is not None
    assert '(relation "courses_course" does not exist)' in sentence
    assert "the database exchange on db" in sentence
    assert manage.missing_table_sentence(OperationalError("database is locked")) is None
    assert manage.missing_table_sentence(OperationalError("")) is None


@pytest.mark.parametrize("args", [("check",)])
def test_a_working_setup_is_untouched(tmp_path, args):
    result = run(tmp_path, *args, SECRET_KEY="k", EXCHANGE_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
