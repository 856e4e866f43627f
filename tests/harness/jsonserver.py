"""A JSON HTTP server on 127.0.0.1 for tests, standing in for another service (JupyterHub's
API, an exchange that answers 503, a Kubernetes API): one function decides every answer.
Runs in a thread of the test process and remembers the requests it was sent.

The function returns ``(status, body)`` or ``(status, body, headers)``. A body that is
``bytes`` is sent as it is, anything else as JSON; the status ``"cut"`` promises more bytes
than it sends and hangs up (a connection lost mid-answer); ``"stall"`` does the same after
a second of silence (a server that stops sending).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}

    @property
    def token(self) -> str:
        """The credential of an ``Authorization: token X`` or ``Bearer X`` header."""
        header = self.headers.get("Authorization", "")
        return header.split(" ", 1)[1] if " " in header else ""

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


Answer = tuple[Any, object] | tuple[Any, object, dict[str, str]]
Respond = Callable[[Request], Answer]


def script(answers: list[Answer]) -> Respond:
    """Answer each request with the next of ``answers`` (then 200 ``{}``)."""
    pending = list(answers)
    return lambda request: pending.pop(0) if pending else (200, {})


class JsonServer:
    """Answers every request with ``respond(request)``; ``requests`` holds what it was sent."""

    def __init__(self, respond: Respond, *, port: int = 0) -> None:
        self.requests: list[Request] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=self.rfile.read(length) if length else b"",
                )
                seen.append(request)
                status, body, headers = (*respond(request), {})[:3]
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                if status in ("cut", "stall"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data) + 100))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    if status == "stall":
                        time.sleep(1)
                    self.close_connection = True
                    return
                self.send_response(status)
                if not isinstance(body, bytes):
                    headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/hub/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> JsonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
