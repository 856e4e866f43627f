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
        # The encoder writes "\x00" as the six characters \u0000.
        pattern = re.compile(rb'"\\u0000spliced:' + self.nonce.encode() + rb':(\d+)"')
        parts = pattern.split(encoded)
        # split() alternates text and the captured index: rebuild with the texts in place.
        for number in range(1, len(parts), 2):
            parts[number] = b'"' + self.texts[int(parts[number])] + b'"'
        return b"".join(parts)


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
        response = (renderer_context or {}).get("response")
        spliced = getattr(response, "spliced", None)
        return spliced.splice(encoded) if spliced is not None else encoded
