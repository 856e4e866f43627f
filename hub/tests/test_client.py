"""The hub client's error mapping where the hub answers something that is not its API: a
token check then answers 503 with a sentence, never a crash or a 401."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient


class HtmlPage(BaseHTTPRequestHandler):
    """What a JUPYTERHUB_API_URL pointing at the hub's pages (not its API) answers, with a
    login cookie as the hub's pages set one; every request's Cookie header is kept."""

    cookies: list[str | None] = []

    def do_GET(self) -> None:
        self.cookies.append(self.headers.get("Cookie"))
        body = b"<!DOCTYPE html><title>JupyterHub</title><p>Sign in</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Set-Cookie", "jupyterhub-session-id=abc; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_hub(settings, db):
    HtmlPage.cookies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.JUPYTERHUB_API_URL = f"http://127.0.0.1:{server.server_address[1]}/hub"
    cache.clear()
    yield HtmlPage
    server.shutdown()
    server.server_close()


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
