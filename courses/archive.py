"""Safe reading of uploaded archives and manifests.

An upload is a manifest (a JSON list of ``{path, size, sha256}``) and a tar.gz archive read
as a stream: members are checked and handed on one by one, never extracted to a directory
and never held whole in memory. Limits on the number of files, a single file's size and the
total size are enforced while reading, so a decompression bomb stops at the first byte
over the limit. Every rejection names the offending path and the rule it broke.
"""

from __future__ import annotations

import json
import re
import tarfile
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings

from .exceptions import BadArchive, TooLarge

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PATH_LENGTH = 1024
CHUNK_SIZE = 1024 * 1024
# tarfile reads a pax or GNU long-name header into memory whole, and each one in a row is a
# level of recursion: both are bounded before tarfile reads anything.
MAX_HEADER_SIZE = 64 * 1024
MAX_HEADER_CHAIN = 8
# What tarfile raises (beyond its own errors) on archives whose headers lie.
_READ_ERRORS = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    OSError,
    ValueError,
    IndexError,
    RecursionError,
)


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_file_size: int
    max_total_size: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_files=settings.EXCHANGE_MAX_BUNDLE_FILES,
            max_file_size=settings.EXCHANGE_MAX_FILE_SIZE,
            max_total_size=settings.EXCHANGE_MAX_BUNDLE_SIZE,
        )


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    sha256: str


def normalize_path(raw: str) -> str:
    """A bundle-relative POSIX path, or BadArchive naming the path and the rule it breaks."""
    if not isinstance(raw, str):
        raise BadArchive(f"Path {raw!r} is not a string.")
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    path = raw.replace("\\", "/")
    if path.startswith("./"):
        path = path[2:]
    if path == "" or path.strip() == "":
        raise BadArchive("An empty file name is not allowed.")
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        raise BadArchive(f"Path {shown!r} contains control characters.")
    if any(unicodedata.category(ch) == "Cs" for ch in path):
        # Lone surrogates come from JSON escapes or from names that are not UTF-8.
        raise BadArchive(f"Path {shown!r} is not valid UTF-8 text.")
    hidden = [ch for ch in path if unicodedata.category(ch) == "Cf"]
    if hidden:
        # Direction overrides and zero-width characters make a name show as another one:
        # "a\u202etxt.exe" reads "aexe.txt".
        ch = hidden[0]
        visible = "".join(f"\\u{ord(c):04x}" if c in hidden else c for c in shown)
        raise BadArchive(
            f"Path '{visible}' contains U+{ord(ch):04X} "
            f"({unicodedata.name(ch, 'a format character')}), an invisible formatting "
            "character that can make a file name look like another; rename the file without it."
        )
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise BadArchive(f"Path {shown!r} is absolute; paths must be relative to the assignment.")
    if path[1:2] == ":":
        # Windows reads any "X:" in front as a drive (Python's ntpath does, whatever X is),
        # so a grader extracting the files there would not find this one in its folder.
        raise BadArchive(
            f"Path {shown!r} starts with {path[:2]!r}, which Windows reads as a drive; "
            "rename the file so that its name does not have ':' as its second character."
        )
    if len(path) > MAX_PATH_LENGTH:
        raise BadArchive(f"Path {shown!r} is longer than {MAX_PATH_LENGTH} characters.")
    parts = path.split("/")
    for part in parts:
        if part == "..":
            raise BadArchive(f"Path {shown!r} contains '..', which could leave the assignment.")
        if part in ("", "."):
            raise BadArchive(f"Path {shown!r} has an empty or '.' component.")
    return "/".join(parts)


def parse_manifest(raw: str | bytes | list[Any], limits: Limits) -> list[ManifestEntry]:
    """The manifest's entries, checked for shape, paths, duplicates and limits."""
    if isinstance(raw, (str, bytes)):
        try:
            data = json.loads(raw)
        except RecursionError as exc:
            raise BadArchive(
                "The manifest is nested too deeply to be a list of files.", code="bad_manifest"
            ) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadArchive(
                f"The manifest is not valid JSON: {exc}.", code="bad_manifest"
            ) from exc
    else:
        data = raw
    if not isinstance(data, list):
        raise BadArchive(
            "The manifest must be a JSON list of {path, size, sha256} objects.", code="bad_manifest"
        )
    if len(data) > limits.max_files:
        raise TooLarge(
            f"The manifest lists {len(data)} files; at most {limits.max_files} are allowed."
        )
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    size_of: dict[str, int] = {}
    total = 0
    for index, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"path", "size", "sha256"}:
            raise BadArchive(
                f"Manifest entry {index} must have exactly the keys path, size and sha256.",
                code="bad_manifest",
            )
        path = normalize_path(item["path"])
        size, sha = item["size"], item["sha256"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadArchive(
                f"Manifest entry {path!r}: size must be a whole number of bytes.",
                code="bad_manifest",
            )
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            raise BadArchive(
                f"Manifest entry {path!r}: sha256 must be 64 lowercase hexadecimal digits.",
                code="bad_manifest",
            )
        if path in seen:
            raise BadArchive(f"Path {path!r} appears twice in the manifest.", code="bad_manifest")
        # The same bytes have one size: a second size for a hash would let a file sent once
        # be recorded, and served to every course holding those bytes, with a size that lies.
        if size_of.setdefault(sha, size) != size:
            raise BadArchive(
                f"Manifest entry {path!r}: SHA-256 {sha} is listed with two sizes "
                f"({size_of[sha]} and {size} bytes); the same bytes have one size.",
                code="bad_manifest",
            )
        if size > limits.max_file_size:
            raise TooLarge(
                f"File {path!r} is {size} bytes; the limit for one file is "
                f"{limits.max_file_size} bytes."
            )
        total += size
        if total > limits.max_total_size:
            raise TooLarge(
                f"The files add up to more than {limits.max_total_size} bytes, the limit for "
                "one upload."
            )
        seen.add(path)
        entries.append(ManifestEntry(path=path, size=size, sha256=sha))
    for entry in entries:
        parent = entry.path.rpartition("/")[0]
        while parent:
            if parent in seen:
                raise BadArchive(
                    f"Path {entry.path!r} needs a folder {parent!r}, but {parent!r} is a file "
                    "in the manifest.",
                    code="bad_manifest",
                )
            parent = parent.rpartition("/")[0]
    return entries


class _CheckedTarInfo(tarfile.TarInfo):
    """A tar header that refuses, before tarfile reads them, the header blocks that would
    make it buffer unbounded bytes or recurse without end: oversized pax and GNU long-name
    headers, long chains of them, sparse files and negative sizes."""

    _EXTENDED = (
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    )

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.size < 0:
            raise BadArchive(f"Archive member {self.name!r} has a negative size.")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise BadArchive(
                f"Archive member {self.name!r} is a sparse file; only files are allowed."
            )
        chain = getattr(tarfile_, "_header_chain", 0)
        if self.type in self._EXTENDED:
            if self.size > MAX_HEADER_SIZE:
                raise BadArchive(
                    f"The archive has a header block of {self.size} bytes; at most "
                    f"{MAX_HEADER_SIZE} are allowed."
                )
            if chain >= MAX_HEADER_CHAIN:
                raise BadArchive(
                    f"The archive has more than {MAX_HEADER_CHAIN} header blocks in a row."
                )
            tarfile_._header_chain = chain + 1  # type: ignore[attr-defined]
        else:
            tarfile_._header_chain = 0  # type: ignore[attr-defined]
        return super()._proc_member(tarfile_)  # type: ignore[misc]

    def _refuse_sparse(self, *args: Any) -> None:
        raise BadArchive(f"Archive member {self.name!r} is a sparse file; only files are allowed.")

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


class _LimitedReader:
    """A member's stream that counts bytes against the upload's limits while it is read."""

    def __init__(self, raw: IO[bytes], path: str, counter: list[int], limits: Limits) -> None:
        self._raw = raw
        self._path = path
        self._counter = counter
        self._limits = limits
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(min(size, CHUNK_SIZE) if size and size > 0 else CHUNK_SIZE)
        except _READ_ERRORS as exc:
            raise BadArchive(f"The archive breaks off inside {self._path!r}: {exc}.") from exc
        self._read += len(data)
        self._counter[0] += len(data)
        if self._read > self._limits.max_file_size:
            raise TooLarge(
                f"File {self._path!r} is larger than {self._limits.max_file_size} bytes, the "
                "limit for one file."
            )
        if self._counter[0] > self._limits.max_total_size:
            raise TooLarge(
                f"The archive holds more than {self._limits.max_total_size} bytes, the limit "
                "for one upload."
            )
        return data


class _Gunzip:
    """The decompressed bytes of a gzip stream, never more per read than asked for: a
    decompression bomb costs no more memory than an honest archive. (tarfile's own "r|gz"
    reads 10 KiB at a time and inflates each read whole.)"""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def read(self, size: int) -> bytes:
        pieces = []
        wanted = size
        while wanted > 0 and not self._inflate.eof:
            compressed = self._inflate.unconsumed_tail or self._raw.read(CHUNK_SIZE)
            if not compressed:
                break  # cut short: tarfile says where
            piece = self._inflate.decompress(compressed, wanted)
            pieces.append(piece)
            wanted -= len(piece)
        return b"".join(pieces)


def iter_archive(fileobj: IO[bytes], limits: Limits) -> Iterator[tuple[str, int, IO[bytes]]]:
    """Yield ``(path, size, stream)`` for each regular file of a tar.gz, in archive order.

    The caller reads each stream before asking for the next member. Directories are skipped
    (but counted, like files, against the limit on the number of files); links, devices,
    sparse files, absolute or escaping paths, duplicates and anything over a limit are
    rejected with a sentence that names the path. Memory stays bounded whatever the headers
    claim: no header block over ``MAX_HEADER_SIZE`` is read, and no member is kept after the
    next one is read.
    """
    counter = [0]
    seen: set[str] = set()
    files = directories = 0
    try:
        with tarfile.open(
            fileobj=_Gunzip(fileobj), mode="r|", tarinfo=_CheckedTarInfo, bufsize=CHUNK_SIZE
        ) as archive:
            while (member := archive.next()) is not None:
                # tarfile keeps every member it has read; a stream needs none of them.
                archive.members.clear()
                name = member.name
                if member.isdir():
                    directories += 1
                    if directories > limits.max_files:
                        raise TooLarge(
                            f"The archive holds more than {limits.max_files} folders, the limit "
                            "for one upload."
                        )
                    if name.strip("/") not in ("", "."):
                        normalize_path(name.rstrip("/"))
                    continue
                path = normalize_path(name)
                if member.issym() or member.islnk():
                    raise BadArchive(f"Archive member {path!r} is a link; only files are allowed.")
                if not member.isfile():
                    raise BadArchive(
                        f"Archive member {path!r} is not a regular file (device, FIFO or other)."
                    )
                if member.size < 0:
                    raise BadArchive(f"Archive member {path!r} has a negative size.")
                if path in seen:
                    raise BadArchive(f"Path {path!r} appears twice in the archive.")
                seen.add(path)
                files += 1
                if files > limits.max_files:
                    raise TooLarge(
                        f"The archive holds more than {limits.max_files} files, the limit for "
                        "one upload."
                    )
                if member.size > limits.max_file_size:
                    raise TooLarge(
                        f"File {path!r} is {member.size} bytes; the limit for one file is "
                        f"{limits.max_file_size} bytes."
                    )
                if counter[0] + member.size > limits.max_total_size:
                    raise TooLarge(
                        f"The archive holds more than {limits.max_total_size} bytes, the limit "
                        "for one upload."
                    )
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file always has a stream
                yield path, member.size, _LimitedReader(stream, path, counter, limits)  # type: ignore[misc]
        # Read the body to its end (the tar's closing blocks, the gzip trailer, and for an
        # archive read from the request, what follows it in the form), storing none of it.
        while fileobj.read(CHUNK_SIZE):
            pass
    except _READ_ERRORS as exc:
        raise BadArchive(f"The archive is not a readable tar.gz file: {exc}.") from exc
