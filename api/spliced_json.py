"""Answers that carry file bytes (``?inline=true``), encoded at memory speed, in one of two
forms.

**JSON** (``application/json``, what any client gets): each file's bytes are a base64
string, ``content``. Python's JSON encoder looks at every character of every string for
something to escape: for a student's feedback (150 KB of files, 200 KB of base64) that was
a millisecond of the service's CPU per answer, more than its database reads. Base64 text
never needs escaping, so the answer is encoded with a short placeholder in each such
string's place, and the texts are put in afterwards, in one pass over the encoded answer.

A placeholder holds a random nonce drawn for each answer, so no string that reaches the
answer from elsewhere (a path, a notebook's name) can stand for one.

**JSON and bytes** (``INLINE_BYTES_TYPE``, for a client that lists it in ``Accept``, as the
plugin does): the JSON document on one line, a newline (``\n``), then the files' bytes one
after another; each file that has its bytes there says where they start, ``content_at``,
counted from the byte after the newline (its ``size`` says how many). Base64 made a third
more bytes to send, and encoding and decoding it cost the service 0.3 ms and the client
0.8 ms of CPU for the 150 KB of a student's feedback
(bench/RESULTS.md, "Feedback's bytes without base64"). Errors are JSON either way.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

# The media type of an answer in JSON and bytes; a client asks for it in ``Accept``.
INLINE_BYTES_TYPE = "application/vnd.nbgrader-exchange.inline"

# A placeholder as the encoder writes it ("\x00" as the six characters \u0000), with the
# nonce of whichever answer it claims to be from: one pattern for every answer, compiled
# once (one per answer would fill the ``re`` module's cache).
_PLACEHOLDER = re.compile(rb'"\\u0000spliced:([0-9a-f]{16}):(\d+)"')


def wants_inline_bytes(request: Request) -> bool:
    """Whether the request's ``Accept`` lists INLINE_BYTES_TYPE (with a quality above 0)."""
    accept = request.META.get("HTTP_ACCEPT", "")
    if INLINE_BYTES_TYPE not in accept:
        return False
    for item in accept.split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        if media_type.lower() != INLINE_BYTES_TYPE:
            continue
        quality = next((p[2:].strip() for p in params if p.lower().startswith("q=")), "1")
        try:
            return float(quality) > 0
        except ValueError:
            return True  # a malformed quality is read as the default, 1
    return False


class Spliced:
    """The file bytes of one answer: in JSON, each text behind its placeholder; in JSON and
    bytes (``raw``), after the document, each at its offset."""

    def __init__(self, *, raw: bool = False) -> None:
        self.nonce = secrets.token_hex(8)
        self.raw = raw
        self.texts: list[bytes] = []
        self._length = 0

    def attach(self, data: bytes) -> int:
        """Where ``data`` will start after the document, in an answer of JSON and bytes."""
        assert self.raw
        self.texts.append(data)
        at = self._length
        self._length += len(data)
        return at

    def placeholder(self, text: bytes) -> str:
        """A string to put in the answer where ``text`` goes: what ``base64.b64encode``
        gave, never anything else (it goes in unescaped)."""
        assert not self.raw
        self.texts.append(text)
        return f"\x00spliced:{self.nonce}:{len(self.texts) - 1}"

    def splice(self, encoded: bytes) -> bytes:
        """The encoded answer with every placeholder's text in its place; or, in JSON and
        bytes, the document, a newline and the bytes (``encoded`` has no newline: it is
        rendered without indenting, and JSON escapes a newline in a string)."""
        if self.raw:
            return b"".join([encoded, b"\n", *self.texts])
        if not self.texts:
            return encoded
        # split() alternates text and the two captured groups: rebuild with the texts of
        # this answer's placeholders in place, and any other string as it was.
        parts = _PLACEHOLDER.split(encoded)
        out = [parts[0]]
        nonce = self.nonce.encode()
        for at in range(1, len(parts), 3):
            given, number = parts[at], parts[at + 1]
            if given == nonce:
                out += (b'"', self.texts[int(number)], b'"')
            else:
                out.append(b'"\\u0000spliced:' + given + b":" + number + b'"')
            out.append(parts[at + 2])
        return b"".join(out)


class SplicedJSONRenderer(JSONRenderer):
    """``JSONRenderer`` that puts in the texts of the response's ``spliced`` (a
    ``Spliced``), if it has one."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        context = renderer_context if renderer_context is not None else {}
        response = context.get("response")
        spliced = getattr(response, "spliced", None)
        if spliced is not None and spliced.raw:
            # One line, whatever indent an ``Accept: application/json; indent=`` asked for.
            accepted_media_type = self.media_type
            context.pop("indent", None)
        encoded = super().render(data, accepted_media_type, context)
        if spliced is None:
            return encoded
        body = spliced.splice(encoded)
        response.spliced = None  # type: ignore[union-attr]
        _out_of_the_cycles(context, response)
        return body


def _out_of_the_cycles(context: dict[str, Any], response: Any) -> None:
    """Let the answer be freed as soon as it is sent. DRF leaves every response in
    reference cycles (its renderer context names the response, and the view, which names
    its request, which names the view, holds it as ``view.response``), so it lives until
    the garbage collector's next full pass. For a small answer that does not matter; an
    answer with files inline holds a megabyte or more, and under a rush the workers held
    hundreds of them: 200 MB more at the peak (bench/RESULTS.md, "The release's notebooks
    in the manifest"). Out of the cycles, the answer goes when the server lets it go."""
    context.pop("response", None)
    view = context.get("view")
    if getattr(view, "response", None) is response:
        view.response = None
