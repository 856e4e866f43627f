"""A large file streams through the archive reader into storage in bounded memory: the
Python heap's peak stays a small fraction of the file's size."""

from __future__ import annotations

import hashlib
import tarfile
import tracemalloc

from courses import blobstore
from courses.archive import Limits, iter_archive

SIZE = 200 * 1024 * 1024
BLOCK = 1024 * 1024


class _Generated:
    """A file-like object producing ``size`` bytes block by block, never all at once."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.digest = hashlib.sha256()
        self.index = 0

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = min(self.left, size if size and size > 0 else BLOCK)
        # Varying bytes (a counter per 32-byte line) keep gzip honest without costing much.
        line = self.index.to_bytes(8, "big") * 4
        data = (line * (want // len(line) + 1))[:want]
        self.index += 1
        self.left -= want
        self.digest.update(data)
        return data


def test_a_200_mib_member_streams_to_storage_in_bounded_memory(tmp_path):
    archive_path = tmp_path / "big.tar.gz"
    source = _Generated(SIZE)
    with tarfile.open(archive_path, mode="w:gz", compresslevel=1) as archive:
        info = tarfile.TarInfo("data/big.bin")
        info.size = SIZE
        archive.addfile(info, source)

    limits = Limits(max_files=10, max_file_size=SIZE, max_total_size=SIZE)
    tracemalloc.start()
    try:
        with open(archive_path, "rb") as handle:
            staged = [
                (path, size, blobstore.stage(stream))
                for path, size, stream in iter_archive(handle, limits)
            ]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    [(path, size, file)] = staged
    assert (path, size, file.size) == ("data/big.bin", SIZE, SIZE)
    assert file.sha256 == source.digest.hexdigest()
    blobstore.discard(file)
    assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a {SIZE >> 20} MiB file"
