"""JupyterHub token authentication against a real HTTP server on 127.0.0.1 that answers
``/hub/api/user`` as JupyterHub does: valid, invalid, revoked after the cache time, hub
down, and what is kept in the cache."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from api.tokens import hash_token
from hub.identity import CACHE_PREFIX
from tests.harness.jsonserver import JsonServer, Request
from tests.harness.ports import free_port


class FakeHub:
    """A tiny JupyterHub API: ``tokens`` maps a token to the user model the hub returns."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict] = {}
        self.requests: list[str] = []
        self.fail_with: int | None = None
        self.server = JsonServer(self._respond)
        self.api_url = self.server.api_url

    def _respond(self, request: Request) -> tuple[int, dict]:
        self.requests.append(request.path)
        if self.fail_with:
            return self.fail_with, {"status": self.fail_with, "message": "down"}
        if request.path != "/hub/api/user":
            return 404, {"status": 404, "message": "Not found"}
        if request.token not in self.tokens:
            return 403, {"status": 403, "message": "Forbidden"}
        return 200, self.tokens[request.token]

    def stop(self) -> None:
        self.server.stop()


SERVICE = "nbgrader-exchange"
# What JupyterHub's /user answers for a token that may access the service.
ACCESS_SCOPES = [f"access:services!service={SERVICE}", "read:users:name!user=x"]


def user_model(
    name: str,
    *,
    admin: bool = False,
    kind: str = "user",
    scopes: list[str] | None = None,
    groups: list[str] | None = None,
) -> dict:
    return {
        "kind": kind,
        "name": name,
        "admin": admin,
        "groups": groups or [],
        "scopes": ACCESS_SCOPES if scopes is None else scopes,
    }


@pytest.fixture
def hub(settings, db):
    fake = FakeHub()
    settings.JUPYTERHUB_API_URL = fake.api_url
    settings.JUPYTERHUB_SERVICE_NAME = SERVICE
    settings.EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE = True
    settings.EXCHANGE_HUB_TOKEN_CACHE_SECONDS = 60
    cache.clear()
    yield fake
    fake.stop()
    cache.clear()


def me(token: str, keyword: str = "token"):
    return APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"{keyword} {token}")


def test_valid_hub_token_signs_in_and_creates_the_user(hub):
    hub.tokens["hub-token-sam"] = user_model("sam")
    response = me("hub-token-sam")
    assert response.status_code == 200
    assert response.json()["username"] == "sam"
    assert get_user_model().objects.filter(username="sam").exists()
    assert me("hub-token-sam", "Bearer").status_code == 200


def test_a_hub_user_whose_name_cannot_be_a_folder_gets_a_sentence_and_no_account(hub):
    hub.tokens["hub-token-dots"] = user_model("..")
    response = me("hub-token-dots")
    assert response.status_code == 400, response.content
    assert "cannot be a folder name" in response.json()["detail"]
    assert not get_user_model().objects.filter(username="..").exists()


def test_answer_is_cached_under_a_hash_never_the_token(hub):
    hub.tokens["hub-token-sam"] = user_model("sam")
    for _ in range(3):
        assert me("hub-token-sam").status_code == 200
    assert hub.requests == ["/hub/api/user"]
    assert cache.get(CACHE_PREFIX + hash_token("hub-token-sam"))["name"] == "sam"
    stored_keys = " ".join(str(key) for key in cache._cache)  # locmem's own store
    assert "hub-token-sam" not in stored_keys


def test_invalid_hub_token_is_401(hub):
    response = me("not-a-hub-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "token"
    assert response.json()["error"] == "authentication_failed"


def test_token_revoked_at_the_hub_stops_working_after_the_cache_time(hub, settings):
    settings.EXCHANGE_HUB_TOKEN_CACHE_SECONDS = 1
    hub.tokens["hub-token-sam"] = user_model("sam")
    assert me("hub-token-sam").status_code == 200
    del hub.tokens["hub-token-sam"]
    assert me("hub-token-sam").status_code == 200  # the cached answer
    time.sleep(1.2)
    assert me("hub-token-sam").status_code == 401


def test_hub_down_is_503_with_a_sentence(hub, settings):
    settings.JUPYTERHUB_API_URL = f"http://127.0.0.1:{free_port()}/hub/api"
    response = me("hub-token-sam")
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "JupyterHub" in response.json()["detail"]


def test_hub_error_is_503_and_not_cached(hub):
    hub.tokens["hub-token-sam"] = user_model("sam")
    hub.fail_with = 500
    assert me("hub-token-sam").status_code == 503
    hub.fail_with = None
    assert me("hub-token-sam").status_code == 200


def test_hub_admins_become_staff_when_the_setting_says_so(hub, settings):
    hub.tokens["hub-token-ada"] = user_model("ada", admin=True)
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = False
    assert me("hub-token-ada").json()["is_staff"] is False
    cache.clear()
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = True
    assert me("hub-token-ada").json()["is_staff"] is True
    hub.tokens["hub-token-ada"] = user_model("ada", admin=False)
    cache.clear()
    assert me("hub-token-ada").json()["is_staff"] is False


def test_service_tokens_are_not_users(hub):
    hub.tokens["service-token"] = user_model("announcer", kind="service")
    assert me("service-token").status_code == 401


def test_disabled_account_is_401(hub, django_user_model):
    django_user_model.objects.create(username="gone", is_active=False)
    hub.tokens["hub-token-gone"] = user_model("gone")
    response = me("hub-token-gone")
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]


def test_api_tokens_are_never_sent_to_the_hub(hub):
    assert me("nbx_unknown").status_code == 401
    assert hub.requests == []


def test_without_a_hub_tokens_are_checked_as_api_tokens_only(settings, db):
    settings.JUPYTERHUB_API_URL = ""
    assert me("whatever").status_code == 401


def test_unreadable_hub_answer_is_503(hub, monkeypatch):
    hub.tokens["hub-token-sam"] = {"kind": "user"}  # no name: not JupyterHub's shape
    assert me("hub-token-sam").status_code == 503


def test_token_without_access_to_the_service_is_401_with_the_scope_named(hub):
    # What a single-user server's own token carries by default (JupyterHub 6.1).
    server_scopes = ["access:servers!server=sam/", "read:users:name!user=sam"]
    hub.tokens["server-token"] = user_model("sam", scopes=server_scopes)
    response = me("server-token")
    assert response.status_code == 401
    assert "access:services!service=nbgrader-exchange" in response.json()["detail"]


def test_unfiltered_access_services_scope_is_enough(hub):
    hub.tokens["t"] = user_model("sam", scopes=["access:services"])
    assert me("t").status_code == 200


def test_scope_check_can_be_turned_off(hub, settings):
    settings.EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE = False
    hub.tokens["server-token"] = user_model("sam", scopes=["read:users:name!user=sam"])
    assert me("server-token").status_code == 200


def test_hub_groups_give_course_roles_when_enabled(hub, settings, course):
    hub.tokens["t"] = user_model("sam", groups=["nbgrader-phys101", "other"])
    assert me("t").json()["courses"] == []
    settings.EXCHANGE_HUB_GROUP_ROSTER = True
    cache.clear()
    courses = me("t").json()["courses"]
    assert [(c["course_id"], c["role"]) for c in courses] == [("phys101", "student")]


# --- hub users and accounts made on the exchange -------------------------------------------


@pytest.mark.parametrize("kind", ["staff", "password"])
def test_a_hub_user_never_inherits_a_local_account_of_the_same_name(hub, kind):
    """An account made on the exchange itself (createsuperuser, create_api_token --staff,
    a password) is not handed to the hub user who happens to have its name."""
    User = get_user_model()
    if kind == "staff":
        User.objects.create(username="ada", is_staff=True)
    else:
        User.objects.create_user(username="ada", password="a long password")
    hub.tokens["hub-token-of-ada"] = user_model("ada")
    response = me("hub-token-of-ada")
    assert response.status_code == 401
    assert "made on the exchange itself" in response.json()["detail"]
    assert "docs/security.md" in response.json()["detail"]


def test_accounts_made_for_hub_names_and_linked_accounts_are_the_hub_users(hub):
    """A roster-made account (no password, no admin rights) becomes the hub user's at first
    sight and is linked; a local admin account linked by the administrators is used too."""
    from social_django.models import UserSocialAuth

    User = get_user_model()
    User.objects.create(username="sam")
    admin = User.objects.create(username="ada", is_staff=True)
    UserSocialAuth.objects.create(user=admin, provider="jupyterhub", uid="ada")
    hub.tokens["t-sam"] = user_model("sam")
    hub.tokens["t-ada"] = user_model("ada")
    assert me("t-sam").json()["username"] == "sam"
    assert UserSocialAuth.objects.filter(provider="jupyterhub", uid="sam").exists()
    body = me("t-ada").json()
    assert body["username"] == "ada" and body["is_staff"] is True
    # Once linked, the account may become staff (hub admins) and stays the hub user's.
    User.objects.filter(username="sam").update(is_staff=True)
    cache.clear()
    assert me("t-sam").status_code == 200


def test_link_hub_user_hands_a_local_account_to_the_hub_user_of_its_name(hub):
    import io

    from django.core.management import CommandError, call_command

    get_user_model().objects.create_user(username="ada", password="a long password")
    hub.tokens["t-ada"] = user_model("ada")
    assert me("t-ada").status_code == 401
    out = io.StringIO()
    call_command("link_hub_user", "ada", stdout=out)
    assert "may now sign in as 'ada'" in out.getvalue()
    assert me("t-ada").json()["username"] == "ada"
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("link_hub_user", "ghost")


# --- the token's user, cached ---------------------------------------------------------------


def _user_queries(token: str) -> list[str]:
    """The statements a call of ``me`` runs to find the token's user (and link it)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert me(token).status_code == 200
    return [
        q["sql"]
        for q in captured.captured_queries
        if "social_auth" in q["sql"] or 'FROM "auth_user"' in q["sql"]
    ]


def test_a_hub_tokens_user_is_found_without_a_query_after_the_first_call(hub, settings):
    settings.EXCHANGE_API_TOKEN_CACHE_SECONDS = 10
    hub.tokens["hub-token-sam"] = user_model("sam")
    assert _user_queries("hub-token-sam")  # first sight: made, linked
    assert _user_queries("hub-token-sam") == []
    assert _user_queries("hub-token-sam") == []
    assert hub.requests == ["/hub/api/user"]


def test_without_the_token_cache_every_call_finds_the_user_again(hub, settings):
    settings.EXCHANGE_API_TOKEN_CACHE_SECONDS = 0
    hub.tokens["hub-token-sam"] = user_model("sam")
    assert _user_queries("hub-token-sam")
    assert _user_queries("hub-token-sam")


def test_a_cached_user_never_outlives_the_hubs_answer(hub, settings):
    """A token revoked at the hub stops working within EXCHANGE_HUB_TOKEN_CACHE_SECONDS even
    when the user would be trusted longer."""
    settings.EXCHANGE_API_TOKEN_CACHE_SECONDS = 60
    settings.EXCHANGE_HUB_TOKEN_CACHE_SECONDS = 2
    hub.tokens["hub-token-sam"] = user_model("sam")
    assert me("hub-token-sam").status_code == 200
    del hub.tokens["hub-token-sam"]
    assert me("hub-token-sam").status_code == 200  # both cached
    time.sleep(2.2)
    assert me("hub-token-sam").status_code == 401


def test_an_account_disabled_after_sign_in_is_refused_once_the_user_cache_expires(
    hub, settings, django_user_model
):
    settings.EXCHANGE_API_TOKEN_CACHE_SECONDS = 1
    hub.tokens["hub-token-sam"] = user_model("sam")
    assert me("hub-token-sam").status_code == 200
    django_user_model.objects.filter(username="sam").update(is_active=False)
    time.sleep(1.2)
    response = me("hub-token-sam")
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]
