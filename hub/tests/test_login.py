"""Signing in through JupyterHub's OAuth2 provider, in process, against a small HTTP server
on 127.0.0.1 that answers the token and user endpoints as the hub does (the same round trip
through a real hub and browser is in tests/test_jupyterhub.py)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from social_core.backends import utils as social_utils

from courses import services
from courses.models import Membership
from tests.harness.jsonserver import JsonServer, Request

PREFIX = "/services/nbgrader-exchange"
CALLBACK = PREFIX + "/oauth_callback"


class FakeHubOAuth:
    """Hands out ``code-<name>`` codes' access tokens and says whose they are."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        # Set to answer the token (or user) request with this status and body instead.
        self.token_answer: tuple[int, dict] | None = None
        self.user_answer: tuple[int, dict] | None = None
        # Seconds the hub's access tokens live (JupyterHub sends expires_in), or None.
        self.expires_in: int | None = None
        # Seconds the token endpoint waits before it answers.
        self.token_delay = 0.0
        self.server = JsonServer(self._respond)
        self.api_url = self.server.api_url

    def _respond(self, request: Request) -> tuple[int, dict]:
        if request.method == "POST":
            form = request.form()
            self.token_requests.append(form)
            time.sleep(self.token_delay)
            if self.token_answer is not None:
                return self.token_answer
            name = form.get("code", "").removeprefix("code-")
            if request.path != "/hub/api/oauth2/token" or name not in self.users:
                return 400, {"error": "invalid_grant"}
            answer = {"access_token": f"at-{name}", "token_type": "Bearer"}
            if self.expires_in is not None:
                answer["expires_in"] = self.expires_in
            return 200, answer
        if self.user_answer is not None:
            return self.user_answer
        name = request.token.removeprefix("at-")
        if request.path != "/hub/api/user" or name not in self.users:
            return 403, {"status": 403}
        return 200, self.users[name]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def hub(settings, db):
    fake = FakeHubOAuth()
    settings.JUPYTERHUB_API_URL = fake.api_url
    settings.JUPYTERHUB_CLIENT_ID = "service-nbgrader-exchange"
    settings.JUPYTERHUB_API_TOKEN = "service-secret"
    settings.SOCIAL_AUTH_JUPYTERHUB_KEY = "service-nbgrader-exchange"
    settings.SOCIAL_AUTH_JUPYTERHUB_SECRET = "service-secret"
    settings.JUPYTERHUB_OAUTH_CALLBACK_URL = CALLBACK
    settings.JUPYTERHUB_SERVICE_NAME = "nbgrader-exchange"
    settings.EXCHANGE_URL_PREFIX = PREFIX
    settings.EXCHANGE_HUB_URL = "/"
    settings.EXCHANGE_HUB_LOGIN = True
    settings.AUTHENTICATION_BACKENDS = [
        "hub.oauth.JupyterHubOAuth2",
        "django.contrib.auth.backends.ModelBackend",
    ]
    social_utils.BACKENDSCACHE.clear()
    yield fake
    fake.stop()
    social_utils.BACKENDSCACHE.clear()


def hub_user(name: str, *, admin: bool = False, groups: list[str] | None = None) -> dict:
    return {"kind": "user", "name": name, "admin": admin, "groups": groups or [], "scopes": []}


def sign_in(client: Client, hub: FakeHubOAuth, name: str, next_url: str) -> object:
    """Follow the round trip as a browser does: our login page, the hub's authorize page
    (which, with oauth_no_confirm, redirects straight back with a code), our callback."""
    login = client.get(f"{PREFIX}/login/", {"next": next_url})
    assert login.status_code == 302
    begin = client.get(login["Location"])
    assert begin.status_code == 302
    authorize = urlsplit(begin["Location"])
    assert authorize.path == "/hub/api/oauth2/authorize"
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["client_id"] == "service-nbgrader-exchange"
    assert params["redirect_uri"] == CALLBACK
    assert params["response_type"] == "code"
    return client.get(params["redirect_uri"], {"code": f"code-{name}", "state": params["state"]})


def test_login_goes_through_the_hub_and_lands_where_asked(hub, course):
    services.add_member(course=course, username="ines", role="instructor")
    hub.users["ines"] = hub_user("ines")
    client = Client()
    done = sign_in(client, hub, "ines", f"{PREFIX}/courses/phys101/")
    assert done.status_code == 302
    assert done["Location"] == f"{PREFIX}/courses/phys101/"
    page = client.get(done["Location"])
    assert page.status_code == 200 and b"phys101" in page.content
    # The code was exchanged with our client id and secret, for the same redirect URI.
    (form,) = hub.token_requests
    assert form["client_id"] == "service-nbgrader-exchange"
    assert form["client_secret"] == "service-secret"
    assert form["redirect_uri"] == CALLBACK
    assert form["grant_type"] == "authorization_code"


def test_existing_account_of_the_same_name_is_used_never_renamed(hub, course, django_user_model):
    existing = services.add_member(course=course, username="sam", role="student").user
    hub.users["sam"] = hub_user("sam")
    client = Client()
    sign_in(client, hub, "sam", f"{PREFIX}/")
    assert django_user_model.objects.filter(username__startswith="sam").count() == 1
    assert client.get(f"{PREFIX}/").wsgi_request.user.pk == existing.pk


def test_hub_admins_become_staff_only_when_the_setting_says_so(hub, settings):
    hub.users["ada"] = hub_user("ada", admin=True)
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = False
    sign_in(Client(), hub, "ada", f"{PREFIX}/")
    assert not get_user_model().objects.get(username="ada").is_staff
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = True
    client = Client()
    sign_in(client, hub, "ada", f"{PREFIX}/admin/")
    assert get_user_model().objects.get(username="ada").is_staff
    assert client.get(f"{PREFIX}/admin/").status_code == 200


def test_hub_groups_become_course_roles_on_login_when_enabled(hub, settings, course):
    settings.EXCHANGE_HUB_GROUP_ROSTER = True
    hub.users["ines"] = hub_user("ines", groups=["formgrade-phys101", "nbgrader-phys101"])
    hub.users["sam"] = hub_user("sam", groups=["nbgrader-phys101", "nbgrader-nosuchcourse"])
    sign_in(Client(), hub, "ines", f"{PREFIX}/")
    sign_in(Client(), hub, "sam", f"{PREFIX}/")
    roles = dict(Membership.objects.filter(course=course).values_list("user__username", "role"))
    assert roles == {"ines": "instructor", "sam": "student"}


def test_a_refused_code_ends_on_the_sign_in_failed_page(hub):
    client = Client()
    login = client.get(f"{PREFIX}/login/")
    begin = client.get(login["Location"])
    state = parse_qs(urlsplit(begin["Location"]).query)["state"][0]
    done = client.get(CALLBACK, {"code": "code-nobody", "state": state}, follow=True)
    assert done.status_code == 403
    assert b"JupyterHub did not confirm who you are" in done.content
    assert not done.wsgi_request.user.is_authenticated


def _callback(client: Client, **params: str):
    """Start a sign-in and come back to the callback with ``params`` (and the right state)."""
    login = client.get(f"{PREFIX}/login/")
    begin = client.get(login["Location"])
    state = parse_qs(urlsplit(begin["Location"]).query)["state"][0]
    return client.get(CALLBACK, {"state": state, **params}, follow=True)


@pytest.mark.parametrize(
    ("where", "status"),
    [("token", 401), ("token", 403), ("token", 500), ("user", 403), ("user", 500)],
)
def test_a_hub_that_refuses_lands_on_the_sign_in_failed_page(hub, where, status):
    """The hub refuses the code (or the client), or will not say whose the token is: the
    page that says so, never a server error."""
    hub.users["sam"] = hub_user("sam")
    setattr(hub, f"{where}_answer", (status, {"error": "invalid_client"}))
    done = _callback(Client(raise_request_exception=False), code="code-sam")
    assert done.status_code == 403
    assert b"JupyterHub did not confirm who you are" in done.content
    assert not done.wsgi_request.user.is_authenticated


def test_a_hub_user_whose_name_cannot_be_a_folder_is_told_so_and_gets_no_account(hub):
    hub.users[".."] = hub_user("..")
    done = _callback(Client(raise_request_exception=False), code="code-..")
    assert done.status_code == 400, done.content[:500]
    assert b"cannot be a folder name" in done.content
    assert not done.wsgi_request.user.is_authenticated
    assert not get_user_model().objects.filter(username="..").exists()


def test_a_hub_that_does_not_answer_lands_on_the_sign_in_failed_page(hub):
    hub.users["sam"] = hub_user("sam")
    client = Client(raise_request_exception=False)
    login = client.get(f"{PREFIX}/login/")
    begin = client.get(login["Location"])
    state = parse_qs(urlsplit(begin["Location"]).query)["state"][0]
    hub.stop()
    done = client.get(CALLBACK, {"code": "code-sam", "state": state}, follow=True)
    assert done.status_code == 403
    assert b"JupyterHub did not confirm who you are" in done.content


@pytest.mark.parametrize(
    ("where", "answer"),
    [
        ("token", (200, {"token_type": "Bearer"})),
        ("user", (200, {"kind": "user"})),
        ("user", (200, {"kind": "service", "name": "announcer"})),
    ],
    ids=["token-without-access-token", "user-without-name", "a-services-token"],
)
def test_an_unreadable_hub_answer_lands_on_the_sign_in_failed_page(hub, where, answer):
    hub.users["sam"] = hub_user("sam")
    setattr(hub, f"{where}_answer", answer)
    done = _callback(Client(raise_request_exception=False), code="code-sam")
    assert done.status_code == 403
    assert b"JupyterHub did not confirm who you are" in done.content


def test_a_hub_that_hangs_lands_on_the_sign_in_failed_page(hub, settings):
    """A hub that takes longer than SOCIAL_AUTH_URLOPEN_TIMEOUT to exchange the code."""
    settings.SOCIAL_AUTH_URLOPEN_TIMEOUT = 0.5
    hub.users["sam"] = hub_user("sam")
    hub.token_delay = 2.0
    done = _callback(Client(raise_request_exception=False), code="code-sam")
    assert done.status_code == 403
    assert b"JupyterHub did not confirm who you are" in done.content


def test_a_denied_authorization_lands_on_the_sign_in_failed_page(hub):
    done = _callback(Client(raise_request_exception=False), error="access_denied")
    assert done.status_code == 403
    assert b"JupyterHub did not confirm who you are" in done.content


def test_admin_site_signs_in_through_the_hub_too(hub):
    response = Client().get(f"{PREFIX}/admin/")
    assert response.status_code == 302
    login = Client().get(response["Location"])
    assert login["Location"] == f"{PREFIX}/login/?next={PREFIX}/admin/"


def test_hub_home_link_and_no_password_form_with_the_hub(hub, course):
    hub.users["ines"] = hub_user("ines")
    client = Client()
    sign_in(client, hub, "ines", f"{PREFIX}/")
    page = client.get(f"{PREFIX}/").content.decode()
    assert 'href="/hub/home"' in page


def test_without_the_hub_django_login_form_works(db, django_user_model):
    django_user_model.objects.create_user(username="ines", password="a long password")
    client = Client()
    form = client.get("/login/")
    assert form.status_code == 200 and b'name="password"' in form.content
    bad = client.post("/login/", {"username": "ines", "password": "wrong"})
    assert b"did not match" in bad.content
    good = client.post("/login/", {"username": "ines", "password": "a long password"})
    assert good.status_code == 302 and good["Location"] == "/"
    assert b"Back to JupyterHub" not in client.get("/").content
    assert client.get("/logged-out/").status_code == 200


def test_next_with_a_query_survives_the_round_trip(hub, course):
    services.add_member(course=course, username="ines", role="instructor")
    hub.users["ines"] = hub_user("ines")
    client = Client()
    wanted = f"{PREFIX}/courses/phys101/assignments/ps1/?status=late&q=s"
    done = sign_in(client, hub, "ines", wanted)
    assert done["Location"] == wanted


def test_admin_login_refuses_to_send_people_elsewhere(hub):
    response = Client().get(f"{PREFIX}/admin/login/", {"next": "https://evil.example/"})
    assert response["Location"] == f"{PREFIX}/login/?next={PREFIX}/admin/"


def test_a_hub_user_cannot_sign_in_as_a_local_admin_of_the_same_name(hub, django_user_model):
    """createsuperuser made 'ada' on the exchange; the hub's 'ada' is someone else until the
    administrators link the two."""
    from social_django.models import UserSocialAuth

    local = django_user_model.objects.create_superuser(username="ada", password="a long password")
    hub.users["ada"] = hub_user("ada", admin=True)
    client = Client()
    done = sign_in(client, hub, "ada", f"{PREFIX}/admin/")
    assert done.status_code == 403
    assert b"made on the exchange itself" in done.content
    assert not client.get(f"{PREFIX}/").wsgi_request.user.is_authenticated
    assert client.get(f"{PREFIX}/admin/").status_code == 302
    # Linked in the admin site (User social auths): the same person, signed in.
    UserSocialAuth.objects.create(user=local, provider="jupyterhub", uid="ada")
    done = sign_in(client, hub, "ada", f"{PREFIX}/admin/")
    assert done.status_code == 302
    assert client.get(f"{PREFIX}/admin/").status_code == 200


def test_a_session_ends_no_later_than_the_hubs_token_nor_the_setting(hub, settings):
    """EXCHANGE_SESSION_SECONDS sets both, as settings.py does."""
    settings.SESSION_COOKIE_AGE = settings.SOCIAL_AUTH_MAX_SESSION_LENGTH = 3600
    hub.users["sam"] = hub_user("sam")
    client = Client()
    sign_in(client, hub, "sam", f"{PREFIX}/")
    assert client.session.get_expiry_age() == 3600
    hub.expires_in = 600
    client = Client()
    sign_in(client, hub, "sam", f"{PREFIX}/")
    assert 590 <= client.session.get_expiry_age() <= 600
    assert client.get(f"{PREFIX}/").wsgi_request.user.is_authenticated
    hub.expires_in = 14 * 24 * 3600  # JupyterHub's default: its cookie's two weeks
    client = Client()
    sign_in(client, hub, "sam", f"{PREFIX}/")
    assert client.session.get_expiry_age() == 3600
    # Only when it expires is kept, never the hub's token.
    from social_django.models import UserSocialAuth

    (linked,) = UserSocialAuth.objects.filter(uid="sam")
    assert set(linked.extra_data) == {"expires_on"}
