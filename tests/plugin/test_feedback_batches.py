"""How release_feedback groups students into requests (by count, by distinct bytes) and
sends them, two at a time."""

from __future__ import annotations

import json
import os
import threading

from nbgrader_exchange.errors import ServiceError
from nbgrader_exchange.feedback_batch import (
    FeedbackRelease,
    batch_unsupported,
    batches,
    distinct_files,
    manifest_of,
    prepared,
    send_batches,
)
from nbgrader_exchange.files import entry_from_bytes, entry_from_file


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


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_two_batches_are_sent_at_once_and_each_recorded_one_is_reported():
    groups = [[release(f"s{i}", f"<p>{i}</p>".encode())] for i in range(5)]
    both_under_way = threading.Barrier(2, timeout=10)
    sent, reported = [], []

    def send(batch):
        with batch.archive:
            sent.append(batch.releases[0].student_id)
            if len(sent) <= 2:
                both_under_way.wait()  # breaks (an error) unless the second one came too

    before = open_files()
    unsent, failure = send_batches(groups, send, at_once=2, recorded=reported.extend)
    assert failure is None
    assert unsent == []
    assert sorted(sent) == ["s0", "s1", "s2", "s3", "s4"]
    assert sorted(r.student_id for r in reported) == sorted(sent)
    assert open_files() == before  # every spooled archive closed


def test_one_at_a_time_when_told():
    groups = [[release(f"s{i}", f"<p>{i}</p>".encode())] for i in range(4)]
    under_way, most = [0], [0]
    lock = threading.Lock()

    def send(batch):
        with batch.archive, lock:
            under_way[0] += 1
            most[0] = max(most[0], under_way[0])
        threading.Event().wait(0.01)
        with lock:
            under_way[0] -= 1

    reported = []
    assert send_batches(groups, send, at_once=1, recorded=reported.extend) == ([], None)
    assert most[0] == 1
    assert [r.student_id for r in reported] == ["s0", "s1", "s2", "s3"]


def test_after_a_refused_batch_no_other_is_sent_and_the_rest_are_returned_in_order():
    groups = [[release(f"s{i}", f"<p>{i}</p>".encode())] for i in range(6)]
    both_under_way = threading.Barrier(2, timeout=10)
    refused = ServiceError("refused", status=413)
    sent, reported = [], []

    def send(batch):
        with batch.archive:
            student = batch.releases[0].student_id
            sent.append(student)
            both_under_way.wait()
            if student == "s0":
                raise refused
            threading.Event().wait(0.5)  # still under way when s0 is refused

    before = open_files()
    unsent, failure = send_batches(groups, send, at_once=2, recorded=reported.extend)
    assert failure is refused
    assert sorted(sent) == ["s0", "s1"]
    assert [r.student_id for r in reported] == ["s1"]  # under way when s0 was refused
    assert [r.student_id for r in unsent] == ["s0", "s2", "s3", "s4", "s5"]
    assert open_files() == before  # the archive written ahead was closed unsent


def test_a_file_that_cannot_be_read_stops_the_sending_after_what_was_recorded(tmp_path):
    paths = [tmp_path / f"{i}.html" for i in range(3)]
    for i, path in enumerate(paths):
        path.write_bytes(f"<p>{i}</p>".encode())
    groups = [
        [FeedbackRelease(f"s{i}", i + 1, [entry_from_file("n.html", path)])]
        for i, path in enumerate(paths)
    ]
    paths[2].unlink()  # gone between the scan and the upload
    reported = []

    def send(batch):
        batch.archive.close()

    unsent, failure = send_batches(groups, send, at_once=2, recorded=reported.extend)
    assert isinstance(failure, FileNotFoundError)
    assert sorted(r.student_id for r in reported) == ["s0", "s1"]
    assert [r.student_id for r in unsent] == ["s2"]
