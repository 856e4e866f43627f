"""Settings for the nbgrader exchange service, read once from environment variables.

Every variable is listed in the README and read through the ``env_*`` helpers of
``exchange_site/env.py``. The defaults give the embedded mode: SQLite and local files under
``data/``, a secret key generated on first start and kept there (by
``env.prepare_data_dir``, which the entry points run: importing this module writes nothing).
"""

from __future__ import annotations

from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from exchange_site.env import (
    BASE_DIR,
    DEFAULT_DATA_DIR,
    embedded_secret_key,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_path,
    env_secret,
    env_str,
)

DATA_DIR = env_path("EXCHANGE_DATA_DIR", DEFAULT_DATA_DIR)
SECRET_KEY = env_secret("SECRET_KEY") or embedded_secret_key(DATA_DIR)
if not SECRET_KEY:
    raise ImproperlyConfigured(
        f"SECRET_KEY is not set and {DATA_DIR / 'secret_key'} does not exist yet: start the "
        "service with manage.py or gunicorn exchange_site.wsgi (they make it), or set "
        "SECRET_KEY."
    )
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
if env_bool("EXCHANGE_BEHIND_PROXY", False):
    # The first X-Forwarded-Proto value is the one the browser used: the hub's proxy
    # (configurable-http-proxy) appends its own "http" after the TLS terminator's "https".
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# --- HTTPS ----------------------------------------------------------------------------
# Browsers reach the pages over HTTPS, through a proxy that ends TLS (the hub's, an
# ingress); the service itself speaks plain HTTP, to that proxy and to the plugin in the
# users' servers. See docs/security.md, "HTTPS".
EXCHANGE_HTTPS = env_bool("EXCHANGE_HTTPS", False)
SILENCED_SYSTEM_CHECKS: list[str] = []
if EXCHANGE_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Sent only on requests that arrived over HTTPS (X-Forwarded-Proto with the proxy).
    SECURE_HSTS_SECONDS = env_int("EXCHANGE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("EXCHANGE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("EXCHANGE_HSTS_PRELOAD", False)
    # No redirect to HTTPS here: the plugin calls the service over plain HTTP inside the
    # cluster, and the proxy that ends TLS redirects browsers itself (behind a TCP load
    # balancer that sends no X-Forwarded-Proto, a redirect here would loop).
    SILENCED_SYSTEM_CHECKS.append("security.W008")
    # The pages share the hub's host name: whether its subdomains, or the browsers' preload
    # list, must be HTTPS-only is the hub operator's decision, off unless set.
    if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
        SILENCED_SYSTEM_CHECKS.append("security.W005")
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS.append("security.W021")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "social_django",
    "courses",
    "hub",
    "api",
    "web",
]

MIDDLEWARE = [
    "exchange_site.prefix.ServicePrefixMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Signed file downloads are answered here, without sessions, CSRF, locale or database.
    "api.signed_files.SignedFileMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Pages show times in the viewer's zone (web/timezones.py).
    "web.timezones.ViewerTimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "exchange_site.errors.DependencyUnavailableMiddleware",
    # A failed sign-in through the hub ends on a page saying so, not on a server error.
    "social_django.middleware.SocialAuthExceptionMiddleware",
]

ROOT_URLCONF = "exchange_site.urls"
# Where the API lives (its versions below it); everything under it answers errors as JSON.
API_PREFIX = "api/"
WSGI_APPLICATION = "exchange_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with write transactions queued in line instead of in SQLite's busy
    # handler (exchange_site/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "exchange_site.sqlite"
    # Kept open between requests, as on PostgreSQL: a WAL database whose last connection
    # closes is checkpointed and its -wal file removed, so closing after every request cost
    # a checkpoint (disk writes) and a fresh open per request (bench/RESULTS.md).
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of
        # failing with "database is locked" halfway through a transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests on an in-memory database, Django's default for SQLite, said outright: pytest-django
    # knows SQLite by Django's own engine name only, and under xdist would otherwise name a
    # test database file after the path of this one.
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "EXCHANGE_DB_PREPARED_STATEMENTS", True
):
    # A statement sent five times on a connection is prepared there: PostgreSQL plans it
    # once, not on every call. Planning the joins of a request's few reads (the assignment
    # with the caller's role, a feedback's files) costs the server ten times running them
    # (bench/RESULTS.md). Django turns this off by default for the sake of connection
    # poolers that cannot follow a prepared statement from one connection to the next.
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "server_side_binding": True,
        "prepare_threshold": 5,
    }
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- File storage ---------------------------------------------------------------------
EXCHANGE_STORAGE = env_choice("EXCHANGE_STORAGE", "local", ("local", "s3"))
# Seconds a download link (signed here, or presigned by S3) stays valid.
EXCHANGE_SIGNED_URL_SECONDS = env_int("EXCHANGE_SIGNED_URL_SECONDS", 300, minimum=10)
if EXCHANGE_STORAGE == "local":
    FILES_DIR = env_path("EXCHANGE_FILES_DIR", DATA_DIR / "files")
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Submissions are personal data: the service's account alone reads them.
        "OPTIONS": {
            "location": str(FILES_DIR),
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    }
else:
    _bucket = env_str("EXCHANGE_S3_BUCKET")
    if not _bucket:
        raise ImproperlyConfigured("EXCHANGE_STORAGE=s3 needs EXCHANGE_S3_BUCKET")
    _default_storage = {
        "BACKEND": "courses.s3_backend.ExchangeS3Storage",
        "OPTIONS": {
            "bucket_name": _bucket,
            "endpoint_url": env_str("EXCHANGE_S3_ENDPOINT_URL") or None,
            "region_name": env_str("EXCHANGE_S3_REGION") or None,
            "access_key": env_secret("EXCHANGE_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_secret("EXCHANGE_S3_SECRET_ACCESS_KEY") or None,
            "addressing_style": env_choice(
                "EXCHANGE_S3_ADDRESSING_STYLE", "path", ("path", "virtual", "auto")
            ),
            "signature_version": "s3v4",
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": True,
            "querystring_expire": EXCHANGE_SIGNED_URL_SECONDS,
        },
    }

STORAGES = {
    "default": _default_storage,
    # The site's own CSS and scripts, public by nature: collected as root into the image
    # and read by the service's user, so not private like the files people upload.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage",
        "OPTIONS": {"file_permissions_mode": 0o644, "directory_permissions_mode": 0o755},
    },
}

# --- Limits ---------------------------------------------------------------------------
MIB = 1024 * 1024
EXCHANGE_MAX_FILE_SIZE = env_int("EXCHANGE_MAX_FILE_SIZE", 1024 * MIB, minimum=1)
EXCHANGE_MAX_BUNDLE_SIZE = env_int("EXCHANGE_MAX_BUNDLE_SIZE", 2048 * MIB, minimum=1)
EXCHANGE_MAX_BUNDLE_FILES = env_int("EXCHANGE_MAX_BUNDLE_FILES", 10000, minimum=1)
# Uploads go to temporary files on disk past this size, never wholly to memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * MIB
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * MIB
FILE_UPLOAD_TEMP_DIR = env_str("EXCHANGE_UPLOAD_TEMP_DIR") or None
# With S3: small blobs' bytes kept on the server's disk, under the temporary directory
# (courses/blob_cache.py); 0 turns it off.
EXCHANGE_BLOB_CACHE_BYTES = env_int("EXCHANGE_BLOB_CACHE_BYTES", 256 * MIB, minimum=0)
# Files and directories Django's storage makes are private, whatever the umask.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# --- Notebook previews (web/previews.py, web/render_worker.py) ---------------------------
# Notebooks are rendered by a separate, limited process, never in a request worker; larger
# files are offered for download only.
EXCHANGE_RENDER_MAX_SIZE = env_int("EXCHANGE_RENDER_MAX_SIZE", 5 * MIB, minimum=1)
EXCHANGE_RENDER_SECONDS = env_int("EXCHANGE_RENDER_SECONDS", 120, minimum=1)
EXCHANGE_RENDER_MEMORY = env_int("EXCHANGE_RENDER_MEMORY", 1024 * MIB, minimum=64 * MIB)
EXCHANGE_RENDER_CONCURRENCY = env_int("EXCHANGE_RENDER_CONCURRENCY", 2, minimum=1)

# --- Per-person limits (students' submissions; see docs/security.md) -----------------
# Submissions one user may send per minute, over every course; 0: no limit.
EXCHANGE_UPLOADS_PER_MINUTE = env_int("EXCHANGE_UPLOADS_PER_MINUTE", 10)
# Bytes of distinct files one student's submissions in one course may hold, released files
# not counted; 0: no limit.
EXCHANGE_SUBMISSION_QUOTA = env_int("EXCHANGE_SUBMISSION_QUOTA", 5 * 1024 * MIB)

# --- Roster import -------------------------------------------------------------------
# The Canvas export column that holds JupyterHub user names.
EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN = (
    env_str("EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN") or "SIS Login ID"
)

# --- Cache (hub token answers; shared between replicas when set to db or redis) ---------
_cache_url = env_str("EXCHANGE_CACHE_URL", "locmem://")
_cache_scheme = urlparse(_cache_url).scheme
if _cache_scheme == "locmem":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif _cache_scheme == "db":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "exchange_cache",
        }
    }
elif _cache_scheme in {"redis", "rediss"}:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
else:
    raise ImproperlyConfigured(
        f"EXCHANGE_CACHE_URL={_cache_url!r}: expected locmem://, db:// or redis://host:port/db"
    )

# --- JupyterHub -----------------------------------------------------------------------
JUPYTERHUB_API_URL = env_str("JUPYTERHUB_API_URL").rstrip("/")
JUPYTERHUB_API_TOKEN = env_secret("JUPYTERHUB_API_TOKEN")
EXCHANGE_HUB_TOKEN_CACHE_SECONDS = env_int("EXCHANGE_HUB_TOKEN_CACHE_SECONDS", 60)
EXCHANGE_HUB_ADMINS_ARE_STAFF = env_bool("EXCHANGE_HUB_ADMINS_ARE_STAFF", False)
# Members of this hub group are IT staff too (courses/site_admins.py); empty: nobody by group.
EXCHANGE_HUB_STAFF_GROUP = env_str("EXCHANGE_HUB_STAFF_GROUP")
# The rest of the standard environment JupyterHub gives a service (hub-managed services get
# it from the hub; external ones, e.g. in the Helm chart, set it themselves).
JUPYTERHUB_CLIENT_ID = env_str("JUPYTERHUB_CLIENT_ID")
JUPYTERHUB_SERVICE_PREFIX = env_str("JUPYTERHUB_SERVICE_PREFIX")
JUPYTERHUB_OAUTH_CALLBACK_URL = env_str("JUPYTERHUB_OAUTH_CALLBACK_URL")
JUPYTERHUB_BASE_URL = env_str("JUPYTERHUB_BASE_URL") or "/"
JUPYTERHUB_HOST = env_str("JUPYTERHUB_HOST").rstrip("/")


def _service_prefix(raw: str) -> str:
    """``/services/name/`` -> ``/services/name``; empty when the service is at the root."""
    raw = raw.strip()
    if raw and not raw.startswith("/"):
        raise ImproperlyConfigured(f"EXCHANGE_URL_PREFIX={raw!r}: must start with '/'")
    return raw.rstrip("/")


# The path the proxy forwards to us without stripping it; requests under it are served as
# if it were the script name, requests without it (health probes) as before.
EXCHANGE_URL_PREFIX = _service_prefix(env_str("EXCHANGE_URL_PREFIX") or JUPYTERHUB_SERVICE_PREFIX)
JUPYTERHUB_SERVICE_NAME = env_str("JUPYTERHUB_SERVICE_NAME") or (
    EXCHANGE_URL_PREFIX.rsplit("/", 1)[-1] if EXCHANGE_URL_PREFIX.startswith("/services/") else ""
)
# The hub as a browser reaches it: relative (same host, behind the same proxy) by default.
EXCHANGE_HUB_URL = (env_str("EXCHANGE_HUB_URL") or (JUPYTERHUB_HOST + JUPYTERHUB_BASE_URL)).rstrip(
    "/"
) + "/"
# Log people in through the hub when it is configured; Django's own login otherwise.
EXCHANGE_HUB_LOGIN = bool(JUPYTERHUB_API_URL and JUPYTERHUB_CLIENT_ID and JUPYTERHUB_API_TOKEN)
# Accept only hub tokens that may access this service (JupyterHub's convention for services).
EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE = env_bool("EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE", True)
# Course rosters from hub groups: nbgrader-<course> -> student, formgrade-<course> -> instructor.
EXCHANGE_HUB_GROUP_ROSTER = env_bool("EXCHANGE_HUB_GROUP_ROSTER", False)
if EXCHANGE_URL_PREFIX:
    # Our cookies stay under our prefix, away from the hub's and other services'.
    SESSION_COOKIE_PATH = EXCHANGE_URL_PREFIX + "/"
    CSRF_COOKIE_PATH = EXCHANGE_URL_PREFIX + "/"
    SESSION_COOKIE_NAME = "exchange-session"
    CSRF_COOKIE_NAME = "exchange-csrftoken"

# Sessions end after this many seconds (no sliding renewal); a sign-in through the hub also
# ends no later than the hub's own token for it.
SESSION_COOKIE_AGE = env_int("EXCHANGE_SESSION_SECONDS", 8 * 3600, minimum=60)
# Lifetime of a token made by `create_api_token` without --expires.
EXCHANGE_API_TOKEN_DAYS = env_int("EXCHANGE_API_TOKEN_DAYS", 90, minimum=1)
# How long a checked API token's user is trusted without a query (api/tokens.py): a revoked
# token or a disabled account stops working within this time; 0 asks the database each call.
EXCHANGE_API_TOKEN_CACHE_SECONDS = env_int("EXCHANGE_API_TOKEN_CACHE_SECONDS", 10)

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if EXCHANGE_HUB_LOGIN:
    AUTHENTICATION_BACKENDS.insert(0, "hub.oauth.JupyterHubOAuth2")
SOCIAL_AUTH_JUPYTERHUB_KEY = JUPYTERHUB_CLIENT_ID
SOCIAL_AUTH_JUPYTERHUB_SECRET = JUPYTERHUB_API_TOKEN
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_LOGIN_ERROR_URL = "web:login-failed"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
# Seconds the OAuth calls to the hub may take: a hub that hangs fails the sign-in, not a worker.
SOCIAL_AUTH_URLOPEN_TIMEOUT = 10
# The hub's user name is the account: no renaming, no e-mail matching, no stored hub tokens.
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "hub.oauth.user_from_hub",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.social_auth.associate_user",
    "hub.oauth.remember_hub_token_expiry",
)
# A session through the hub ends when the hub's token does, and after SESSION_COOKIE_AGE.
SOCIAL_AUTH_SESSION_EXPIRATION = True
SOCIAL_AUTH_MAX_SESSION_LENGTH = SESSION_COOKIE_AGE

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:logged-out"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "static/"
if EXCHANGE_URL_PREFIX:
    # Django caches STATIC_URL at first use, so the prefix is written in; WhiteNoise still
    # matches the path it sees once the prefix middleware has moved the prefix out of it.
    STATIC_URL = EXCHANGE_URL_PREFIX + "/static/"
    WHITENOISE_STATIC_PREFIX = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Tests and `make run` serve static files without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.LimitedJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # In this order: a JupyterHub token, a standalone API token, a browser session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.JupyterHubTokenAuthentication",
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ExchangeAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "nbgrader exchange API",
    "DESCRIPTION": "The exchange nbgrader uses on JupyterHub: see docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Applies the views' annotations (api/openapi.py) when the schema is generated.
    "DEFAULT_GENERATOR_CLASS": "api.schema.ExchangeSchemaGenerator",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
