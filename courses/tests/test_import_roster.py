"""Roster import and export: nbgrader and Canvas files, bad rows, --sync, --dry-run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from courses import roster, roster_export, services
from courses.exceptions import BadRequest, NotFound, PermissionDenied
from courses.models import AuditEvent, Membership, Submission
from tests.harness.commands import run_command
from tests.harness.uploads import make_upload

DATA = Path(__file__).parent / "data"
NBGRADER_CSV = DATA / "nbgrader_students.csv"
CANVAS_CSV = DATA / "canvas_gradebook.csv"
NEW_STUDENTS = ["cabara", "mgarcialopez", "sobrien", "tnguyen2"]
User = get_user_model()


def members(course, role="student"):
    return sorted(
        Membership.objects.filter(course=course, role=role).values_list("user__username", flat=True)
    )


# --- parsing ------------------------------------------------------------------------------


def test_nbgrader_csv_is_detected_and_read_with_names_and_emails():
    rows = roster.parse_roster(NBGRADER_CSV.read_bytes())
    assert [r.username for r in rows] == ["cabara", "tnguyen2", "sobrien", "mgarcialopez"]
    assert rows[3].first_name == "María José" and rows[3].last_name == "García López"
    assert rows[0].email == "cabara@example.edu" and rows[0].line == 2


def test_canvas_gradebook_is_detected_and_skips_points_possible_and_test_student():
    rows = roster.parse_roster(CANVAS_CSV.read_bytes())
    assert [r.username for r in rows] == ["cabara", "tnguyen2", "sobrien", "mgarcialopez"]
    assert (rows[1].first_name, rows[1].last_name) == ("Thi Mai", "Nguyen")
    assert rows[0].line == 3  # line 1 header, line 2 "Points Possible"


def test_canvas_sis_users_csv_takes_login_id():
    text = "user_id,login_id,first_name,last_name,email,status\nU1,jdoe,Jane,Doe,j@x.edu,active\n"
    (row,) = roster.parse_roster(text)
    assert (row.username, row.first_name, row.email) == ("jdoe", "Jane", "j@x.edu")


def test_canvas_login_column_is_configurable(settings):
    settings.EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN = "SIS User ID"
    rows = roster.parse_roster(CANVAS_CSV.read_bytes())
    assert rows[0].username == "U0001234"
    rows = roster.parse_roster(CANVAS_CSV.read_bytes(), login_column="ID")
    assert rows[0].username == "48211"


def test_canvas_export_without_the_login_column_is_refused_with_advice():
    with pytest.raises(BadRequest, match="no 'SIS Login ID' column"):
        roster.parse_roster('Student,ID,Section\n"Doe, J",1,A\n', format="canvas")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,mail\nx,y\n", "Cannot tell the roster format"),
        (b"id\n\xff\xfe\n", "not UTF-8"),
    ],
)
def test_unreadable_files_are_refused_with_a_sentence(text, message):
    with pytest.raises(BadRequest, match=message):
        roster.parse_roster(text)


def test_nbgrader_format_needs_an_id_column():
    with pytest.raises(BadRequest, match="needs an 'id' column"):
        roster.parse_roster("Student\nx\n", format="nbgrader")


def test_blank_lines_are_skipped_and_line_numbers_kept():
    rows = roster.parse_roster(io.StringIO("id\nann\n\n,\nbob\n"))
    assert [(r.username, r.line) for r in rows] == [("ann", 2), ("bob", 5)]


# --- import -------------------------------------------------------------------------------


def test_import_adds_new_students_with_names(course, people):
    rows = roster.parse_roster(NBGRADER_CSV.read_bytes())
    summary = roster.import_roster(course=course, rows=rows, role="student")
    assert sorted(summary.added) == NEW_STUDENTS
    assert summary.updated == summary.removed == summary.unchanged == []
    assert members(course) == sorted([*NEW_STUDENTS, "sam", "tia"])
    user = User.objects.get(username="mgarcialopez")
    assert (user.first_name, user.last_name) == ("María José", "García López")
    assert AuditEvent.objects.filter(action="roster_changed", student_name="cabara").exists()


def test_import_again_is_unchanged_and_a_changed_name_is_updated(course, people):
    rows = roster.parse_roster(NBGRADER_CSV.read_bytes())
    roster.import_roster(course=course, rows=rows)
    again = roster.import_roster(course=course, rows=rows)
    assert sorted(again.unchanged) == NEW_STUDENTS and again.added == []
    renamed = roster.parse_roster("id,first_name,last_name\ncabara,Chidiebere,Abara\n")
    summary = roster.import_roster(course=course, rows=renamed)
    assert summary.updated == ["cabara"]
    # The course's name changes; the account keeps the name it was created with.
    assert Membership.objects.get(user__username="cabara").first_name == "Chidiebere"
    assert User.objects.get(username="cabara").first_name == "Chidi"


def test_import_as_grader_changes_an_existing_students_role(course, people):
    summary = roster.import_roster(course=course, rows=[{"username": "sam"}], role="grader")
    assert summary.updated == ["sam"]
    assert members(course, "grader") == ["gus", "sam"]


def test_bad_rows_are_all_reported_with_line_numbers_and_nothing_changes(course, people):
    text = (
        "id,first_name,last_name,email\n"
        "newbie,New,Bie,newbie@example.edu\n"
        ",No,Name,\n"
        "two words,A,B,\n"
        "newbie,Again,Dup,\n"
        "mail,M,L,not-an-email\n"
        f"{'x' * 151},Long,Name,\n"
        f"ok,{'f' * 151},L,\n"
    )
    with pytest.raises(roster.RosterError) as caught:
        roster.import_roster(course=course, rows=roster.parse_roster(text))
    lines = [line for line, _ in caught.value.problems]
    assert lines == [3, 4, 5, 6, 7, 8]
    assert "line 5: 'newbie' is already on line 2" in caught.value.detail
    assert not User.objects.filter(username="newbie").exists()
    assert members(course) == ["sam", "tia"]


def test_a_failure_halfway_changes_nothing(course, people, monkeypatch):
    real = services.add_member
    calls = []

    def fail_on_second(**kwargs):
        calls.append(kwargs["username"])
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "add_member", fail_on_second)
    with pytest.raises(RuntimeError):
        roster.import_roster(course=course, rows=roster.parse_roster(NBGRADER_CSV.read_bytes()))
    assert members(course) == ["sam", "tia"]
    assert not User.objects.filter(username="cabara").exists()


def test_sync_removes_missing_students_but_keeps_their_submissions(course, people, released):
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
    )
    rows = roster.parse_roster("id\ntia\nnewbie\n")
    summary = roster.import_roster(course=course, rows=rows, sync=True)
    assert summary.added == ["newbie"] and summary.unchanged == ["tia"]
    assert summary.removed == ["sam"] and summary.removed_with_submissions == ["sam"]
    assert members(course) == ["newbie", "tia"]
    # Staff are not touched by a student roster, and the submission stays.
    assert members(course, "instructor") == ["ines"] and members(course, "grader") == ["gus"]
    assert Submission.objects.filter(pk=submission.pk).exists()


def test_sync_with_an_empty_file_is_refused(course, people):
    with pytest.raises(BadRequest, match="remove every student"):
        roster.import_roster(course=course, rows=roster.parse_roster("id\n"), sync=True)
    assert members(course) == ["sam", "tia"]


def test_dry_run_reports_and_changes_nothing(course, people):
    rows = roster.parse_roster(CANVAS_CSV.read_bytes())
    summary = roster.import_roster(course=course, rows=rows, sync=True, dry_run=True)
    assert summary.dry_run and sorted(summary.added) == NEW_STUDENTS
    assert summary.removed == ["sam", "tia"]
    assert members(course) == ["sam", "tia"]
    assert not User.objects.filter(username="cabara").exists()


def test_only_instructors_may_import(course, people):
    with pytest.raises(PermissionDenied):
        roster.import_roster(course=course, rows=[{"id": "x"}], actor=people["gus"])
    with pytest.raises(NotFound):
        roster.import_roster(course=course, rows=[{"id": "x"}], actor=people["olga"])
    summary = roster.import_roster(course=course, rows=[{"id": "x"}], actor=people["ines"])
    assert summary.added == ["x"]


def test_unknown_role_is_refused(course):
    with pytest.raises(BadRequest, match="Role 'ta'"):
        roster.import_roster(course=course, rows=[], role="ta")


# --- export -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["nbgrader", "canvas"])
def test_export_then_import_into_another_course_gives_the_same_roster(course, people, fmt):
    roster.import_roster(course=course, rows=roster.parse_roster(NBGRADER_CSV.read_bytes()))
    text = roster_export.export_roster(course=course, format=fmt)
    other = services.create_course(code="phys102")
    rows = roster.parse_roster(text)
    assert roster.detect_format(text.splitlines()[0].split(",")) == fmt
    roster.import_roster(course=other, rows=rows)
    assert members(other) == members(course)
    mine = {r.username: r for r in roster_export.roster_rows(course=course, role="student")}
    theirs = {r.username: r for r in rows}
    for name, row in mine.items():
        assert (theirs[name].first_name, theirs[name].last_name) == (row.first_name, row.last_name)


def test_export_refuses_unknown_format_and_role(course):
    with pytest.raises(BadRequest):
        roster_export.export_roster(course=course, format="xlsx")
    with pytest.raises(BadRequest):
        roster_export.export_roster(course=course, role="ta")


# --- commands -----------------------------------------------------------------------------


def test_import_roster_command_prints_a_summary(course, people):
    out, _ = run_command("import_roster", "phys101", str(CANVAS_CSV), "--sync")
    assert "Imported phys101 students: 4 added, 0 updated, 2 removed, 0 unchanged." in out
    assert "removed: sam, tia" in out
    assert members(course) == NEW_STUDENTS


def test_import_roster_command_dry_run(course, people):
    out, _ = run_command(
        "import_roster", "phys101", str(NBGRADER_CSV), "--dry-run", "--role", "grader"
    )
    assert out.startswith("Would change (dry run, nothing changed) phys101 graders: 4 added")
    assert members(course, "grader") == ["gus"]


def test_import_roster_command_reports_bad_rows_and_fails(course, people, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,email\nok,ok@example.edu\n,x@example.edu\nz,nope\n")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="2 bad row"):
        call_command("import_roster", "phys101", str(bad), stdout=out, stderr=err)
    assert f"{bad}:3: the user name is empty" in err.getvalue()
    assert f"{bad}:4: 'nope' is not an email address" in err.getvalue()
    assert members(course) == ["sam", "tia"]


def test_import_roster_command_mistakes(course, tmp_path):
    with pytest.raises(CommandError, match="There is no course 'nope'"):
        run_command("import_roster", "nope", str(NBGRADER_CSV))
    with pytest.raises(CommandError, match="Cannot read"):
        run_command("import_roster", "phys101", str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="Cannot tell the roster format"):
        (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
        run_command("import_roster", "phys101", str(tmp_path / "odd.csv"))


def test_import_roster_command_reads_stdin(course, monkeypatch):
    class FakeStdin:
        buffer = io.BytesIO(b"id\nfromstdin\n")

    monkeypatch.setattr("sys.stdin", FakeStdin)
    out, _ = run_command("import_roster", "phys101", "-")
    assert "1 added" in out


def test_export_roster_command_to_stdout_and_file(course, people, tmp_path):
    out, _ = run_command("export_roster", "phys101")
    assert out == "id,first_name,last_name,email,lms_user_id\nsam,,,,\ntia,,,,\n"
    target = tmp_path / "all.csv"
    _, err = run_command(
        "export_roster", "phys101", "--role", "all", "--format", "canvas", "-o", target
    )
    assert "Wrote 4 row(s)" in err
    assert target.read_text().startswith("Student,ID,SIS User ID,SIS Login ID,Section")


def test_export_roster_command_mistakes(course, tmp_path):
    with pytest.raises(CommandError, match="There is no course"):
        run_command("export_roster", "nope")
    with pytest.raises(CommandError, match="Cannot write"):
        run_command("export_roster", "phys101", "-o", str(tmp_path / "no" / "dir.csv"))


def test_summary_as_dict_for_the_api(course):
    summary = roster.import_roster(course=course, rows=[{"id": "x"}], dry_run=True)
    assert summary.as_dict() == {
        "added": ["x"],
        "updated": [],
        "removed": [],
        "unchanged": [],
        "removed_with_submissions": [],
        "dry_run": True,
    }


def test_unknown_format_and_custom_login_column_on_export(course, settings):
    with pytest.raises(BadRequest, match="Roster format 'xlsx'"):
        roster.parse_roster("id\nx\n", format="xlsx")
    settings.EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN = "Hub user"
    roster.import_roster(course=course, rows=[{"id": "hubby"}])
    text = roster_export.export_roster(course=course, format="canvas")
    assert [r.username for r in roster.parse_roster(text)] == ["hubby"]


def test_import_roster_command_names_removed_students_with_submissions(
    course, people, released, tmp_path
):
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
    )
    (tmp_path / "r.csv").write_text("id\ntia\n")
    out, _ = run_command("import_roster", "phys101", str(tmp_path / "r.csv"), "--sync")
    assert "removed members whose submissions are kept: sam" in out


def test_import_roster_command_shortens_long_lists(course, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("id\n" + "".join(f"s{i:03d}\n" for i in range(40)))
    out, _ = run_command("import_roster", "phys101", str(big))
    assert "40 added" in out and "s029 and 10 more" in out and "s030" not in out
