"""JSON answers that carry file bytes as base64 (``?inline=true``), encoded at memory speed.

Python's JSON encoder looks at every character of every string for something to escape:
for a student's feedback (150 KB of files, 200 KB of base64) that was a millisecond of the
service's CPU per answer, more than its database reads. Base64 text never needs escaping,
so the answer is encoded with a short placeholder in each such string's place, and the
texts are put in afterwards, in one pass over the encoded answer.

A placeholder holds a random nonce drawn for each answer, so no string that reaches the
answer from elsewhere (a path, a notebook's name) can stand for one.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from rest_framework.renderers import JSONRenderer

# A placeholder as the encoder writes it ("\x00" as the six characters \u0000), with the
# nonce of whichever answer it claims to be from: one pattern for every answer, compiled
# once (one per answer would fill the ``re`` module's cache).
_PLACEHOLDER = re.compile(rb'"\\u0000spliced:([0-9a-f]{16}):(\d+)"')


class Spliced:
    """The texts of one answer, each behind its placeholder."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(8)
        self.texts: list[bytes] = []

    def placeholder(self, text: bytes) -> str:
        """A string to put in the answer where ``text`` goes: what ``base64.b64encode``
        gave, never anything else (it goes in unescaped)."""
        self.texts.append(text)
        return f"\x00spliced:{self.nonce}:{len(self.texts) - 1}"

    def splice(self, encoded: bytes) -> bytes:
        """The encoded answer with every placeholder's text in its place."""
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
        encoded = super().render(data, accepted_media_type, renderer_context)
        context = renderer_context if renderer_context is not None else {}
        response = context.get("response")
        spliced = getattr(response, "spliced", None)
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
