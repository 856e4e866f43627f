"""Setting up a course on a live server (``api.tests.live.LiveServer``) over its real
interfaces, for the fault tests and the benchmark: users and API tokens in one
``manage.py shell`` run, everything else through the HTTP API."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from api.tests.live import LiveServer

_MAKE_TOKENS = """
import json
from api.tokens import create_api_token
from courses import services
wanted = json.loads('''{spec}''')
tokens = {{}}
for name, staff in wanted.items():
    user = services.get_or_create_user(name)
    if staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    tokens[name] = create_api_token(user=user)
print(json.dumps(tokens))
"""


def make_tokens(server: LiveServer, users: Mapping[str, bool]) -> dict[str, str]:
    """An API token for each user (created if missing; ``True`` makes a site admin), made by
    the service's own token function in one process."""
    result = server.manage("shell", "-c", _MAKE_TOKENS.format(spec=json.dumps(dict(users))))
    return json.loads(result.stdout.strip().splitlines()[-1])


def session(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"token {token}"
    return http


def manifest_of(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    return [
        {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for path, data in sorted(files.items())
    ]


def tar_gz(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_form(
    files: Mapping[str, bytes], *, omit: Iterable[str] = ()
) -> dict[str, tuple[str, bytes, str]]:
    """The multipart form of an upload (``requests``' ``files=``), as the plugin sends it."""
    skip = set(omit)
    sent = {path: data for path, data in files.items() if path not in skip}
    return {
        "manifest": ("manifest.json", json.dumps(manifest_of(files)).encode(), "application/json"),
        "archive": ("archive.tar.gz", tar_gz(sent), "application/gzip"),
    }


def create_course(
    server: LiveServer,
    *,
    code: str,
    admin_token: str,
    instructor: str,
    instructor_token: str,
    students: Iterable[str],
) -> None:
    """A course with one instructor and a roster of students, through the API."""
    response = session(admin_token).post(
        f"{server.api_url}/courses",
        json={"course_id": code, "instructors": [instructor]},
        timeout=60,
    )
    response.raise_for_status()
    members = [{"username": name} for name in students]
    if members:
        response = session(instructor_token).post(
            f"{server.api_url}/courses/{code}/roster",
            json={"role": "student", "members": members},
            timeout=300,
        )
        response.raise_for_status()
