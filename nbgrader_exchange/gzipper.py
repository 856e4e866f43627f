"""A gzip stream whose compression is chosen file by file.

An upload is one tar.gz (what every server version reads), but its files differ: notebooks
shrink to a fifth, while data that is already compressed (images, archives, most binary
data sets) does not shrink at all and costs gzip about 40 MB/s of CPU for nothing; stored
as it is, it goes at disk speed. ``GzipWriter`` writes one gzip member whose deflate data is
made of pieces, each from its own compressor at its own level: a piece ends with a full
flush (byte-aligned, no back-references across it), so the pieces join into one valid
deflate stream that any gzip reader decodes. ``level_for`` decides per file from a sample.
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import IO

# Files smaller than this are always compressed: too small for the decision to matter.
SAMPLE_FROM = 32 * 1024
SAMPLE_SIZE = 16 * 1024
# Kept compressed only if the sample shrinks to at most this fraction. Notebooks of code
# and text shrink to 0.05-0.2; base64 (plots embedded in a notebook's outputs, encoded
# data) to 0.76 at best, a quarter saved for gzip's CPU on both ends of a transfer that
# stays inside the cluster: sent stored.
WORTH_IT = 0.7
STORED = 0
FAST = 1


def level_for(sample: bytes, size: int) -> int:
    """FAST for a file worth compressing, STORED for one that would not shrink by a tenth
    (judged from its first SAMPLE_SIZE bytes)."""
    if size < SAMPLE_FROM or not sample:
        return FAST
    packed = len(zlib.compress(sample[:SAMPLE_SIZE], FAST))
    return FAST if packed <= WORTH_IT * min(len(sample), SAMPLE_SIZE) else STORED


class GzipWriter:
    """A write-only file that gzips what is written into ``target`` at ``level`` (which may
    change between writes); ``close`` writes the trailer (not closing ``target``)."""

    def __init__(self, target: IO[bytes], level: int = FAST) -> None:
        self._target = target
        self._crc = 0
        self._size = 0
        self._level = level
        self._compressor = self._new(level)
        # gzip header: magic, deflate, no flags, mtime, no extra flags, OS unknown.
        target.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time())) + b"\x00\xff")

    @staticmethod
    def _new(level: int) -> zlib._Compress:
        return zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)

    @property
    def level(self) -> int:
        return self._level

    @level.setter
    def level(self, level: int) -> None:
        if level != self._level:
            self._target.write(self._compressor.flush(zlib.Z_FULL_FLUSH))
            self._compressor = self._new(level)
            self._level = level

    def write(self, data: bytes) -> int:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._target.write(self._compressor.compress(data))
        return len(data)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._target.write(self._compressor.flush(zlib.Z_FINISH))
        self._target.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
