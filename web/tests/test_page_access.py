"""Who may open which page: anonymous -> sign in, a non-member -> 404 (as for a course that
does not exist), a student -> their own work only, instructors and graders -> the course."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

ANYONE_SIGNED_IN = 200
NOT_FOUND = 404
FORBIDDEN = 403


def pages(work) -> dict[str, str]:
    sam, tia = work["sam_late"].pk, work["tia"].pk
    return {
        "home": "/",
        "course": "/courses/phys101/",
        "assignment": "/courses/phys101/assignments/ps1/",
        "latest zip": "/courses/phys101/assignments/ps1/latest.zip",
        "audit": "/courses/phys101/audit/",
        "sam's submission": f"/submissions/{sam}/",
        "sam's zip": f"/submissions/{sam}/download",
        "sam's notebook": f"/submissions/{sam}/submission/view/ps1.ipynb",
        "sam's file": f"/submissions/{sam}/submission/files/ps1.ipynb",
        "sam's feedback": f"/submissions/{sam}/feedback/view/ps1.html",
        "tia's submission": f"/submissions/{tia}/",
        "tia's notebook": f"/submissions/{tia}/submission/view/ps1.ipynb",
    }


# person -> page -> status
EXPECTED = {
    "ines": {
        "home": 200,
        "course": 200,
        "assignment": 200,
        "latest zip": 200,
        "audit": 200,
        "sam's submission": 200,
        "sam's zip": 200,
        "sam's notebook": 200,
        "sam's file": 200,
        "sam's feedback": 200,
        "tia's submission": 200,
        "tia's notebook": 200,
    },
    "gus": {
        "home": 200,
        "course": 200,
        "assignment": 200,
        "latest zip": 200,
        "audit": FORBIDDEN,
        "sam's submission": 200,
        "sam's zip": 200,
        "sam's notebook": 200,
        "sam's file": 200,
        "sam's feedback": 200,
        "tia's submission": 200,
        "tia's notebook": 200,
    },
    "sam": {
        "home": 200,
        "course": 200,
        "assignment": 200,
        "latest zip": FORBIDDEN,
        "audit": FORBIDDEN,
        "sam's submission": 200,
        "sam's zip": 200,
        "sam's notebook": 200,
        "sam's file": 200,
        "sam's feedback": 200,
        "tia's submission": NOT_FOUND,
        "tia's notebook": NOT_FOUND,
    },
    "olga": {
        "home": 200,
        "course": NOT_FOUND,
        "assignment": NOT_FOUND,
        "latest zip": NOT_FOUND,
        "audit": NOT_FOUND,
        "sam's submission": NOT_FOUND,
        "sam's zip": NOT_FOUND,
        "sam's notebook": NOT_FOUND,
        "sam's file": NOT_FOUND,
        "sam's feedback": NOT_FOUND,
        "tia's submission": NOT_FOUND,
        "tia's notebook": NOT_FOUND,
    },
}


@pytest.mark.parametrize("person", ["ines", "gus", "sam", "olga"])
def test_each_page_answers_each_person_as_the_roles_say(work, client_as, person):
    client = client_as(person)
    got = {name: client.get(url).status_code for name, url in pages(work).items()}
    assert got == EXPECTED[person]


def test_site_admin_sees_every_course_page(work, client_as):
    client = client_as("ada")
    got = {name: client.get(url).status_code for name, url in pages(work).items()}
    assert set(got.values()) == {200}


def test_anonymous_is_sent_to_sign_in_from_every_page(work, client_as):
    client = client_as(None)
    for name, url in pages(work).items():
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"] == f"/login/?next={url}", name


def test_course_that_does_not_exist_looks_like_one_you_are_not_in(work, client_as):
    olga = client_as("olga")
    missing = olga.get("/courses/nope/")
    hidden = olga.get("/courses/phys101/")
    assert missing.status_code == hidden.status_code == 404
    main = re.compile(rb"<main>.*</main>", re.S)
    assert main.search(missing.content).group() == main.search(hidden.content).group()


def test_student_cannot_open_another_students_files_by_guessing_paths(work, client_as):
    sam = client_as("sam")
    tia = work["tia"].pk
    assert sam.get(f"/submissions/{tia}/submission/files/notes.txt").status_code == 404
    assert sam.get(f"/submissions/{tia}/download").status_code == 404
    assert sam.get("/submissions/999999/").status_code == 404


def test_sign_out_needs_a_post(work, client_as):
    client = client_as("sam")
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/logged-out/"
    assert client.get("/").status_code == 302
