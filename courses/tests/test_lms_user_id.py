"""The LMS user id on the roster: read from nbgrader's student CSV and Canvas's Gradebook
export, kept per course, shown to instructors, written back out, and used by the grade export."""

from __future__ import annotations

import csv
import io

import pytest

from courses import gradeexport, roster, roster_export
from courses.models import Membership

CANVAS = (
    "Student,ID,SIS User ID,SIS Login ID,Section\n"
    "    Points Possible,,,,\n"
    '"Lovelace, Ada",4711,S1,ada,Sec 1\n'
)


def test_nbgrader_csv_lms_user_id_is_imported_and_exported(course):
    rows = roster.parse_roster("id,first_name,lms_user_id\numa,Uma,canvas-9\n")
    roster.import_roster(course=course, rows=rows)
    assert Membership.objects.get(user__username="uma").lms_user_id == "canvas-9"
    exported = roster_export.export_roster(course=course)
    assert "uma,Uma,,,canvas-9" in exported
    # A later import that changes only the LMS id is an update, not "unchanged".
    again = roster.parse_roster("id,lms_user_id\numa,canvas-10\n")
    assert roster.import_roster(course=course, rows=again).updated == ["uma"]


def test_canvas_gradebook_id_is_the_lms_user_id_and_goes_back_out(course):
    roster.import_roster(course=course, rows=roster.parse_roster(CANVAS))
    assert Membership.objects.get(user__username="ada").lms_user_id == "4711"
    lines = list(
        csv.reader(io.StringIO(roster_export.export_roster(course=course, format="canvas")))
    )
    assert lines[1][:4] == ["Lovelace, Ada", "4711", "", "ada"]
    grades = list(csv.reader(io.StringIO(gradeexport.export_grades(course=course))))
    assert grades[2][:4] == ["Lovelace, Ada", "4711", "", "ada"]


def test_sis_users_csv_has_no_canvas_id(course):
    rows = roster.parse_roster("user_id,login_id,first_name\nS1,bea,Bea\n")
    assert rows[0].lms_user_id == ""


def test_too_long_lms_user_id_is_a_bad_row(course):
    with pytest.raises(roster.RosterError, match="LMS user id is longer than 128"):
        roster.import_roster(course=course, rows=[{"username": "x", "lms_user_id": "9" * 129}])
    assert not Membership.objects.filter(user__username="x").exists()
