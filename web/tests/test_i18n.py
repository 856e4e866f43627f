"""The pages in Spanish for a browser that asks for it, and a translation catalogue that is
complete and compiled (locale/es/LC_MESSAGES: django.po is the source, django.mo is
committed)."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES"
needs_msgfmt = pytest.mark.skipif(
    shutil.which("msgfmt") is None, reason="needs gettext's msgfmt (`make gettext`)"
)


@needs_msgfmt
def test_spanish_catalogue_is_complete(tmp_path):
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "x.mo"), "django.po"],
        cwd=CATALOGUE,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "fuzzy" not in result.stderr and "untranslated" not in result.stderr, result.stderr


@needs_msgfmt
def test_committed_mo_is_compiled_from_the_po(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(CATALOGUE / "django.po")], check=True)
    with open(fresh, "rb") as a, open(CATALOGUE / "django.mo", "rb") as b:
        expected = gettext.GNUTranslations(a)._catalog  # type: ignore[attr-defined]
        committed = gettext.GNUTranslations(b)._catalog  # type: ignore[attr-defined]
    assert committed == expected, "run `make messages` and commit locale/"


@pytest.mark.django_db
def test_pages_follow_the_browsers_language(work, client_as):
    ines = client_as("ines")
    spanish = ines.get("/courses/phys101/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9,en;q=0.5")
    page = spanish.content.decode()
    assert '<html lang="es">' in page
    for words in ["Mis cursos", "Tareas", "2 estudiantes", "1 instructor", "Registro de auditoría"]:
        assert words in page
    assert "Assignments" not in page
    english = ines.get("/courses/phys101/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content
    assert b"My courses" in english and b"Mis cursos" not in english
    fallback = ines.get("/courses/phys101/", HTTP_ACCEPT_LANGUAGE="de-DE").content
    assert b"My courses" in fallback


@pytest.mark.django_db
def test_every_page_has_spanish_text_for_each_role(work, client_as):
    urls = {
        "ines": [
            "/",
            "/courses/phys101/assignments/ps1/",
            f"/submissions/{work['sam_late'].pk}/",
            "/courses/phys101/audit/",
        ],
        "sam": ["/", "/courses/phys101/", "/courses/phys101/assignments/ps1/"],
        "olga": ["/courses/phys101/"],
    }
    english = ["My courses", "Sign out", "Submitted", "Feedback", "Not found", "Audit trail"]
    for person, pages in urls.items():
        client = client_as(person)
        for url in pages:
            page = client.get(url, HTTP_ACCEPT_LANGUAGE="es").content.decode()
            assert "Mis cursos" in page, url
            leftovers = [word for word in english if f">{word}<" in page]
            assert not leftovers, (person, url, leftovers)
