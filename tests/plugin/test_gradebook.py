"""The plugin's gradebook helpers against a real nbgrader gradebook (SQLite), no server."""

from __future__ import annotations

import os

import pytest
from nbgrader.api import Gradebook

from nbgrader_exchange.gradebook import assignment_duedate, notebook_scores, sync_students
from tests.harness import BIN


@pytest.fixture(autouse=True)
def _alembic_on_path(monkeypatch):
    # nbgrader's gradebook runs the alembic command it installs next to Python.
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def test_sync_writes_students_and_keeps_what_the_roster_leaves_empty(tmp_path):
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db, "c1") as gb:
        gb.add_student("amy", first_name="Amy", email="old@example.org")
    members = [
        {"username": "amy", "role": "student", "first_name": "", "last_name": "Lo", "email": ""},
        {"username": "bob", "role": "student", "first_name": "Bob", "lms_user_id": "77"},
        {"username": "ivy", "role": "instructor", "first_name": "Ivy"},
    ]
    assert sync_students(db, "c1", members, only={"amy", "ivy"}) == ["amy"]
    assert sync_students(db, "c1", members) == ["amy", "bob"]
    with Gradebook(db, "c1") as gb:
        amy, bob = gb.find_student("amy"), gb.find_student("bob")
        assert (amy.first_name, amy.last_name, amy.email) == ("Amy", "Lo", "old@example.org")
        assert (bob.first_name, bob.lms_user_id) == ("Bob", "77")
        assert sorted(s.id for s in gb.students) == ["amy", "bob"]


def test_no_gradebook_means_no_due_date_and_no_scores(tmp_path):
    db = f"sqlite:///{tmp_path / 'missing.db'}"
    assert assignment_duedate(db, "c1", "ps1") is None
    assert not (tmp_path / "missing.db").exists()
    with Gradebook(f"sqlite:///{tmp_path / 'g.db'}", "c1") as gb:
        gb.add_assignment("ps1")
        assert notebook_scores(gb, "ps1", "amy", ["ps1"]) is None
    assert assignment_duedate(f"sqlite:///{tmp_path / 'g.db'}", "c1", "ps9") is None


def test_a_large_roster_is_written_in_one_go_and_updated_in_place(tmp_path):
    """More students than one lookup asks for at once (500): the second sync finds every
    one of them, whichever lookup they fall in, and updates them instead of adding them
    again (which the gradebook would refuse)."""
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    names = [f"s{n:04d}" for n in range(1200)]
    first = [{"username": name, "first_name": "Old"} for name in names]
    assert sync_students(db, "c1", first) == names
    second = [{"username": name, "first_name": "New", "last_name": name} for name in names]
    assert sync_students(db, "c1", second + second[:1]) == names + names[:1]
    with Gradebook(db, "c1") as gb:
        students = gb.students
        assert len(students) == 1200
        assert {(s.first_name, s.last_name == s.id) for s in students} == {("New", True)}
