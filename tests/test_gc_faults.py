"""Garbage collection killed at every step while uploads reuse the bytes it is removing:
every acknowledged file stays downloadable, and ``verify_storage`` finds nothing missing.

The scenario of the field report: a release's files are replaced, ``gc_blobs --grace 0s``
starts removing the old ones, and students submit some of those old files (with their
bytes) meanwhile. The collection runs in a subprocess (tests/gc_stepper.py) that stops
before each of its steps; at step k the test kills it (``kill -9``), cuts its database
connection (PostgreSQL), or takes its file storage away, while a first wave of uploads
waits for the collection lock and a second wave follows the failure. Then: every upload
answered 201 has every file, byte for byte; a later collection and ``verify_storage`` agree.

These tests start their own servers, so they run once (in the SQLite pass of ``make test``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from tests.harness import REPO, live
from tests.harness.live import LiveServer
from tests.harness.uploads import multipart_files

pytestmark = pytest.mark.sqlite_only

COURSE = "gc101"
STUDENTS = ["s1", "s2"]
OLD_FILES = 2


@dataclass
class Site:
    server: LiveServer
    people: dict[str, requests.Session]
    database_url: str | None
    storage: str
    acknowledged: list[tuple[int, dict[str, bytes]]] = field(default_factory=list)
    spare: subprocess.Popen | None = None  # the next collection, Django loaded, not started


def _old_files(label: str) -> dict[str, bytes]:
    return {f"ps/old{n}.txt": f"{label} old file {n}\n".encode() * 50 for n in range(OLD_FILES)}


def _release(site: Site, code: str, files: dict[str, bytes]) -> None:
    response = site.people["ines"].post(
        f"{site.server.api_url}/courses/{COURSE}/assignments/{code}/release",
        params={"force": "true"},
        files=multipart_files(files),
        timeout=120,
    )
    assert response.status_code == 201, response.text


def _submit_until_recorded(site: Site, code: str, student: str, files: dict[str, bytes]) -> None:
    """Submit as the plugin's user would: a refusal that says to try again ("409 retry", or
    a 503 when SQLite's write lock, held by the paused collection, did not come in time,
    which may reach the client as a reset connection) is followed by sending again."""
    url = f"{site.server.api_url}/courses/{COURSE}/assignments/{code}/submissions"
    for _ in range(10):
        try:
            response = site.people[student].post(url, files=multipart_files(files), timeout=120)
        except requests.ConnectionError:
            # Answered (503) before the body was read, so the connection was reset.
            time.sleep(0.2)
            continue
        if response.status_code == 201:
            site.acknowledged.append((response.json()["id"], files))
            return
        assert response.status_code in (409, 503), response.text
        assert response.json()["error"] in ("retry", "unavailable"), response.text
        time.sleep(0.2)
    raise AssertionError("an upload was refused ten times")


def _wave(site: Site, code: str, old: dict[str, bytes], tag: str) -> list[threading.Thread]:
    errors: list[BaseException] = []

    def submit(student: str) -> None:
        files = {**old, "ps/mine.txt": f"{student} {tag} {code}".encode()}
        try:
            _submit_until_recorded(site, code, student, files)
        except BaseException as exc:  # reported by _join
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(name,)) for name in STUDENTS]
    for thread in threads:
        thread.start()
    threads.append(errors)  # type: ignore[arg-type]
    return threads


def _join(threads: list) -> None:
    *workers, errors = threads
    for worker in workers:
        worker.join(timeout=180)
    assert errors == []


def _waiting_on_lock(site: Site) -> int:
    import psycopg

    with psycopg.connect(site.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return row[0]


def _staged(site: Site, old: dict[str, bytes], since_ns: int) -> bool:
    """An upload found the last old file in local storage and made it fresh (``put``)."""
    last = hashlib.sha256(list(old.values())[-1]).hexdigest()
    path = site.server.data_dir / "files" / "blobs" / last[:2] / last
    try:
        return path.stat().st_mtime_ns >= since_ns
    except FileNotFoundError:
        return False


def _until_blocked_or_done(site: Site, threads: list, old: dict[str, bytes], since: int) -> None:
    """Wait until the wave's uploads have staged their bytes and wait for the lock: seen on
    PostgreSQL as waiting advisory locks; on SQLite (local files) as the old files made
    fresh by the uploads, then a moment for the other uploads."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(not t.is_alive() for t in threads[:-1]):
            return
        if site.database_url and _waiting_on_lock(site) >= len(STUDENTS):
            return
        if not site.database_url and _staged(site, old, since):
            time.sleep(1)
            return
        time.sleep(0.05)


def _cut_connection(site: Site) -> None:
    import psycopg

    with psycopg.connect(site.database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'gc-stepper'"
        )


def _check_downloads(site: Site, code: str | None = None) -> None:
    """Every acknowledged upload (of assignment ``code``, or all) downloads byte for byte."""
    for submission_id, files in site.acknowledged:
        if code is not None and not files["ps/mine.txt"].decode().endswith(f" {code}"):
            continue
        detail = site.people["ines"].get(
            f"{site.server.api_url}/submissions/{submission_id}", timeout=60
        )
        assert detail.status_code == 200, detail.text
        listed = {entry["path"]: entry for entry in detail.json()["files"]}
        assert set(listed) == set(files)
        for path, data in files.items():
            url = listed[path]["url"]
            # The service's own signed URLs, or presigned object-store URLs (no token).
            client = site.people["ines"] if url.startswith(site.server.url) else requests
            response = client.get(url, timeout=60)
            assert response.status_code == 200, (submission_id, path, response.status_code)
            assert response.content == data, (submission_id, path)


def _start_stepper(site: Site) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.gc_stepper", "--grace", "0s"],
        cwd=REPO,
        env=site.server.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _collection(site: Site) -> subprocess.Popen:
    """A collection told to start, its Django loaded while the previous one ran; the next
    one starts loading now."""
    process = site.spare or _start_stepper(site)
    site.spare = _start_stepper(site)
    assert process.stdin is not None
    process.stdin.write("run\n")
    process.stdin.flush()
    return process


def _stop_spare(site: Site) -> None:
    """The collection loaded for a next run that does not come: end of input ends it."""
    spare, site.spare = site.spare, None
    if spare is None:
        return
    try:
        spare.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(spare.pid, signal.SIGKILL)
        spare.communicate()


def _run_once(site: Site, fault: str, k: int) -> bool:
    """One collection faulted at step k; False when it finished in fewer steps."""
    code = f"a-{fault}-{k}"
    old = _old_files(code)
    _release(site, code, old)
    _release(site, code, {"ps/new.txt": f"{code} new".encode()})
    for student in STUDENTS:
        # Marks the tokens used now, so the uploads' sign-in writes nothing for a minute
        # and they reach their bytes while the paused collection holds SQLite's write lock.
        assert site.people[student].get(f"{site.server.api_url}/me", timeout=60).ok
    process = _collection(site)
    assert process.stdin is not None and process.stdout is not None
    first_wave: list | None = None
    steps = 0
    faulted = False
    try:
        for line in process.stdout:
            if not line.startswith("STEP "):
                continue
            steps += 1
            if first_wave is None and (steps >= k or " storage " in line):
                # Uploads of the old files, with their bytes, while gc is at this step.
                since = time.time_ns()
                first_wave = _wave(site, code, old, "first")
                _until_blocked_or_done(site, first_wave, old, since)
            if steps == k:
                faulted = True
                if fault == "kill":
                    os.kill(process.pid, signal.SIGKILL)
                    break
                if fault == "cut":
                    _cut_connection(site)
                    process.stdin.write("go\n")
                else:
                    process.stdin.write("down\n")
            else:
                process.stdin.write("go\n")
            process.stdin.flush()
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        process.wait(timeout=120)
        process.stdout.close()
        process.stderr.close()
    if first_wave is not None:
        _join(first_wave)
    # Checked before the second wave, whose uploads of the same bytes would heal a loss.
    _check_downloads(site, code)
    _join(_wave(site, code, old, "second"))
    _check_downloads(site, code)
    return faulted


def _after_all(site: Site) -> None:
    """A clean collection afterwards, then the operator's checks: nothing lost."""
    site.server.manage("gc_blobs", "--grace", "0s")
    _check_downloads(site)
    verify = site.server.manage("verify_storage", "--quick", check=False)
    assert "MISSING" not in verify.stdout, verify.stdout
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _site(server: LiveServer, database_url: str | None, storage: str) -> Site:
    tokens = server.tokens({"ada": True, "ines": False, **dict.fromkeys(STUDENTS, False)})
    live.create_course(
        server,
        code=COURSE,
        admin_token=tokens["ada"],
        instructor="ines",
        instructor_token=tokens["ines"],
        students=STUDENTS,
    )
    people = {name: live.session(token) for name, token in tokens.items()}
    for http in people.values():
        # A new connection for every request: a paused collection can keep a person idle for
        # about the server's keep-alive (75 s) on a slow machine, and a kept-alive connection
        # the server closes just as the next request goes out fails that request in the
        # client ("Remote end closed connection without response"). Keep-alive is the
        # subject of tests/plugin/test_keepalive.py, not of this test.
        http.headers["Connection"] = "close"
    return Site(server=server, people=people, database_url=database_url, storage=storage)


def _every_step(site: Site, fault: str) -> None:
    # Each collection also finds what the previous, faulted one left (orphans, quarantine).
    k = 1
    try:
        while _run_once(site, fault, k):
            k += 1
    finally:
        _stop_spare(site)
    _after_all(site)
    assert k > 4, "the collection took fewer steps than expected: nothing was faulted"


def test_gc_killed_at_every_step_loses_nothing_sqlite_local(tmp_path):
    with LiveServer(workers=1, threads=4) as server:
        site = _site(server, None, "local")
        _every_step(site, "kill")
        _every_step(site, "down")


def test_gc_killed_cut_off_or_without_storage_at_every_step_loses_nothing_postgres_s3(
    postgres_server, seaweedfs
):
    from tests.harness.seaweedfs import unique_prefix

    # The session's PostgreSQL and SeaweedFS, a database and a bucket of this test's own (the
    # faults cut this test's collection by its application name, not the whole server).
    database = postgres_server.create_database("gc")
    bucket = seaweedfs.create_bucket(unique_prefix())
    with LiveServer(
        database_url=database, env=seaweedfs.env(bucket), workers=1, threads=4
    ) as server:
        site = _site(server, database, "s3")
        for fault in ("kill", "cut"):
            _every_step(site, fault)
