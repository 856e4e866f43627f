"""The hub client's error mapping where the hub answers something that is not its API: a
token check then answers 503 with a sentence, never a crash or a 401."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.harness.jsonserver import JsonServer, Request

PAGE = b"<!DOCTYPE html><title>JupyterHub</title><p>Sign in</p>"


def html_page(request: Request) -> tuple[int, bytes, dict[str, str]]:
    """What a JUPYTERHUB_API_URL pointing at the hub's pages (not its API) answers, with a
    login cookie as the hub's pages set one."""
    headers = {"Content-Type": "text/html", "Set-Cookie": "jupyterhub-session-id=abc; Path=/"}
    return 200, PAGE, headers


@dataclass
class HtmlHub:
    server: JsonServer

    @property
    def cookies(self) -> list[str | None]:
        """Every request's Cookie header."""
        return [request.headers.get("Cookie") for request in self.server.requests]


@pytest.fixture
def html_hub(settings, db):
    with JsonServer(html_page) as server:
        settings.JUPYTERHUB_API_URL = f"{server.url}/hub"
        cache.clear()
        yield HtmlHub(server)


def test_a_hub_answering_a_page_instead_of_json_is_503_with_a_sentence(html_hub):
    response = APIClient().get("/api/v1/me", HTTP_AUTHORIZATION="token hub-token")
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "JupyterHub's answer when asked who owns your token could not be read."
    )
    assert response["Retry-After"]


def test_a_cookie_the_hub_sets_never_travels_with_the_next_token(html_hub):
    """The client keeps connections, not cookies: one user's answer cannot speak for the
    next user's token."""
    for token in ("sam-token", "tia-token"):
        APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"token {token}")
    assert html_hub.cookies == [None, None]
