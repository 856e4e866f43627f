"""Standalone API tokens: the two commands, and requests made with the tokens they print."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from api.tokens import hash_token


def make_token(username: str, *args: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", username, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def me(token: str, keyword: str = "token") -> tuple[int, dict]:
    client = APIClient()
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"{keyword} {token}")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_token_of_an_unknown_user_needs_create_user_flag():
    with pytest.raises(CommandError, match="--create-user"):
        make_token("newbie")


@pytest.mark.django_db
def test_created_token_identifies_the_user_with_either_keyword(django_user_model):
    token = make_token("newbie", "--create-user")
    assert token.startswith("nbx_")
    assert me(token) == (200, {"username": "newbie", "is_staff": False, "courses": []})
    assert me(token, "Bearer")[0] == 200
    stored = ApiToken.objects.get()
    assert stored.token_hash == hash_token(token)
    assert token not in stored.token_hash
    assert stored.last_used_at is not None


@pytest.mark.django_db
def test_staff_flag_makes_a_site_admin(django_user_model):
    django_user_model.objects.create(username="ada")
    token = make_token("ada", "--staff")
    assert me(token)[1]["is_staff"] is True


@pytest.mark.django_db
def test_revoked_token_gets_401(django_user_model):
    token = make_token("ada", "--create-user")
    out = io.StringIO()
    call_command("revoke_api_tokens", "ada", stdout=out)
    assert "Revoked 1 API token" in out.getvalue()
    status, body = me(token)
    assert status == 401
    assert body["error"] == "authentication_failed"


@pytest.mark.django_db
def test_revoke_for_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("revoke_api_tokens", "ghost")


@pytest.mark.django_db
def test_disabled_account_cannot_get_or_use_a_token(django_user_model):
    user = django_user_model.objects.create(username="gone")
    token = make_token("gone")
    user.is_active = False
    user.save()
    assert me(token)[0] == 401
    with pytest.raises(CommandError, match="disabled"):
        make_token("gone")


@pytest.mark.django_db
def test_bad_user_name_is_a_clear_error():
    with pytest.raises(CommandError, match="longer than 150 characters"):
        make_token("x" * 200, "--create-user")
    with pytest.raises(CommandError, match=r"'\.\.' cannot be a folder name"):
        make_token("..", "--create-user")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    ["token nbx_unknown", "Bearer something-else", "token a b", "token"],
)
def test_bad_tokens_get_401_with_www_authenticate(header):
    response = APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "token"
    assert set(response.json()) == {"error", "detail"}


@pytest.mark.django_db
def test_no_credentials_get_401_with_www_authenticate():
    response = APIClient().get("/api/v1/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "token"
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.django_db
def test_browser_session_works(django_user_model):
    user = django_user_model.objects.create(username="sess")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/me").json()["username"] == "sess"


@pytest.mark.django_db
def test_admin_lists_tokens_by_hash_and_revokes_them(admin_client, django_user_model):
    token = make_token("sam", "--create-user")
    page = admin_client.get("/admin/api/apitoken/")
    assert page.status_code == 200
    assert b"sam" in page.content and token.encode() not in page.content
    assert admin_client.get("/admin/api/apitoken/add/").status_code == 403
    stored = ApiToken.objects.get()
    response = admin_client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [stored.pk]},
        follow=True,
    )
    assert b"Revoked 1 token" in response.content
    assert me(token)[0] == 401


# --- expiry ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tokens_expire_after_the_default_lifetime_with_a_sentence(
    settings, django_user_model, monkeypatch
):
    settings.EXCHANGE_API_TOKEN_DAYS = 30
    err = io.StringIO()
    out = io.StringIO()
    call_command("create_api_token", "ines", "--create-user", stdout=out, stderr=err)
    token = out.getvalue().strip()
    stored = ApiToken.objects.get()
    lifetime = stored.expires_at - stored.created_at
    assert dt.timedelta(days=30) - dt.timedelta(minutes=1) < lifetime <= dt.timedelta(days=30)
    assert f"expires on {stored.expires_at:%Y-%m-%d}" in err.getvalue()
    assert me(token)[0] == 200
    # Thirty days later (the token's user, cached by the call above, is not trusted past it).
    later = timezone.now() + dt.timedelta(days=30, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    status, body = me(token)
    assert status == 401
    assert body["error"] == "authentication_failed"
    assert body["detail"].startswith("The token expired on ")
    assert "create_api_token" in body["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("when", "lifetime"),
    [
        ("12h", dt.timedelta(hours=12)),
        ("2d", dt.timedelta(days=2)),
        ("45m", dt.timedelta(minutes=45)),
    ],
)
def test_expires_takes_a_lifetime(when, lifetime):
    make_token("ines", "--create-user", "--expires", when)
    stored = ApiToken.objects.get()
    assert abs(stored.expires_at - (stored.created_at + lifetime)) < dt.timedelta(minutes=1)


@pytest.mark.django_db
def test_expires_takes_a_date_or_never():
    make_token("ines", "--create-user", "--expires", "2099-01-31")
    assert ApiToken.objects.get().expires_at == dt.datetime(2099, 1, 31, tzinfo=dt.UTC)
    make_token("ines", "--expires", "2099-01-31T02:00+02:00")
    assert ApiToken.objects.filter(expires_at=dt.datetime(2099, 1, 31, tzinfo=dt.UTC)).count() == 2
    ApiToken.objects.all().delete()
    err = io.StringIO()
    out = io.StringIO()
    call_command("create_api_token", "ines", "--expires", "never", stdout=out, stderr=err)
    assert "never expires" in err.getvalue()
    assert ApiToken.objects.filter(expires_at__isnull=True).count() == 1
    assert me(out.getvalue().strip())[0] == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("soon", "expected a lifetime"),
        ("0d", "at least one unit"),
        ("2001-01-01", "in the past"),
    ],
)
def test_bad_expiry_is_a_clear_error_and_makes_no_token(when, message):
    with pytest.raises(CommandError, match=message):
        make_token("ines", "--create-user", "--expires", when)
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_unknown_and_revoked_tokens_say_which(django_user_model):
    status, body = me("nbx_" + "x" * 43)
    assert status == 401 and "does not know it" in body["detail"]
    token = make_token("ada", "--create-user")
    call_command("revoke_api_tokens", "ada", stdout=io.StringIO())
    assert "was revoked" in me(token)[1]["detail"]


def test_existing_tokens_get_the_default_lifetime_when_expiry_arrives(transactional_db):
    """The migration that brings expiry: a live token made before it expires
    EXCHANGE_API_TOKEN_DAYS after the upgrade, a revoked one stays as it was."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("api", "0001_initial")])
    old_apps = executor.loader.project_state([("api", "0001_initial")]).apps
    User = old_apps.get_model("auth", "User")
    OldToken = old_apps.get_model("api", "ApiToken")
    user = User.objects.create(username="ines")
    OldToken.objects.create(user=user, token_hash="a" * 64)
    OldToken.objects.create(user=user, token_hash="b" * 64, revoked_at=timezone.now())
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    live = ApiToken.objects.get(token_hash="a" * 64)
    assert live.expires_at > timezone.now() + dt.timedelta(days=89)
    assert ApiToken.objects.get(token_hash="b" * 64).expires_at is None


# --- the short cache of a checked token ------------------------------------------------------


@pytest.mark.django_db
def test_a_checked_token_needs_no_query_on_the_next_call(django_user_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = make_token("newbie", "--create-user")
    assert me(token)[0] == 200
    with CaptureQueriesContext(connection) as captured:
        assert me(token) == (200, {"username": "newbie", "is_staff": False, "courses": []})
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert 'FROM "api_apitoken"' not in sql and 'UPDATE "api_apitoken"' not in sql


@pytest.mark.django_db
def test_a_token_revoked_elsewhere_stops_within_the_cache_time(
    settings, django_user_model, monkeypatch
):
    """A revocation this process did not make (another replica, another worker) takes
    effect once EXCHANGE_API_TOKEN_CACHE_SECONDS have passed."""
    import time

    from django.core.cache.backends import locmem

    settings.EXCHANGE_API_TOKEN_CACHE_SECONDS = 10
    token = make_token("ada", "--create-user")
    assert me(token)[0] == 200
    ApiToken.objects.update(revoked_at=timezone.now())  # as another process would
    assert me(token)[0] == 200  # still trusted: within the cache time
    later = time.time() + 11
    monkeypatch.setattr(locmem.time, "time", lambda: later)
    status, body = me(token)
    assert status == 401 and "revoked" in body["detail"]


@pytest.mark.django_db
def test_revoking_forgets_the_cached_token_at_once(django_user_model):
    token = make_token("ada", "--create-user")
    assert me(token)[0] == 200
    call_command("revoke_api_tokens", "ada", stdout=io.StringIO())
    assert me(token)[0] == 401


@pytest.mark.django_db
def test_no_cache_time_checks_every_call(settings, django_user_model):
    settings.EXCHANGE_API_TOKEN_CACHE_SECONDS = 0
    token = make_token("ada", "--create-user")
    assert me(token)[0] == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    assert me(token)[0] == 401
