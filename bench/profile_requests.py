"""Server CPU and database queries per request kind, measured in one process: the full
Django stack (every middleware, the URL resolver, DRF) through Django's test client, on a
fresh database and storage, without HTTP or other load in the way.

    python -m bench.profile_requests --repeat 200 [--profile download]
        [--database postgres] [--storage s3]

SQLite and local files by default; ``--database postgres`` a throwaway PostgreSQL cluster,
``--storage s3`` a throwaway SeaweedFS (both the tests' own, tests/harness). The CPU is this
process's, its I/O threads included (the S3 requests' signing and parsing); PostgreSQL's
and SeaweedFS's own processes are not counted (``bench.feedback_phase`` counts them). With
S3 the three download kinds are left out: clients download from presigned URLs, and the
bytes never pass through the service.

``feedback_inline`` is a student's feedback with its files' bytes after the JSON (what the
plugin asks for), ``feedback_inline_json`` the same as base64 in the JSON.
``downloads_3x50k`` is three signed single-file downloads of 50 KB (one sample for all
three), ``archive_3x50k`` the same three files in one ``POST files/archive``.

For each kind: the median and p90 of ``time.process_time`` per request (CPU of this
process, so the machine's other load changes it little), and the queries each request ran.
``feedback_batch`` is one request releasing feedback to 50 students (its archive made before
the clock starts); ``submission_read`` the read of one submission that release_feedback made
per student before the listing carried the secrets.
``--profile KIND`` prints cProfile's top functions for that kind (wall time, so the
database's answers count); with ``PROFILE_DUMP=FILE`` in the environment it also writes the
statistics there, for ``pstats``. ``SHOW_QUERIES=KIND`` prints the SQL of KIND's first
measured request.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

KINDS = (
    "download",
    "downloads_3x50k",
    "archive_3x50k",
    "json_read",
    "list",
    "submission_read",
    "feedback_upload",
    "feedback_batch",
    "feedback_read",
    "feedback_inline",
    "feedback_inline_json",
    "feedback_inline_cold",
    "submit",
)
# Students per feedback_batch request: the plugin's default batch.
BATCH = 50


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _form(files: dict[str, bytes], *, known: set[str] = frozenset()) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    manifest = [
        {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
        for p, d in sorted(files.items())
    ]
    sent = {p: d for p, d in files.items() if hashlib.sha256(d).hexdigest() not in known}
    return {
        "manifest": SimpleUploadedFile(
            "manifest.json", json.dumps(manifest).encode(), "application/json"
        ),
        "archive": SimpleUploadedFile("archive.tar.gz", _tar_gz(sent), "application/gzip"),
    }


# Request kinds that serve files' bytes from local storage (signed URLs and archives).
LOCAL_ONLY = frozenset({"download", "downloads_3x50k", "archive_3x50k"})


@contextlib.contextmanager
def setup(database: str = "sqlite", storage: str = "local") -> Iterator[None]:
    """Settings for a throwaway data directory (and database and object store when asked),
    before Django is imported; the servers are stopped at the end."""
    with contextlib.ExitStack() as servers:
        data = tempfile.mkdtemp(prefix="exchange-profile-")
        servers.callback(shutil.rmtree, data, ignore_errors=True)
        os.environ["EXCHANGE_DATA_DIR"] = data
        os.environ.pop("DATABASE_URL", None)
        if database == "postgres":
            from tests.harness.postgres import ThrowawayPostgres

            postgres = ThrowawayPostgres().start()
            servers.callback(postgres.stop)
            os.environ["DATABASE_URL"] = postgres.url
        if storage == "s3":
            from tests.harness.seaweedfs import SeaweedFS

            store = SeaweedFS(Path(data) / "seaweedfs").start()
            servers.callback(store.stop)
            store.warm_up()
            os.environ.update(store.env())
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
        os.environ.setdefault("EXCHANGE_UPLOADS_PER_MINUTE", "0")
        import django

        from exchange_site.env import prepare_data_dir

        prepare_data_dir()  # the secret key the settings read, as manage.py makes it
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        try:
            yield
        finally:
            from django.db import connections

            connections.close_all()


def measure(
    repeat: int, profile: str | None, *, storage: str = "local"
) -> dict[str, dict[str, Any]]:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from api.spliced_json import INLINE_BYTES_TYPE
    from api.tokens import create_api_token
    from courses import services
    from nbgrader_exchange.archive_download import INLINE_ACCEPT

    students = [f"s{i:03d}" for i in range(60)]
    admin = services.get_or_create_user("p-admin")
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    tokens = {name: create_api_token(user=services.get_or_create_user(name)) for name in students}
    tokens["p-admin"] = create_api_token(user=admin)
    tokens["p-teacher"] = create_api_token(user=services.get_or_create_user("p-teacher"))

    clients: dict[str, Client] = {}

    def client(user: str) -> Client:
        # One client per user, kept: a new test client loads every middleware again on its
        # first request (whitenoise scans the static files), which a server does once per
        # worker; counting it would double a submit's CPU.
        if user not in clients:
            clients[user] = Client(
                HTTP_AUTHORIZATION=f"token {tokens[user]}", SERVER_NAME="localhost"
            )
        return clients[user]

    api = "/api/v1"
    a = f"{api}/courses/prof101/assignments/ps1"
    r = client("p-admin").post(
        f"{api}/courses",
        {"course_id": "prof101", "instructors": ["p-teacher"]},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    teacher = client("p-teacher")
    r = teacher.post(
        f"{api}/courses/prof101/roster",
        {"role": "student", "members": [{"username": s} for s in students]},
        content_type="application/json",
    )
    assert r.status_code in (200, 201), r.content
    release = {f"ps1/problem{i}.ipynb": os.urandom(150_000) for i in range(3)}
    release["ps1/data.bin"] = os.urandom(1_000_000)
    r = teacher.post(f"{a}/release", _form(release))
    assert r.status_code == 201, r.content
    student = client(students[0])
    files = student.get(f"{a}/release/files").json()["files"]
    url = files[0]["url"]
    download_path = url.split("localhost", 1)[1] if "localhost" in url else url

    # Three 50 KB files (a feedback fetch's size): three signed downloads or one archive.
    small = {f"ps2/feedback{i}.html": os.urandom(50_000) for i in range(3)}
    r = teacher.post(f"{api}/courses/prof101/assignments/ps2/release", _form(small))
    assert r.status_code == 201, r.content
    small_files = student.get(f"{api}/courses/prof101/assignments/ps2/release/files").json()
    if storage == "local":
        small_paths = [f["url"].split("localhost", 1)[1] for f in small_files["files"]]
        archive_path = small_files["files"][0]["archive_url"].split("localhost", 1)[1]
        archive_body = json.dumps({"tokens": [f["token"] for f in small_files["files"]]})

    # Every student submits once, so that the lists have rows.
    known = {f["sha256"] for f in files}
    submissions: dict[str, int] = {}
    for name in students:
        files_of = dict(release)
        files_of["ps1/problem0.ipynb"] = os.urandom(150_000)
        r = client(name).post(f"{a}/submissions", _form(files_of, known=known))
        assert r.status_code == 201, r.content
        submissions[name] = r.json()["id"]

    counter = [0]

    def download() -> None:
        response = student.get(download_path)
        assert response.status_code == 200, response.status_code
        for _ in response.streaming_content:
            pass
        response.close()

    def downloads_3x50k() -> None:
        for path in small_paths:
            response = student.get(path)
            assert response.status_code == 200, response.status_code
            for _ in response.streaming_content:
                pass
            response.close()

    def archive_3x50k() -> None:
        response = student.post(archive_path, archive_body, content_type="application/json")
        assert response.status_code == 200, response.status_code
        for _ in response.streaming_content:
            pass
        response.close()

    def json_read() -> None:
        assert student.get(a).status_code == 200

    def listing() -> None:
        assert teacher.get(f"{a}/submissions").status_code == 200

    # The forms (random bytes, tar.gz) are made before the clock runs: building them is the
    # client's work, not the server's.
    ready: dict[str, list[dict[str, Any]]] = {}

    def feedback_form() -> dict[str, Any]:
        return _form({f"problem{i}.html": os.urandom(50_000) for i in range(3)})

    def submit_form() -> dict[str, Any]:
        files_of = dict(release)
        files_of["ps1/problem0.ipynb"] = os.urandom(150_000)
        return _form(files_of, known=known)

    def feedback_upload() -> None:
        counter[0] += 1
        target = submissions[students[counter[0] % len(students)]]
        r = teacher.post(f"{api}/submissions/{target}/feedback", ready["feedback_upload"].pop())
        assert r.status_code == 201, r.content

    def submission_read() -> None:
        # What release_feedback read per student before the listing named the secrets.
        counter[0] += 1
        target = submissions[students[counter[0] % len(students)]]
        assert teacher.get(f"{api}/submissions/{target}").status_code == 200

    batch_forms: list[dict[str, Any]] = []

    def prepare_batch() -> None:
        # Made before the clock starts: the archive is the client's work, not the server's.
        from django.core.files.uploadedfile import SimpleUploadedFile

        counter[0] += 1
        items, distinct = [], {}
        for k in range(BATCH):
            name = students[(counter[0] + k) % len(students)]
            fb = {f"problem{i}.html": os.urandom(50_000) for i in range(3)}
            shas = {p: hashlib.sha256(d).hexdigest() for p, d in fb.items()}
            distinct.update({shas[p]: d for p, d in fb.items()})
            items.append(
                {
                    "id": submissions[name],
                    "files": [
                        {"path": p, "size": len(d), "sha256": shas[p]} for p, d in fb.items()
                    ],
                }
            )
        batch_forms.append(
            {
                "manifest": json.dumps({"submissions": items}),
                "archive": SimpleUploadedFile("a.tar.gz", _tar_gz(distinct), "application/gzip"),
            }
        )

    def feedback_batch() -> None:
        if not batch_forms:
            prepare_batch()
        r = teacher.post(f"{a}/feedback", batch_forms.pop())
        assert r.status_code == 201, r.content

    def feedback_read() -> None:
        # The feedback released to a student, with URLs (what fetch_feedback asked first).
        r = student.get(f"{a}/feedback")
        assert r.status_code == 200 and r.json(), r.content

    def feedback_inline() -> None:
        # A student's whole fetch_feedback: the feedback with its files' bytes after the
        # JSON, as the plugin asks for it.
        r = student.get(f"{a}/feedback?inline=true", HTTP_ACCEPT=INLINE_ACCEPT)
        assert r.status_code == 200 and r["Content-Type"] == INLINE_BYTES_TYPE, r.content

    def feedback_inline_json() -> None:
        # The same with the files' bytes base64 in the JSON (any other client).
        r = student.get(f"{a}/feedback?inline=true")
        assert r.status_code == 200 and "content" in r.json()[0]["files"][0], r.content

    def feedback_inline_cold() -> None:
        # The same with the token not in the cache: in a rush each student's first request
        # to a worker, or the first after EXCHANGE_API_TOKEN_CACHE_SECONDS.
        cache.clear()
        feedback_inline()

    def submit() -> None:
        counter[0] += 1
        form = ready["submit"].pop()
        r = client(students[counter[0] % len(students)]).post(f"{a}/submissions", form)
        assert r.status_code == 201, r.content

    kinds: dict[str, Callable[[], None]] = {
        "download": download,
        "downloads_3x50k": downloads_3x50k,
        "archive_3x50k": archive_3x50k,
        "json_read": json_read,
        "list": listing,
        "submission_read": submission_read,
        "feedback_upload": feedback_upload,
        "feedback_batch": feedback_batch,
        "feedback_read": feedback_read,
        "feedback_inline": feedback_inline,
        "feedback_inline_json": feedback_inline_json,
        "feedback_inline_cold": feedback_inline_cold,
        "submit": submit,
    }
    prepare: dict[str, Callable[[], None]] = {"feedback_batch": prepare_batch}
    forms: dict[str, Callable[[], dict[str, Any]]] = {
        "feedback_upload": feedback_form,
        "submit": submit_form,
    }
    results: dict[str, dict[str, Any]] = {}
    for kind, work in kinds.items():
        if storage != "local" and kind in LOCAL_ONLY:
            continue
        n = repeat if kind not in ("feedback_upload", "submit") else max(20, repeat // 4)
        if kind == "feedback_batch":
            n = max(5, repeat // 40)
        if kind in forms:
            ready[kind] = [forms[kind]() for _ in range(n * 2 + 5)]
        for _ in range(5):  # warm caches and imports
            work()
        cpu: list[float] = []
        queries: list[int] = []
        for _ in range(n):
            if kind in prepare:
                prepare[kind]()
            with CaptureQueriesContext(connection) as captured:
                start = time.process_time()
                work()
                cpu.append(time.process_time() - start)
            queries.append(len(captured))
            if os.environ.get("SHOW_QUERIES") == kind and len(queries) == 1:
                for q in captured.captured_queries:
                    print(q["sql"][: int(os.environ.get("SHOW_WIDTH", "160"))], file=sys.stderr)
        cpu.sort()
        results[kind] = {
            "requests": n,
            "cpu_ms_median": round(statistics.median(cpu) * 1000, 2),
            "cpu_ms_p90": round(cpu[int(len(cpu) * 0.9)] * 1000, 2),
            "queries": max(set(queries), key=queries.count),
        }
        if kind == "feedback_batch":
            results[kind]["students_per_request"] = BATCH
            results[kind]["cpu_ms_per_student"] = round(statistics.median(cpu) * 1000 / BATCH, 2)
        if profile == kind:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(n):
                work()
            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(40)
            if os.environ.get("PROFILE_DUMP"):
                profiler.dump_stats(os.environ["PROFILE_DUMP"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_requests")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--profile", choices=KINDS)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    args = parser.parse_args(argv)
    if args.storage != "local" and args.profile in LOCAL_ONLY:
        parser.error(f"--profile {args.profile} measures local storage's downloads only")
    with setup(args.database, args.storage):
        results = measure(args.repeat, args.profile, storage=args.storage)
    print("| request | n | CPU ms (median) | CPU ms (p90) | queries |")
    print("|---|---|---|---|---|")
    for kind, row in results.items():
        print(
            f"| {kind} | {row['requests']} | {row['cpu_ms_median']} | {row['cpu_ms_p90']} "
            f"| {row['queries']} |"
        )
    batch = results.get("feedback_batch")
    if batch:
        print(f"feedback_batch: {batch['cpu_ms_per_student']} ms of CPU per student")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
