"""/admin/ for someone signed in who may not use it: a 403 page that says why, never the
loop /admin/ -> /admin/login/ -> /login/ -> /admin/."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def sam(db, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create(username="sam"))
    return client


def test_a_signed_in_user_without_access_gets_a_403_page_not_a_redirect_loop(sam):
    response = sam.get("/admin/", follow=True)
    # /admin/ -> /admin/login/?next=/admin/, which answers itself: one redirect, no loop.
    assert [url for url, _status in response.redirect_chain] == ["/admin/login/?next=/admin/"]
    assert response.status_code == 403
    page = response.content.decode()
    assert "You are signed in as sam" in page
    assert "EXCHANGE_HUB_ADMINS_ARE_STAFF" in page and "make_superuser" in page


def test_the_403_page_speaks_spanish(sam):
    response = sam.get("/admin/", follow=True, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 403
    assert "Has iniciado sesión como sam" in response.content.decode()


def test_staff_at_the_admin_login_go_on_to_where_they_were_going(db, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create(username="it", is_staff=True))
    response = client.get("/admin/login/?next=/admin/courses/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/courses/"


def test_anonymous_visitors_still_go_to_the_sign_in(db):
    response = Client().get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/?next=/admin/")
    assert response.status_code == 200
