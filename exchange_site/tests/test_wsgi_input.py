"""gunicorn's request body read through ``FastInput``: the same bytes, in far fewer socket
reads, and gunicorn's own reads left as they were."""

from __future__ import annotations

import os
import socket
import threading

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from exchange_site.wsgi_input import RECV_SIZE, FastInput, _fast, fast_input

SIZE = 4 * 1024 * 1024


class CountingSocket:
    """A real socket that counts its reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = 0

    def recv(self, size: int) -> bytes:
        self.reads += 1
        return self.sock.recv(size)


def _body(data: bytes) -> tuple[Body, CountingSocket, threading.Thread]:
    ours, theirs = socket.socketpair()
    sender = threading.Thread(target=lambda: (theirs.sendall(data), theirs.close()))
    sender.start()
    counting = CountingSocket(ours)
    return Body(LengthReader(SocketUnreader(counting), len(data))), counting, sender


def _read_all(stream, size: int) -> bytes:
    pieces = []
    while piece := stream.read(size):
        pieces.append(piece)
    return b"".join(pieces)


def test_fast_input_reads_the_same_bytes_in_far_fewer_socket_reads():
    data = os.urandom(SIZE)
    body, counting, sender = _body(data)
    fast = _fast(body)
    assert isinstance(fast, FastInput)
    assert _read_all(fast, 1024 * 1024) == data
    sender.join()
    # gunicorn's own Body.read takes 8 KiB per socket read: 512 reads for 4 MiB.
    assert counting.reads <= SIZE // (64 * 1024)
    assert body.reader.unreader.mxchunk == 8192  # gunicorn's own reads keep their size
    assert RECV_SIZE > 8192


def test_bytes_gunicorn_already_buffered_come_first():
    data = b"first line\n" + os.urandom(300_000)
    body, _, sender = _body(data)
    fast = FastInput(body)
    assert fast.readline() == b"first line\n"
    assert _read_all(fast, 65536) == data[len(b"first line\n") :]
    sender.join()


def test_other_inputs_are_left_alone():
    import io

    stream = io.BytesIO(b"x")
    assert _fast(stream) is stream
    seen = {}

    def app(environ, start_response):
        seen["input"] = environ["wsgi.input"]
        return [b""]

    fast_input(app)({"wsgi.input": stream}, None)
    assert seen["input"] is stream


def test_lines_are_read_by_gunicorn():
    data = b"one\ntwo\nthree\n"
    body, _, sender = _body(data)
    fast = FastInput(body)
    assert fast.readlines() == [b"one\n", b"two\n", b"three\n"]
    sender.join()
    body, _, sender = _body(data)
    assert list(FastInput(body)) == [b"one\n", b"two\n", b"three\n"]
    sender.join()
