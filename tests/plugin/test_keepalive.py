"""A server may close a kept-alive connection (its idle timeout) at the very moment the
client reuses it. A request that is safe to repeat is then retried; one that is not (an
upload) must never meet that race, so it goes over a new connection."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from nbgrader_exchange.client import ExchangeClient
from nbgrader_exchange.files import entry_from_bytes


class ClosesReusedConnections:
    """An HTTP/1.1 server that answers the first request of a connection and hangs up,
    without an answer, on any later request over the same connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            for number in range(2):
                line = reader.readline()
                if not line:
                    return
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                reader.read(length)
                self.requests.append(line.decode().split()[0])
                if number == 1:
                    return  # the idle timeout struck: close, no answer
                body = json.dumps({"id": 1, "files": []}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[ClosesReusedConnections]:
    server = ClosesReusedConnections()
    yield server
    server.close()


def test_an_upload_after_a_request_never_reuses_its_connection(server):
    client = ExchangeClient(server.url, "t", retries=0)
    assert client.get("courses/c/assignments/a", what="look") == {"id": 1, "files": []}
    result = client.upload_bundle(
        "courses/c/assignments/a/submissions", [entry_from_bytes("a.txt", b"x")], what="submit"
    )
    assert result == {"id": 1, "files": []}
    assert server.requests == ["GET", "POST"]
    assert server.connections == 2
    client.close()


def test_a_safe_request_on_a_connection_closed_under_it_is_retried(server):
    client = ExchangeClient(server.url, "t", retries=1, backoff=0)
    assert client.get("courses", what="list") == {"id": 1, "files": []}
    assert client.get("courses", what="list") == {"id": 1, "files": []}
    assert server.requests == ["GET", "GET", "GET"]
    client.close()
