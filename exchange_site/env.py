"""Reading the environment, for ``settings.py``: the ``env_*`` helpers, and the embedded
mode's data directory and secret key, made by ``prepare_data_dir`` before Django loads.

Settings read every variable through these helpers (a value, or for secrets a file named by
``NAME_FILE``; ``ImproperlyConfigured`` naming the variable on a bad value), and
importing the settings writes nothing: the entry points (``manage.py``, the WSGI module,
gunicorn's start-up checks, the test run) call ``prepare_data_dir`` first.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = BASE_DIR / "data"
SECRET_KEY_NAME = "secret_key"


def env_str(name: str, default: str = "") -> str:
    """The variable's value, stripped."""
    return os.environ.get(name, default).strip()


def env_secret(name: str) -> str:
    """A secret: the variable's value, or the contents of the file named by ``NAME_FILE``
    (a mounted Kubernetes Secret, a Docker secret)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            reason = exc.strerror or exc
            raise ImproperlyConfigured(
                f"{name}_FILE={file_name}: cannot read it ({reason}). Create that file (for "
                f"SECRET_KEY: `openssl rand -base64 48 > {file_name}`, readable by the service "
                f"only) or set {name} instead."
            ) from exc
    return env_str(name)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected true or false")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive), or ImproperlyConfigured listing them."""
    value = env_str(name).lower() or default
    if value not in choices:
        expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise ImproperlyConfigured(f"{name}={value!r}: expected {expected}")
    return value


def env_path(name: str, default: Path) -> Path:
    """An absolute path: the variable's, or ``default``."""
    return Path(env_str(name) or default).resolve()


def data_dir() -> Path:
    """Where the embedded mode keeps its SQLite file, files and secret key."""
    return env_path("EXCHANGE_DATA_DIR", DEFAULT_DATA_DIR)


def embedded_secret_key(directory: Path) -> str:
    """The secret key ``prepare_data_dir`` keeps in the data directory, or "" if none yet."""
    try:
        return (directory / SECRET_KEY_NAME).read_text().strip()
    except FileNotFoundError:
        return ""


def prepare_data_dir() -> None:
    """Make what the embedded mode keeps in the data directory, when it is used: the
    directory (private to the service) for the SQLite file without DATABASE_URL, and a
    secret key, generated once and kept so that sessions and signed URLs survive restarts,
    without SECRET_KEY. Safe to run from many processes at once."""
    need_key = not env_secret("SECRET_KEY")
    if not need_key and env_str("DATABASE_URL"):
        return
    directory = data_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not need_key:
        return
    target = directory / SECRET_KEY_NAME
    if target.exists():
        return
    # Written whole under a name of its own, then linked into place: a process starting at
    # the same moment sees no key file or a complete one, never an empty one.
    draft = directory / f".{SECRET_KEY_NAME}.{os.getpid()}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    try:
        os.link(draft, target)
    except FileExistsError:
        pass  # another process was first: its key is the one
    finally:
        draft.unlink()
