"""Free TCP ports on 127.0.0.1 for the servers the tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int, *, offset: int = 10000) -> list[int]:
    """``count`` distinct ports p with p and p + ``offset`` both free (a server whose gRPC
    port is its HTTP port + 10000, as SeaweedFS's are)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + offset < 65536 and port not in ports and port_is_free(port + offset):
            ports.append(port)
    return ports
