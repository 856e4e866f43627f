"""create_course, add_member, remove_member, and the commands that call them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from courses import services
from courses.exceptions import BadRequest, Conflict, NotFound, PermissionDenied
from courses.models import AuditEvent, Course, Membership
from tests.harness.uploads import make_upload


def test_create_course_with_instructors(db):
    course = services.create_course(code="bio-2.0_x", title="Bio", instructors=["ines", "ian"])
    roles = set(course.memberships.values_list("user__username", "role"))
    assert roles == {("ines", "instructor"), ("ian", "instructor")}
    assert AuditEvent.objects.filter(action="course_created", course_code="bio-2.0_x").exists()


def test_duplicate_and_bad_course_ids_are_refused(course):
    with pytest.raises(Conflict, match="already exists"):
        services.create_course(code="phys101")
    with pytest.raises(BadRequest, match="letters, digits"):
        services.create_course(code="phys 101")


def test_role_change_is_recorded_once(course, people):
    services.add_member(course=course, username="sam", role="grader", actor=people["ines"])
    services.add_member(course=course, username="sam", role="grader", actor=people["ines"])
    assert Membership.objects.get(user=people["sam"]).role == "grader"
    changes = AuditEvent.objects.filter(action="roster_changed", detail__change="role")
    assert changes.count() == 1


def test_only_instructors_manage_the_roster(course, people):
    with pytest.raises(PermissionDenied):
        services.add_member(course=course, username="new", role="student", actor=people["gus"])
    with pytest.raises(NotFound):
        services.add_member(course=course, username="new", role="student", actor=people["olga"])
    with pytest.raises(BadRequest, match="Role 'boss'"):
        services.add_member(course=course, username="new", role="boss", actor=people["ines"])


def test_site_admin_acts_as_instructor(course, people, django_user_model):
    admin = django_user_model.objects.create(username="it", is_staff=True)
    services.add_member(course=course, username="new", role="student", actor=admin)
    assert Membership.objects.filter(user__username="new", course=course).exists()


def test_removed_student_keeps_submissions(released, people, course):
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a": b"1"})
    )
    services.remove_member(course=course, username="sam", actor=people["ines"])
    assert not Membership.objects.filter(user=people["sam"]).exists()
    assert released.submissions.filter(student=people["sam"]).count() == 1
    with pytest.raises(NotFound, match="not a member"):
        services.remove_member(course=course, username="sam", actor=people["ines"])


def test_last_instructor_cannot_remove_themselves(course, people):
    with pytest.raises(Conflict, match="last instructor"):
        services.remove_member(course=course, username="ines", actor=people["ines"])


def test_commands_manage_courses_and_members(db, capsys):
    call_command("create_course", "cs50", "--title", "CS", "--instructor", "ines")
    call_command("add_member", "cs50", "sam", "--role", "student", "--first-name", "Sam")
    out = capsys.readouterr().out
    assert "Created course cs50 (ines)" in out and "sam is student in cs50" in out
    assert Course.objects.get(code="cs50").memberships.count() == 2
    call_command("remove_member", "cs50", "sam")
    assert "Removed sam from cs50" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create_course", "bad id"], "not valid"),
        (["add_member", "nope", "sam", "--role", "student"], "no course 'nope'"),
        (["remove_member", "cs50", "ghost"], "not a member"),
    ],
)
def test_command_mistakes_are_clear_errors(db, args, message):
    services.create_course(code="cs50")
    with pytest.raises(CommandError, match=message):
        call_command(*args)


def test_command_failure_exits_with_status_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EXCHANGE_DATA_DIR"] = str(tmp_path)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], capture_output=True, text=True, env=env
        )

    assert manage("migrate", "-v0").returncode == 0
    result = manage("add_member", "missing", "sam", "--role", "student")
    assert result.returncode == 1
    assert "no course 'missing'" in result.stderr
    assert "Traceback" not in result.stderr
