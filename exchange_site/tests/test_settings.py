"""Settings come from the environment only, with safe defaults and clear errors."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import exchange_site.settings as live_settings
from exchange_site.env import prepare_data_dir

SETTINGS_FILE = live_settings.__file__
REPO = Path(SETTINGS_FILE).resolve().parents[1]
OURS = [
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "DATABASE_URL",
    "EXCHANGE_DB_PREPARED_STATEMENTS",
    "ALLOWED_HOSTS",
    "EXCHANGE_STORAGE",
    "EXCHANGE_CACHE_URL",
    "EXCHANGE_MAX_FILE_SIZE",
    "EXCHANGE_S3_BUCKET",
    "EXCHANGE_BEHIND_PROXY",
    "EXCHANGE_FILES_DIR",
    "EXCHANGE_HTTPS",
    "EXCHANGE_HSTS_SECONDS",
    "EXCHANGE_HSTS_INCLUDE_SUBDOMAINS",
    "EXCHANGE_HSTS_PRELOAD",
    "EXCHANGE_SESSION_SECONDS",
    "EXCHANGE_API_TOKEN_DAYS",
    "EXCHANGE_UPLOADS_PER_MINUTE",
    "EXCHANGE_SUBMISSION_QUOTA",
]


@pytest.fixture
def load(monkeypatch, tmp_path):
    for name in OURS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "data"))

    def _load(*, prepare: bool = True, **env: str) -> dict:
        """The settings as the entry points load them: the data directory prepared first."""
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if prepare:
            prepare_data_dir()
        return runpy.run_path(SETTINGS_FILE)

    return _load


def test_embedded_defaults(load, tmp_path):
    values = load()
    assert values["DEBUG"] is False
    assert values["DATABASES"]["default"]["ENGINE"] == "exchange_site.sqlite"
    assert Path(values["DATABASES"]["default"]["NAME"]) == tmp_path / "data" / "db.sqlite3"
    assert values["STORAGES"]["default"]["OPTIONS"]["location"] == str(tmp_path / "data" / "files")


def test_secret_key_is_generated_once_and_kept(load, tmp_path):
    first = load()["SECRET_KEY"]
    assert len(first) > 40
    assert load()["SECRET_KEY"] == first
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0


def test_reading_the_settings_writes_nothing(load, tmp_path):
    """Importing the settings makes no directory and no key: without one prepared by an
    entry point (manage.py, the WSGI module, gunicorn's checks) it says what to do."""
    with pytest.raises(ImproperlyConfigured, match=r"start the service with manage\.py"):
        load(prepare=False)
    assert not (tmp_path / "data").exists()
    assert load(prepare=False, SECRET_KEY="k")["SECRET_KEY"] == "k"
    assert not (tmp_path / "data").exists()


def test_processes_starting_at_once_share_one_key(tmp_path):
    """Workers of a first start prepare the data directory at the same moment: every one
    reads the same, complete key, and no draft is left behind."""
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SECRET_KEY_FILE"}}
    env["EXCHANGE_DATA_DIR"] = str(tmp_path)
    script = (
        "from exchange_site.env import prepare_data_dir, embedded_secret_key, data_dir; "
        "prepare_data_dir(); print(embedded_secret_key(data_dir()))"
    )
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    keys = {start.communicate(timeout=60)[0].strip() for start in starts}
    assert len(keys) == 1 and len(keys.pop()) > 40
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_nothing_is_made_when_the_key_and_the_database_are_given(tmp_path, monkeypatch):
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SECRET_KEY", "k")
    monkeypatch.setenv("DATABASE_URL", "postgres://db/exchange")
    prepare_data_dir()
    assert not (tmp_path / "data").exists()


def test_secret_key_from_file(load, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    assert load(SECRET_KEY_FILE=str(secret))["SECRET_KEY"] == "from-a-file"


def test_unreadable_secret_file_is_a_clear_error(load, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FILE"):
        load(SECRET_KEY_FILE=str(tmp_path / "missing"))


def test_postgres_url(load):
    values = load(DATABASE_URL="postgres://u:p@db.example:5432/exchange?sslmode=require")
    db = values["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert db["HOST"] == "db.example" and db["CONN_HEALTH_CHECKS"] is True
    assert db["OPTIONS"] == {
        "sslmode": "require",
        "server_side_binding": True,
        "prepare_threshold": 5,
    }


def test_prepared_statements_can_be_turned_off_for_a_pooler(load):
    values = load(
        DATABASE_URL="postgres://u:p@pgbouncer:6432/exchange",
        EXCHANGE_DB_PREPARED_STATEMENTS="false",
    )
    options = values["DATABASES"]["default"].get("OPTIONS", {})
    assert "server_side_binding" not in options and "prepare_threshold" not in options


def test_s3_storage(load):
    values = load(
        EXCHANGE_STORAGE="s3",
        EXCHANGE_S3_BUCKET="exchange",
        EXCHANGE_S3_ENDPOINT_URL="http://127.0.0.1:8333",
    )
    options = values["STORAGES"]["default"]["OPTIONS"]
    assert values["STORAGES"]["default"]["BACKEND"] == "courses.s3_backend.ExchangeS3Storage"
    assert options["bucket_name"] == "exchange" and options["endpoint_url"].endswith(":8333")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "expected true or false"),
        ({"EXCHANGE_MAX_FILE_SIZE": "ten"}, "whole number"),
        ({"EXCHANGE_MAX_FILE_SIZE": "0"}, "at least 1"),
        ({"EXCHANGE_STORAGE": "ftp"}, "expected local or s3"),
        ({"EXCHANGE_STORAGE": "s3"}, "needs EXCHANGE_S3_BUCKET"),
        (
            {
                "EXCHANGE_STORAGE": "s3",
                "EXCHANGE_S3_BUCKET": "b",
                "EXCHANGE_S3_ADDRESSING_STYLE": "x",
            },
            "expected path, virtual or auto",
        ),
        ({"EXCHANGE_CACHE_URL": "memcache://x"}, "expected locmem"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
    ],
)
def test_bad_values_name_the_variable(load, env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load(**env)


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("db://", "django.core.cache.backends.db.DatabaseCache"),
        ("redis://127.0.0.1:6379/0", "django.core.cache.backends.redis.RedisCache"),
    ],
)
def test_shared_caches_for_several_replicas(load, url, backend):
    assert load(EXCHANGE_CACHE_URL=url)["CACHES"]["default"]["BACKEND"] == backend


def test_behind_proxy_trusts_forwarded_proto(load):
    values = load(EXCHANGE_BEHIND_PROXY="true", DEBUG="yes")
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert values["DEBUG"] is True


def test_booleans_read_as_people_write_them(load):
    assert load(DEBUG="off")["DEBUG"] is False
    assert load(DEBUG=" Yes ")["DEBUG"] is True


def test_plain_http_by_default_no_secure_cookies_no_hsts(load):
    values = load()
    assert values["EXCHANGE_HTTPS"] is False
    assert not values.get("SESSION_COOKIE_SECURE")
    assert not values.get("SECURE_HSTS_SECONDS")
    assert values["SILENCED_SYSTEM_CHECKS"] == []


def test_https_marks_cookies_secure_and_sends_hsts(load):
    values = load(EXCHANGE_HTTPS="true", EXCHANGE_BEHIND_PROXY="true")
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    # Never a redirect to HTTPS: the plugin calls the service over plain HTTP in the cluster.
    assert not values.get("SECURE_SSL_REDIRECT")
    assert set(values["SILENCED_SYSTEM_CHECKS"]) == {
        "security.W008",
        "security.W005",
        "security.W021",
    }
    values = load(
        EXCHANGE_HTTPS="true",
        EXCHANGE_HSTS_SECONDS="600",
        EXCHANGE_HSTS_INCLUDE_SUBDOMAINS="true",
        EXCHANGE_HSTS_PRELOAD="yes",
    )
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SILENCED_SYSTEM_CHECKS"] == ["security.W008"]


def test_sessions_tokens_and_limits_have_defaults_and_can_be_set(load):
    values = load()
    assert values["SESSION_COOKIE_AGE"] == 8 * 3600
    assert values["EXCHANGE_API_TOKEN_DAYS"] == 90
    assert values["EXCHANGE_UPLOADS_PER_MINUTE"] == 10
    assert values["EXCHANGE_SUBMISSION_QUOTA"] == 5 * 1024**3
    values = load(
        EXCHANGE_SESSION_SECONDS="900",
        EXCHANGE_API_TOKEN_DAYS="7",
        EXCHANGE_UPLOADS_PER_MINUTE="0",
        EXCHANGE_SUBMISSION_QUOTA="0",
    )
    assert values["SESSION_COOKIE_AGE"] == values["SOCIAL_AUTH_MAX_SESSION_LENGTH"] == 900
    assert values["EXCHANGE_API_TOKEN_DAYS"] == 7
    assert values["EXCHANGE_UPLOADS_PER_MINUTE"] == 0
    assert values["EXCHANGE_SUBMISSION_QUOTA"] == 0
    with pytest.raises(ImproperlyConfigured, match="EXCHANGE_SESSION_SECONDS"):
        load(EXCHANGE_SESSION_SECONDS="10")


def test_behind_an_https_proxy_pages_carry_hsts_and_secure_cookies(load, settings, db):
    """What a browser gets through the hub's proxy (X-Forwarded-Proto "https,http"), and
    what the plugin gets calling the service over plain HTTP inside the cluster."""
    from django.test import Client

    values = load(EXCHANGE_HTTPS="true", EXCHANGE_BEHIND_PROXY="true")
    for name in (
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    ):
        setattr(settings, name, values[name])
    page = Client().get("/login/", HTTP_X_FORWARDED_PROTO="https,http")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000"
    assert page.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True
    in_cluster = Client().get("/api/v1/me")
    assert in_cluster.status_code == 401
    assert "Strict-Transport-Security" not in in_cluster


HUB_ENV = [
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_API_TOKEN",
    "JUPYTERHUB_CLIENT_ID",
    "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_SERVICE_NAME",
    "JUPYTERHUB_OAUTH_CALLBACK_URL",
    "JUPYTERHUB_BASE_URL",
    "JUPYTERHUB_HOST",
    "EXCHANGE_URL_PREFIX",
    "EXCHANGE_HUB_URL",
]


def test_without_a_hub_django_login_and_no_prefix(load, monkeypatch):
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    values = load()
    assert values["EXCHANGE_HUB_LOGIN"] is False
    assert values["AUTHENTICATION_BACKENDS"] == ["django.contrib.auth.backends.ModelBackend"]
    assert values["EXCHANGE_URL_PREFIX"] == "" and values["STATIC_URL"] == "static/"
    assert values["EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE"] is True


def test_the_environment_a_hub_gives_its_service(load, monkeypatch):
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    values = load(
        JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api/",
        JUPYTERHUB_API_TOKEN="secret",
        JUPYTERHUB_CLIENT_ID="service-nbgrader-exchange",
        JUPYTERHUB_SERVICE_PREFIX="/services/nbgrader-exchange/",
        JUPYTERHUB_OAUTH_CALLBACK_URL="/services/nbgrader-exchange/oauth_callback",
        JUPYTERHUB_BASE_URL="/jhub/",
    )
    assert values["EXCHANGE_HUB_LOGIN"] is True
    assert values["AUTHENTICATION_BACKENDS"][0] == "hub.oauth.JupyterHubOAuth2"
    assert values["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"
    assert values["EXCHANGE_URL_PREFIX"] == "/services/nbgrader-exchange"
    assert values["JUPYTERHUB_SERVICE_NAME"] == "nbgrader-exchange"
    assert values["EXCHANGE_HUB_URL"] == "/jhub/"
    assert values["STATIC_URL"] == "/services/nbgrader-exchange/static/"
    assert values["WHITENOISE_STATIC_PREFIX"] == "/static/"
    assert values["SESSION_COOKIE_PATH"] == "/services/nbgrader-exchange/"
    assert values["SOCIAL_AUTH_JUPYTERHUB_SECRET"] == "secret"


def test_public_hub_url_and_prefix_can_be_set_apart(load, monkeypatch):
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    values = load(EXCHANGE_HUB_URL="https://hub.example.edu", EXCHANGE_URL_PREFIX="/x/")
    assert values["EXCHANGE_HUB_URL"] == "https://hub.example.edu/"
    assert values["EXCHANGE_URL_PREFIX"] == "/x" and values["JUPYTERHUB_SERVICE_NAME"] == ""
    with pytest.raises(ImproperlyConfigured, match="must start with '/'"):
        load(EXCHANGE_URL_PREFIX="services/x")
