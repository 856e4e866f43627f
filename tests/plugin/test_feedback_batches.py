"""How release_feedback groups students into requests: by count, by distinct bytes."""

from __future__ import annotations

import json

from nbgrader_exchange.errors import ServiceError
from nbgrader_exchange.feedback_batch import (
    FeedbackRelease,
    batch_unsupported,
    batches,
    distinct_files,
    manifest_of,
    prepared,
)
from nbgrader_exchange.files import entry_from_bytes


def release(student: str, *contents: bytes) -> FeedbackRelease:
    files = [entry_from_bytes(f"n{i}.html", data) for i, data in enumerate(contents)]
    return FeedbackRelease(student, hash(student) % 1000 + 1, files)


def names(groups) -> list[list[str]]:
    return [[r.student_id for r in group] for group in groups]


def test_at_most_so_many_students_per_request():
    students = [release(f"s{i}", f"<p>{i}</p>".encode()) for i in range(5)]
    assert names(batches(students, max_students=2)) == [["s0", "s1"], ["s2", "s3"], ["s4"]]


def test_at_most_so_many_bytes_per_request_a_shared_file_counted_once():
    shared = b"x" * 40
    students = [
        release("a", shared, b"a" * 30),
        release("b", shared, b"b" * 30),  # 40 + 30 + 30 = 100: fits
        release("c", b"c" * 30),  # 130: over
        release("d", b"d" * 500),  # alone over the limit: goes alone
        release("e", b"e"),
    ]
    assert names(batches(students, max_bytes=100)) == [["a", "b"], ["c"], ["d"], ["e"]]


def test_the_archive_holds_each_distinct_file_once_named_by_its_hash():
    shared = b"<style>p {}</style>"
    group = [release("a", shared, b"<p>a</p>"), release("b", shared)]
    files = distinct_files(group)
    assert [f.path for f in files] == [f.sha256 for f in files]
    assert len(files) == 2
    manifest = manifest_of(group)
    assert [len(item["files"]) for item in manifest["submissions"]] == [2, 1]
    assert "scores" not in manifest["submissions"][0]


def test_batches_come_prepared_in_order_and_a_consumer_may_stop_early():
    groups = [[release(f"s{i}", f"<p>{i}</p>".encode())] for i in range(3)]
    seen = []
    stream = prepared(groups)
    for batch in stream:
        seen.append(batch)
        if len(seen) == 2:
            break
    stream.close()
    assert [b.releases[0].student_id for b in seen] == ["s0", "s1"]
    assert json.loads(seen[0].manifest)["submissions"][0]["id"] == groups[0][0].submission_id
    assert seen[0].archive.seek(0, 2) > 0  # written, and still open for its sender


def test_only_a_missing_endpoint_or_a_batch_too_large_sends_one_by_one():
    def unsupported(status: int) -> bool:
        return batch_unsupported(ServiceError("refused", status=status))

    assert [unsupported(s) for s in (404, 405, 413)] == [True, True, True]
    assert [unsupported(s) for s in (400, 401, 403, 409, 500, 503)] == [False] * 6
