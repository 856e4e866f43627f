"""Deadline rush on the database: concurrent submits by one student all land."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from courses import services
from courses.models import Submission
from tests.harness.uploads import make_upload


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_submits_by_one_student_give_twenty_submissions(released, people):
    count = 20
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def submit(index: int) -> None:
        try:
            barrier.wait()
            services.submit_assignment(
                student=people["sam"],
                assignment=released,
                upload=make_upload({"answer.txt": f"version {index}".encode()}),
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    submissions = Submission.objects.filter(student=people["sam"], assignment=released)
    assert submissions.count() == count
    assert len(set(submissions.values_list("timestamp", flat=True))) == count
    contents = {entry.blob_id for s in submissions for entry in s.bundle.entries.all()}
    assert len(contents) == count
