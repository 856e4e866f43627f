"""Moving in from ngshare: a real ngshare 0.6.0 (from PyPI, in its own virtualenv with the
SQLAlchemy<2 it needs; ``make ngshare``) runs on 127.0.0.1 in its stand-alone mode, is filled
through its own HTTP API (two instructors, five students, two assignments, resubmissions,
feedback), ``manage.py import_exchange ngshare`` imports it, and the real nbgrader CLI with
this project's plugin lists, collects and fetches feedback with the same timestamps and
bytes."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from courses.timestamps import format_timestamp, parse_timestamp
from tests.harness import REPO
from tests.harness.jsonserver import JsonServer, Request
from tests.harness.ports import free_port
from tests.harness.process import ManagedProcess

from .support import Person

NGSHARE = REPO / "build" / "ngshare-venv"
COURSE = "ng101"
INSTRUCTORS = ["ng-ines", "ng-ivo"]
STUDENTS = [f"ng-s{i}" for i in range(1, 6)]
ASSIGNMENTS = ["hw1", "hw2"]


def notebook(text: str) -> bytes:
    nb = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": text}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb).encode()


def files_arg(files: dict[str, bytes]) -> str:
    return json.dumps(
        [{"path": p, "content": base64.encodebytes(b).decode()} for p, b in files.items()]
    )


def hub_api(request: Request) -> tuple[int, object]:
    """JupyterHub's /user as ngshare asks it: here every token is its user's name."""
    if request.route == "/hub/api/user" and request.token:
        return 200, {"name": request.token}
    return 403, {"message": "no such token"}


class Ngshare(ManagedProcess):
    """The running ngshare, and its API as a user.

    ngshare 0.6.0 authenticates each request by asking JupyterHub's API who the token
    belongs to, even in its stand-alone ``--vngshare`` mode (which is used here only to bind
    127.0.0.1), so a stand-in hub API answers that one question.
    """

    kind = "ngshare"
    startup_timeout = 120.0

    def __init__(self, base: Path) -> None:
        if not (NGSHARE / ".installed").exists():
            subprocess.run(["make", "ngshare"], cwd=REPO, check=True)
        self.base = base
        self.db = base / "ngshare.db"
        self.storage = base / "files"
        self.log_path = base / "ngshare.log"
        self.port = free_port()
        self.hub = JsonServer(hub_api)

    def command(self) -> list[str]:
        return [
            str(NGSHARE / "bin" / "python"),
            "-m",
            "ngshare",
            "--vngshare",
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--database=sqlite:///{self.db}",
            f"--storage={self.storage}",
            "--admins=ng-admin",
        ]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "JUPYTERHUB_API_URL": self.hub.api_url,
            "JUPYTERHUB_API_TOKEN": "unused",
            "JUPYTERHUB_CLIENT_ID": "unused",
            "JUPYTERHUB_SERVICE_PREFIX": "/api/",
        }

    def workdir(self) -> Path:
        return self.base

    def is_ready(self) -> bool:
        return requests.get(f"{self.url}/healthz", timeout=2).ok

    def cleanup(self) -> None:
        self.hub.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def call(self, method: str, path: str, user: str, **data: str) -> dict:
        response = requests.request(
            method,
            f"{self.url}/{path}",
            headers={"Authorization": f"token {user}"},
            data=data,
            timeout=60,
        )
        assert response.text.startswith("{"), response.text
        body = response.json()
        assert body["success"], body
        return body


@pytest.fixture(scope="module")
def ngshare(tmp_path_factory):
    """ngshare filled through its API; what each submission and feedback held."""
    server = Ngshare(tmp_path_factory.mktemp("ngshare")).start()
    try:
        server.call("POST", f"course/{COURSE}", "ng-admin", instructors=json.dumps(INSTRUCTORS[:1]))
        server.call(
            "POST",
            f"instructor/{COURSE}/{INSTRUCTORS[1]}",
            "ng-admin",
            first_name="Ivo",
            last_name="I",
            email="ivo@example.org",
        )
        for i, student in enumerate(STUDENTS):
            server.call(
                "POST",
                f"student/{COURSE}/{student}",
                INSTRUCTORS[0],
                first_name=f"S{i}",
                last_name="Student",
                email=f"{student}@example.org",
            )
        for assignment in ASSIGNMENTS:
            release = {f"{assignment}.ipynb": notebook(assignment), "data/x.csv": b"x\n1\n"}
            server.call(
                "POST",
                f"assignment/{COURSE}/{assignment}",
                INSTRUCTORS[1],
                files=files_arg(release),
            )
        submitted: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        for assignment in ASSIGNMENTS:
            for n, student in enumerate(STUDENTS):
                # Everyone submits hw1 twice; hw2 only the first three, once.
                times = 2 if assignment == "hw1" else (1 if n < 3 else 0)
                for attempt in range(times):
                    body = notebook(f"{student} {assignment} attempt {attempt}")
                    answer = server.call(
                        "POST",
                        f"submission/{COURSE}/{assignment}",
                        student,
                        files=files_arg({f"{assignment}.ipynb": body}),
                    )
                    submitted.setdefault((assignment, student), []).append(
                        (answer["timestamp"], body)
                    )
        feedback: dict[tuple[str, str], tuple[str, bytes]] = {}
        for (assignment, student), subs in submitted.items():
            stamp = subs[-1][0]
            html = f"<html>{student} {assignment} at {stamp}</html>".encode()
            server.call(
                "POST",
                f"feedback/{COURSE}/{assignment}/{student}",
                INSTRUCTORS[0],
                timestamp=stamp,
                files=files_arg({f"{assignment}.html": html}),
            )
            feedback[(assignment, student)] = (stamp, html)
        yield {"server": server, "submitted": submitted, "feedback": feedback}
    finally:
        server.stop()


def import_args(ng) -> list[str]:
    server = ng["server"]
    return [
        "import_exchange",
        "ngshare",
        f"--database=sqlite:///{server.db}",
        f"--storage={server.storage}",
    ]


@pytest.fixture(scope="module")
def imported(service, ngshare, tmp_path_factory):
    first = service.server.manage(*import_args(ngshare)).stdout
    second = service.server.manage(*import_args(ngshare), "--course", COURSE).stdout
    base = tmp_path_factory.mktemp("ngnew")
    tokens = service.tokens(*INSTRUCTORS, *STUDENTS)
    people = {
        name: Person(name=name, root=base, url=service.url, token=tokens[name], course_id=COURSE)
        for name in [*INSTRUCTORS, *STUDENTS]
    }
    return {"first": first, "second": second, "people": people}


def utc(stamp: str) -> str:
    """ngshare's timestamps carry no zone (they are UTC); the plugin's say UTC."""
    return format_timestamp(parse_timestamp(stamp))


def test_import_reports_the_course(imported):
    out = imported["first"]
    assert f"Imported {COURSE} (new course):" in out
    assert "2 instructors added" in out and "5 students added" in out
    assert "2 releases added" in out and "13 submissions added" in out
    assert "8 feedback added" in out
    assert "skipped" not in out


def test_second_import_adds_nothing(imported):
    assert "nothing new" in imported["second"]
    assert "13 submissions unchanged" in imported["second"]


def test_plugin_lists_every_submission_with_ngshares_timestamps(ngshare, imported):
    output = imported["people"][INSTRUCTORS[1]].nbgrader("list", "--inbound").output
    listed = sorted(re.findall(rf"{COURSE} (\S+) (hw\d) (\S+ \S+ UTC)", output))
    expected = sorted(
        (student, assignment, utc(stamp))
        for (assignment, student), subs in ngshare["submitted"].items()
        for stamp, _ in subs
    )
    assert listed == expected


def test_plugin_collects_the_latest_bytes(ngshare, imported):
    ines = imported["people"][INSTRUCTORS[0]]
    ines.nbgrader("collect", "hw1")
    for student in STUDENTS:
        stamp, body = ngshare["submitted"][("hw1", student)][-1]
        collected = ines.work / "submitted" / student / "hw1"
        assert (collected / "hw1.ipynb").read_bytes() == body
        assert parse_timestamp((collected / "timestamp.txt").read_text()) == parse_timestamp(stamp)


def test_students_fetch_the_same_feedback(ngshare, imported):
    for student in STUDENTS[:2]:
        st = imported["people"][student]
        st.nbgrader("fetch_feedback", "hw1")
        stamp, html = ngshare["feedback"][("hw1", student)]
        got = [
            (p.parent.name, p.read_bytes())
            for p in (st.work / "hw1" / "feedback").glob("*/hw1.html")
        ]
        assert got == [(utc(stamp), html)]


@pytest.mark.django_db
def test_import_in_process_is_idempotent_and_dry_run_changes_nothing(ngshare):
    from courses.models import Membership, Submission

    out = io.StringIO()
    call_command(*import_args(ngshare), "--dry-run", stdout=out)
    assert "13 submissions added" in out.getvalue() and not Submission.objects.exists()
    call_command(*import_args(ngshare), stdout=out)
    call_command(*import_args(ngshare), stdout=out)
    assert out.getvalue().count("nothing new") == 1
    assert Submission.objects.count() == 13
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {
        **dict.fromkeys(INSTRUCTORS, "instructor"),
        **dict.fromkeys(STUDENTS, "student"),
    }
    people = {
        m.user.username: (m.first_name, m.last_name, m.email)
        for m in Membership.objects.select_related("user")
    }
    assert people[INSTRUCTORS[1]] == ("Ivo", "I", "ivo@example.org")
    assert people[STUDENTS[1]] == ("S1", "Student", f"{STUDENTS[1]}@example.org")


@pytest.mark.django_db
def test_a_missing_stored_file_is_skipped_with_its_reason(ngshare, tmp_path):
    import shutil
    import sqlite3

    db = tmp_path / "copy.db"
    storage = tmp_path / "files"
    shutil.copy(ngshare["server"].db, db)
    shutil.copytree(ngshare["server"].storage, storage)
    with sqlite3.connect(db) as conn:
        (actual,) = conn.execute(
            "SELECT f.actual_name FROM files f JOIN submission_files_assoc_table a "
            "ON a.right_id = f._id ORDER BY f._id LIMIT 1"
        ).fetchone()
    (storage / actual).unlink()
    out = io.StringIO()
    call_command(
        "import_exchange",
        "ngshare",
        f"--database=sqlite:///{db}",
        f"--storage={storage}",
        stdout=out,
    )
    assert "skipped 1:" in out.getvalue()
    assert f"cannot read {storage / actual}: No such file or directory" in out.getvalue()
    assert "12 submissions added" in out.getvalue()


@pytest.mark.django_db
def test_bad_sources_are_refused_with_a_sentence(ngshare, tmp_path):
    from django.core.management import CommandError

    server = ngshare["server"]
    cases = [
        (["--database=mysql://x/y", f"--storage={server.storage}"], "neither sqlite"),
        ([f"--database=sqlite:///{tmp_path}/none.db", f"--storage={server.storage}"], "no SQLite"),
        ([f"--database=sqlite:///{server.db}", f"--storage={tmp_path}/none"], "not a directory"),
        (
            [f"--database=sqlite:///{server.db}", f"--storage={server.storage}", "--course=x"],
            "No course x",
        ),
    ]
    port = free_port()  # nothing listens there
    cases.append(
        (
            [f"--database=postgresql://u@127.0.0.1:{port}/ngshare", f"--storage={server.storage}"],
            "Cannot connect to ngshare's database",
        )
    )
    (tmp_path / "empty.db").write_bytes(b"")
    cases.append(
        (
            [f"--database=sqlite:///{tmp_path}/empty.db", f"--storage={server.storage}"],
            "does not hold",
        )
    )
    for args, message in cases:
        with pytest.raises(CommandError, match=message):
            call_command("import_exchange", "ngshare", *args, stdout=io.StringIO())
