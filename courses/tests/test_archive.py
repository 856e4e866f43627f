"""Archive and manifest rules: each bad upload is refused with a sentence naming the path and
the rule, limits hold while streaming, and a refused upload records nothing."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import unicodedata
import zlib

import pytest

from courses import services
from courses.archive import Limits, iter_archive, normalize_path, parse_manifest
from courses.exceptions import BadArchive, TooLarge
from courses.models import Blob, Bundle, Submission
from tests.harness.uploads import manifest_of, tar_gz

LIMITS = Limits(max_files=3, max_file_size=1000, max_total_size=1500)


def tar_with(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **extra) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, data if kind == tarfile.REGTYPE else None


def read_all(fileobj, limits=LIMITS) -> dict[str, bytes]:
    return {path: stream.read() for path, _size, stream in iter_archive(fileobj, limits)}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.txt", "a.txt"),
        ("./dir/a.txt", "dir/a.txt"),
        ("dir\\sub\\a.txt", "dir/sub/a.txt"),
    ],
)
def test_paths_are_normalised_to_posix(raw, expected):
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\x", "absolute"),
        ("0:", "as a drive"),
        ("é:notes.txt", "as a drive"),
        ("../escape", "'..'"),
        ("a/../../b", "'..'"),
        ("..\\escape", "'..'"),
        ("", "empty"),
        ("a//b", "empty or '.'"),
        ("a/./b", "empty or '.'"),
        ("bad\x00name", "control"),
        ("x" * 1100, "longer"),
    ],
)
def test_bad_paths_are_refused_with_the_rule(raw, rule):
    with pytest.raises(BadArchive) as caught:
        normalize_path(raw)
    assert rule in caught.value.detail


def test_regular_files_stream_through():
    files = read_all(tar_with(member("a.txt", b"hello"), member("d/b.txt", b"world")))
    assert files == {"a.txt": b"hello", "d/b.txt": b"world"}


def test_directories_are_skipped():
    archive = tar_with(member("d/", kind=tarfile.DIRTYPE), member("d/b.txt", b"x"))
    assert read_all(archive) == {"d/b.txt": b"x"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (member("link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "'link' is a link"),
        (member("hard", kind=tarfile.LNKTYPE, linkname="a.txt"), "'hard' is a link"),
        (member("dev", kind=tarfile.CHRTYPE), "'dev' is not a regular file"),
        (member("fifo", kind=tarfile.FIFOTYPE), "'fifo' is not a regular file"),
        (member("/abs.txt", b"x"), "absolute"),
        (member("../up.txt", b"x"), "'..'"),
    ],
)
def test_dangerous_members_are_refused(entry, message):
    with pytest.raises(BadArchive) as caught:
        read_all(tar_with(member("a.txt", b"ok"), entry))
    assert message in caught.value.detail


def test_duplicate_paths_are_refused():
    archive = tar_with(member("a.txt", b"1"), member("./a.txt", b"2"))
    with pytest.raises(BadArchive, match="appears twice"):
        read_all(archive)


def test_too_many_files_stops_at_the_limit():
    archive = tar_with(*(member(f"f{i}", b"x") for i in range(5)))
    with pytest.raises(TooLarge, match="more than 3 files"):
        read_all(archive)


def test_file_over_the_size_limit_is_refused_before_reading():
    with pytest.raises(TooLarge, match="'big'"):
        read_all(tar_with(member("big", b"x" * 1001)))


def test_total_size_limit_holds():
    archive = tar_with(member("a", b"x" * 900), member("b", b"x" * 900))
    with pytest.raises(TooLarge, match="1500 bytes"):
        read_all(archive)


def test_bytes_beyond_a_members_declared_size_are_never_part_of_it():
    # A member whose header claims 10 bytes: tar reads exactly 10, the rest is not a file.
    info = tarfile.TarInfo("liar")
    info.size = 10
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        archive.addfile(info, io.BytesIO(b"y" * 10))
    data = gzip.compress(raw.getvalue()[:-1024] + b"z" * 5000)
    # Trailing bytes after the last member are not a member: nothing more is yielded.
    assert read_all(io.BytesIO(data)) == {"liar": b"y" * 10}


def test_decompression_bomb_stops_early():
    limits = Limits(max_files=10, max_file_size=10 * 1024 * 1024, max_total_size=10 * 1024 * 1024)
    info = tarfile.TarInfo("bomb")
    info.size = 1024 * 1024 * 1024  # claims 1 GiB of zeros
    header = info.tobuf()
    compressor_input = io.BytesIO()
    with gzip.GzipFile(fileobj=compressor_input, mode="wb") as gz:
        gz.write(header)
        chunk = b"\0" * (1024 * 1024)
        for _ in range(20):  # 20 MiB of zeros compress to a few KiB
            gz.write(chunk)
    compressor_input.seek(0)
    with pytest.raises(TooLarge, match="'bomb'"):
        read_all(compressor_input, limits)


def test_not_a_gzip_is_a_clear_error():
    with pytest.raises(BadArchive, match=r"not a readable tar\.gz"):
        read_all(io.BytesIO(b"this is not an archive"))


def test_truncated_archive_is_a_clear_error():
    data = tar_gz({"a.txt": b"x" * 100_000})
    with pytest.raises(BadArchive):
        read_all(io.BytesIO(data[: len(data) // 2]), Limits(10, 10**6, 10**6))


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"path": "a"}', "must be a JSON list"),
        ('[{"path": "a", "size": 1}]', "exactly the keys"),
        ('[{"path": "a", "size": -1, "sha256": "' + "0" * 64 + '"}]', "whole number"),
        ('[{"path": "a", "size": true, "sha256": "' + "0" * 64 + '"}]', "whole number"),
        ('[{"path": "a", "size": 1, "sha256": "XYZ"}]', "64 lowercase"),
        (
            json.dumps([{"path": "a", "size": 1, "sha256": "0" * 64}] * 2),
            "appears twice",
        ),
        ('[{"path": "../a", "size": 1, "sha256": "' + "0" * 64 + '"}]', "'..'"),
    ],
)
def test_malformed_manifests_are_refused(manifest, message):
    with pytest.raises(BadArchive) as caught:
        parse_manifest(manifest, LIMITS)
    assert message in caught.value.detail


def test_manifest_limits():
    many = [{"path": f"f{i}", "size": 1, "sha256": "0" * 64} for i in range(4)]
    with pytest.raises(TooLarge, match="at most 3"):
        parse_manifest(many, LIMITS)
    with pytest.raises(TooLarge, match="'big'"):
        parse_manifest([{"path": "big", "size": 1001, "sha256": "0" * 64}], LIMITS)
    two = [{"path": p, "size": 800, "sha256": "0" * 64} for p in "ab"]
    with pytest.raises(TooLarge, match="add up"):
        parse_manifest(two, LIMITS)


@pytest.mark.parametrize(
    ("files", "archive_files", "message"),
    [
        ({"a.txt": b"1"}, {"a.txt": b"1", "extra.txt": b"2"}, "'extra.txt' is not listed"),
        ({"a.txt": b"1", "b.txt": b"2"}, {"a.txt": b"1"}, "'b.txt' is listed"),
        ({"a.txt": b"1"}, {"a.txt": b"22"}, "2 bytes in the archive but 1"),
        ({"a.txt": b"1"}, {"a.txt": b"2"}, "does not match the manifest"),
    ],
)
def test_manifest_and_archive_must_agree_and_nothing_is_recorded(
    released, people, files, archive_files, message
):
    upload = services.Upload(
        manifest=json.dumps(manifest_of(files)), archive=io.BytesIO(tar_gz(archive_files))
    )
    bundles, blobs = Bundle.objects.count(), Blob.objects.count()
    with pytest.raises(BadArchive) as caught:
        services.submit_assignment(student=people["sam"], assignment=released, upload=upload)
    assert message in caught.value.detail
    assert (Bundle.objects.count(), Blob.objects.count()) == (bundles, blobs)
    assert not Submission.objects.exists()


def test_limits_come_from_settings(settings, released, people):
    settings.EXCHANGE_MAX_FILE_SIZE = 10
    upload = services.Upload(
        manifest=json.dumps(manifest_of({"a.txt": b"x" * 11})),
        archive=io.BytesIO(tar_gz({"a.txt": b"x" * 11})),
    )
    with pytest.raises(TooLarge) as caught:
        services.submit_assignment(student=people["sam"], assignment=released, upload=upload)
    assert caught.value.status_code == 413


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("a\x7fb", "control"),
        ("a\x85b", "control"),
        ("a\ud800b", "not valid UTF-8"),
    ],
)
def test_delete_c1_controls_and_lone_surrogates_are_refused(raw, rule):
    # A lone surrogate cannot be stored in the database: refusing it here keeps it a 400.
    with pytest.raises(BadArchive) as caught:
        normalize_path(raw)
    assert rule in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "code_point"),
    [
        ("a\u202etxt.exe", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("notes/\u2066x\u2069.ipynb", "U+2066"),
        ("ps1\u200b.ipynb", "U+200B (ZERO WIDTH SPACE)"),
        ("\ufeffps1.ipynb", "U+FEFF"),
    ],
)
def test_unicode_format_characters_are_refused_with_a_sentence(raw, code_point):
    """A direction override makes ``a<U+202E>txt.exe`` show as "aexe.txt" to whoever opens it."""
    with pytest.raises(BadArchive) as caught:
        normalize_path(raw)
    assert code_point in caught.value.detail
    assert "rename the file" in caught.value.detail
    # The sentence shows the character as an escape, never the invisible character itself.
    assert not any(unicodedata.category(ch) == "Cf" for ch in caught.value.detail)


def test_a_format_character_in_an_archive_member_or_manifest_is_refused():
    with pytest.raises(BadArchive, match="U\\+202E"):
        read_all(tar_with(member("a\u202etxt.exe", b"x")))
    entries = [{"path": "a\u202etxt.exe", "size": 1, "sha256": "0" * 64}]
    with pytest.raises(BadArchive, match="U\\+202E"):
        parse_manifest(entries, LIMITS)


def test_one_hash_has_one_size_in_a_manifest():
    sha = "0" * 64
    same = [{"path": p, "size": 5, "sha256": sha} for p in ("a", "b")]
    assert [e.size for e in parse_manifest(same, LIMITS)] == [5, 5]
    two = [{"path": "a", "size": 5, "sha256": sha}, {"path": "b", "size": 6, "sha256": sha}]
    with pytest.raises(BadArchive) as caught:
        parse_manifest(two, LIMITS)
    assert caught.value.code == "bad_manifest"
    assert "'b'" in caught.value.detail and "two sizes (5 and 6 bytes)" in caught.value.detail


def test_a_deeply_nested_manifest_is_a_clear_error():
    with pytest.raises(BadArchive, match="nested too deeply"):
        parse_manifest("[" * 100_000, LIMITS)


def test_a_file_cannot_also_be_a_folder():
    entries = [{"path": p, "size": 1, "sha256": "0" * 64} for p in ("a", "a/b/c")]
    with pytest.raises(BadArchive, match="needs a folder 'a', but 'a' is a file"):
        parse_manifest(entries, LIMITS)


def _header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _patched(block: bytes, offset: int, value: bytes) -> bytes:
    """A header block with bytes replaced at ``offset`` and its checksum made right again."""
    raw = bytearray(block)
    raw[offset : offset + len(value)] = value
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    return bytes(raw)


def test_an_oversized_pax_header_is_refused_before_it_is_read():
    # 300 MiB of zeros in a pax header compress to a few hundred KiB; tarfile would read the
    # whole header into memory.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(_header("pax", tarfile.XHDTYPE, 300 * 1024 * 1024))]
    parts += [compressor.compress(b"\0" * (1024 * 1024)) for _ in range(300)]
    parts.append(compressor.flush())
    with pytest.raises(BadArchive, match="header block of 314572800 bytes"):
        read_all(io.BytesIO(b"".join(parts)))


def test_a_long_chain_of_long_name_headers_is_refused():
    block = _header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 10) + b"a" * 10 + b"\0" * 502
    data = gzip.compress(block * 3000 + _header("x", tarfile.REGTYPE, 0) + b"\0" * 1024)
    with pytest.raises(BadArchive, match="header blocks in a row"):
        read_all(io.BytesIO(data))


def test_sparse_members_are_refused():
    block = _patched(_header("sparse", tarfile.GNUTYPE_SPARSE, 0), 482, b"\1")
    with pytest.raises(BadArchive, match="'sparse' is a sparse file"):
        read_all(io.BytesIO(gzip.compress(block)))
    pax = tarfile.TarInfo("sp")
    pax.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    with pytest.raises(BadArchive, match="sparse file"):
        read_all(tar_with((pax, b"")))


def test_a_negative_size_is_refused():
    block = _patched(_header("neg", tarfile.REGTYPE, 0), 124, b"\xff" * 12)
    with pytest.raises(BadArchive, match="'neg' has a negative size"):
        read_all(io.BytesIO(gzip.compress(block + b"\0" * 1024)))
    pax = tarfile.TarInfo("neg")
    pax.pax_headers = {"size": "-5"}
    with pytest.raises(BadArchive, match="negative size"):
        read_all(tar_with((pax, b"")))


def test_folders_count_against_the_limit():
    archive = tar_with(*(member(f"d{i}/", kind=tarfile.DIRTYPE) for i in range(5)))
    with pytest.raises(TooLarge, match="more than 3 folders"):
        read_all(archive)
