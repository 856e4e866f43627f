"""Property tests of the upload reader: whatever an uploader sends (any path, any manifest,
any archive, headers that lie, decompression bombs), the reader hands on only safe,
distinct, bundle-relative paths, never more bytes than the limits allow, and fails only with
BadArchive or TooLarge (a 400 or a 413, never a 500).

The suite tries 100 examples per property; a deeper search, outside CI:
``EXCHANGE_FUZZ_EXAMPLES=5000 .venv/bin/pytest courses/tests/test_archive_fuzz.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import ntpath
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import unicodedata
import zlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from courses import services
from courses.archive import (
    MAX_PATH_LENGTH,
    SHA256_RE,
    Limits,
    iter_archive,
    normalize_path,
    parse_manifest,
)
from courses.exceptions import BadArchive, TooLarge

LIMITS = Limits(max_files=6, max_file_size=3000, max_total_size=6000)
# 100 examples per property in the suite; EXCHANGE_FUZZ_EXAMPLES=5000 for a deeper search.
FUZZ = settings(
    max_examples=int(os.environ.get("EXCHANGE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- what "safe" means, written independently of the code under test ----------------------


def assert_safe(path: str) -> None:
    """A path that stays inside its bundle on POSIX and on Windows, and can be stored."""
    assert isinstance(path, str) and path
    path.encode("utf-8")  # no lone surrogates: the database could not store them
    assert len(path) <= MAX_PATH_LENGTH
    assert "\\" not in path
    assert not path.startswith("/")
    assert not re.match(r"^[A-Za-z]:", path)
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in path)
    assert all(part not in ("", ".", "..") for part in path.split("/"))
    assert posixpath.normpath(posixpath.join("/bundle", path)).startswith("/bundle/")
    assert ntpath.normpath(ntpath.join("C:\\bundle", path)).startswith("C:\\bundle\\")
    assert normalize_path(path) == path


# --- strategies ---------------------------------------------------------------------------

any_char = st.characters(exclude_categories=())  # surrogates and control characters too
tricky_segment = st.sampled_from(
    ["..", ".", "", " ", "a", "b.ipynb", "C:", "c:", "~", "\\", "..\\..", "\x00", "\x7f", "\ud800"]
)
segment = st.one_of(tricky_segment, st.text(any_char, max_size=6))
raw_path = st.one_of(
    st.text(any_char, max_size=30),
    st.builds(
        lambda prefix, parts, sep: prefix + sep.join(parts),
        st.sampled_from(["", "", "/", "./", "\\", "C:", "C:\\", "//", "../"]),
        st.lists(segment, max_size=5),
        st.sampled_from(["/", "\\"]),
    ),
    st.integers(min_value=MAX_PATH_LENGTH - 2, max_value=MAX_PATH_LENGTH + 2).map(
        lambda n: "x" * n
    ),
)
clean_segment = st.text(
    st.characters(categories=["L", "N"], include_characters="-_. ()"), min_size=1, max_size=12
).filter(lambda s: s not in (".", "..") and s.strip() and not re.match(r"^[A-Za-z]:", s))
clean_path = st.lists(clean_segment, min_size=1, max_size=4).map("/".join)
# Few names, so that duplicates and file/folder clashes come up often.
tiny_path = st.lists(st.sampled_from(["a", "b", "./a", "a\\b"]), min_size=1, max_size=3).map(
    "/".join
)

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_char, max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
size_value = st.one_of(
    st.integers(min_value=-2, max_value=LIMITS.max_total_size + 10),
    st.integers(),
    st.sampled_from([True, 1.0, "1", None]),
)
sha_value = st.one_of(
    st.binary(max_size=4).map(lambda b: hashlib.sha256(b).hexdigest()),
    st.text(max_size=70),
    st.just("A" * 64),
)
entry = st.one_of(
    st.fixed_dictionaries(
        {"path": raw_path | clean_path | tiny_path, "size": size_value, "sha256": sha_value}
    ),
    st.fixed_dictionaries(
        {"path": raw_path | clean_path | tiny_path, "size": size_value, "sha256": sha_value},
        optional={"extra": json_value},
    ),
    json_value,
)
manifest_value = st.one_of(st.lists(entry, max_size=LIMITS.max_files + 2), json_value)

KINDS = [
    tarfile.REGTYPE,
    tarfile.AREGTYPE,
    tarfile.CONTTYPE,
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.FIFOTYPE,
    tarfile.GNUTYPE_SPARSE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    b"Z",
]


@st.composite
def tar_member(draw: st.DrawFn) -> bytes:
    """One header (possibly lying about its size) and its data blocks."""
    name = draw(st.one_of(clean_path, raw_path, tiny_path))
    kind = draw(st.sampled_from(KINDS) | st.just(tarfile.REGTYPE))
    data = draw(st.binary(max_size=LIMITS.max_file_size + 100))
    size = draw(
        st.one_of(
            st.just(len(data)),
            st.integers(min_value=0, max_value=LIMITS.max_total_size * 2),
            st.integers(min_value=0, max_value=8**11 - 1),
        )
    )
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = draw(st.sampled_from(["", "/etc/passwd", "../x", "a"]))
    if fmt == tarfile.PAX_FORMAT and draw(st.booleans()):
        info.pax_headers = draw(
            st.dictionaries(
                st.sampled_from(["path", "size", "linkpath", "GNU.sparse.map", "comment"]),
                st.text(max_size=12) | st.integers(-5, 10**6).map(str) | tiny_path,
                max_size=2,
            )
        )
    for candidate in (fmt, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        try:
            header = info.tobuf(format=candidate, encoding="utf-8", errors="surrogateescape")
            break
        except (ValueError, UnicodeEncodeError):
            continue
    else:
        assume(False)
    padding = b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    return header + data + padding


@st.composite
def tar_gz(draw: st.DrawFn) -> bytes:
    raw = b"".join(draw(st.lists(tar_member(), max_size=LIMITS.max_files + 2)))
    if draw(st.booleans()):
        raw += b"\0" * 1024
    raw += draw(st.binary(max_size=20))
    raw = bytearray(raw)
    for position, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)))):
        if raw:
            raw[position % len(raw)] = value
    if draw(st.booleans()) and raw:
        raw = raw[: draw(st.integers(0, len(raw)))]
    packed = bytearray(gzip.compress(bytes(raw), compresslevel=1))
    for position, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)))):
        packed[position % len(packed)] = value
    return bytes(packed)


def consume(data: bytes, limits: Limits = LIMITS) -> dict[str, bytes]:
    """Read every member as a storing caller would, checking each invariant on the way."""
    files: dict[str, bytes] = {}
    total = 0
    for path, size, stream in iter_archive(io.BytesIO(data), limits):
        assert_safe(path)
        assert path not in files
        assert 0 <= size <= limits.max_file_size
        chunks = []
        while chunk := stream.read(1024):
            chunks.append(chunk)
            total += len(chunk)
            assert total <= limits.max_total_size
        body = b"".join(chunks)
        assert len(body) == size
        files[path] = body
        assert len(files) <= limits.max_files
    return files


# --- properties ---------------------------------------------------------------------------


@FUZZ
@given(raw_path)
@example("0:")  # found by a deep search: Windows reads any "X:" in front as a drive
def test_normalized_paths_never_leave_the_bundle(raw):
    try:
        path = normalize_path(raw)
    except BadArchive:
        return
    assert_safe(path)


@FUZZ
@given(clean_path, st.sampled_from(["", "./"]), st.booleans())
def test_ordinary_names_are_accepted_as_they_are(path, prefix, backslashes):
    sent = prefix + (path.replace("/", "\\") if backslashes else path)
    assert normalize_path(sent) == path


@FUZZ
@given(st.one_of(manifest_value, manifest_value.map(json.dumps), st.binary(max_size=60)))
def test_manifest_parsing_fails_only_with_a_clear_error(raw):
    if isinstance(raw, list):
        raw_json = json.dumps(raw)
        candidates = [raw, raw_json, raw_json.encode()]
    else:
        candidates = [raw]
    for candidate in candidates:
        try:
            entries = parse_manifest(candidate, LIMITS)
        except (BadArchive, TooLarge):
            continue
        paths = [e.path for e in entries]
        assert len(paths) == len(set(paths)) <= LIMITS.max_files
        assert sum(e.size for e in entries) <= LIMITS.max_total_size
        for e in entries:
            assert_safe(e.path)
            assert 0 <= e.size <= LIMITS.max_file_size
            assert SHA256_RE.match(e.sha256)
            parent = e.path.rpartition("/")[0]
            while parent:
                assert parent not in paths
                parent = parent.rpartition("/")[0]


@FUZZ
@given(st.lists(clean_path, min_size=1, max_size=LIMITS.max_files, unique=True))
def test_valid_manifests_round_trip(paths):
    names = set(paths)
    assume(not any(p.rpartition("/")[0] in names for p in paths))
    assume(
        not any("/".join(p.split("/")[:i]) in names for p in paths for i in range(1, p.count("/")))
    )
    raw = [{"path": p, "size": 1, "sha256": "0" * 64} for p in paths]
    assert [e.path for e in parse_manifest(json.dumps(raw), LIMITS)] == paths


@FUZZ
@given(tar_gz())
def test_no_archive_yields_an_unsafe_path_or_exceeds_a_limit(data):
    try:
        consume(data)
    except (BadArchive, TooLarge):
        pass


@FUZZ
@given(
    st.lists(
        st.tuples(clean_path, st.binary(max_size=1500)), max_size=LIMITS.max_files, unique_by=str
    ).filter(lambda members: len({p for p, _ in members}) == len(members))
)
def test_well_formed_archives_come_through_byte_for_byte(members):
    expected = dict(members)
    assume(sum(len(d) for d in expected.values()) <= LIMITS.max_total_size)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert consume(buffer.getvalue()) == expected


@FUZZ
@given(
    declared=st.one_of(st.integers(0, 4 * 1024 * 1024), st.integers(0, 8**11 - 1)),
    zero_mib=st.integers(0, 6),
    members=st.integers(1, 3),
)
def test_decompression_bombs_and_lying_headers_stop_at_the_limits(declared, zero_mib, members):
    """Headers that claim any size, followed by up to 6 MiB of zeros (a few KiB packed)."""
    limits = Limits(max_files=2, max_file_size=1024 * 1024, max_total_size=3 * 512 * 1024)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    packed = []
    for index in range(members):
        info = tarfile.TarInfo(f"bomb{index}")
        info.size = declared
        packed.append(compressor.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        packed.extend(compressor.compress(b"\0" * (1024 * 1024)) for _ in range(zero_mib))
    packed.append(compressor.flush())
    try:
        consume(b"".join(packed), limits)
    except (BadArchive, TooLarge):
        pass


@pytest.mark.django_db  # staging reads the record of collections (its ticket)
@FUZZ
@given(manifest=st.lists(st.tuples(raw_path | clean_path, st.binary(max_size=300)), max_size=4))
def test_staging_any_upload_leaves_only_blobs_in_storage(manifest):
    """Whatever the upload, storage holds only ``blobs/aa/<sha256>`` files afterwards, each
    with the bytes its name promises, and no temporary file is left behind."""
    root = Path(tempfile.mkdtemp(prefix="fuzz-storage-"))
    storages = {
        **django_settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    listed = [
        {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for path, data in manifest
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path, data in manifest:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            try:
                archive.addfile(info, io.BytesIO(data))
            except (ValueError, UnicodeEncodeError):
                continue
    buffer.seek(0)
    try:
        with override_settings(STORAGES=storages):
            try:
                services.stage_bundle(
                    upload=services.Upload(manifest=json.dumps(listed), archive=buffer)
                )
            except (BadArchive, TooLarge):
                pass
        for found in root.rglob("*"):
            relative = found.relative_to(root).as_posix()
            if found.is_dir():
                assert relative in ("blobs", "tmp") or re.fullmatch(r"blobs/[0-9a-f]{2}", relative)
                continue
            match = re.fullmatch(r"blobs/([0-9a-f]{2})/([0-9a-f]{64})", relative)
            assert match, relative
            assert match.group(2).startswith(match.group(1))
            assert hashlib.sha256(found.read_bytes()).hexdigest() == match.group(2)
    finally:
        shutil.rmtree(root)
