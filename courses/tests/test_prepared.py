"""Prepared queries answer as the ORM does, with each call's own values, in any thread."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.test.utils import CaptureQueriesContext

from courses import prepared
from courses.models import Assignment, AuditEvent, Membership, Submission
from courses.prepared import Many, Prepared, PreparedInsert
from courses.services.audit import audit_event


def _with_role(user_id: int, course_code: str, code: str):
    role = Membership.objects.filter(course=OuterRef("course_id"), user_id=user_id).values("role")
    return (
        Assignment.objects.select_related("course", "release")
        .filter(course__code=course_code, code=code)
        .annotate(checked_role=Subquery(role[:1]))
        .order_by()[:1]
    )


WITH_ROLE = Prepared(_with_role, int, str, str)


def test_each_call_answers_with_its_own_values(released, people, unreleased):
    sam, olga = people["sam"], people["olga"]
    [row] = WITH_ROLE(sam.pk, "phys101", "ps1")
    assert (row.pk, row.checked_role) == (released.pk, "student")
    # Related rows come as select_related gives them, with the database's own types.
    assert row.course.code == "phys101"
    assert row.release.pk == released.release.pk
    assert row.release.created_at == released.release.created_at
    [other] = WITH_ROLE(olga.pk, "phys101", "ps2")
    assert (other.pk, other.checked_role, other.release) == (unreleased.pk, None, None)
    assert WITH_ROLE(sam.pk, "phys101", "nope") == []
    assert WITH_ROLE(sam.pk, "chem101", "ps1") == []


def test_a_call_is_one_query_with_its_own_values(released, people):
    WITH_ROLE(people["sam"].pk, "phys101", "ps1")
    with CaptureQueriesContext(connection) as first:
        WITH_ROLE(people["tia"].pk, "phys101", "ps1")
    with CaptureQueriesContext(connection) as second:
        WITH_ROLE(people["ines"].pk, "phys101", "nope")
    assert len(first) == len(second) == 1
    assert "nope" in second[0]["sql"] and "nope" not in first[0]["sql"]


def test_values_and_lists_of_values_work_too(released, people):
    rows = Prepared(
        lambda student_id: Submission.objects.filter(student_id=student_id).values_list(
            "assignment__code", flat=True
        ),
        int,
    )
    assert rows(people["sam"].pk) == []
    from courses import services
    from tests.harness.uploads import make_upload

    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"a"})
    )
    assert rows(people["sam"].pk) == ["ps1"]
    assert rows(people["tia"].pk) == []


def test_values_of_another_kind_are_refused(released, people):
    with pytest.raises(TypeError):
        WITH_ROLE(None, "phys101", "ps1")
    with pytest.raises(TypeError):
        WITH_ROLE(str(people["sam"].pk), "phys101", "ps1")
    with pytest.raises(TypeError):
        WITH_ROLE(people["sam"].pk, "phys101")
    with pytest.raises(TypeError):
        Prepared(lambda day: Assignment.objects.filter(due_date=day), object)


# --- lists ----------------------------------------------------------------------------------

IN_COURSE = Prepared(
    lambda codes, course_code: Assignment.objects.filter(
        code__in=codes, course__code=course_code
    ).values_list("pk", flat=True),
    Many(str),
    str,
)


def test_a_list_answers_as_the_orm_does_at_every_length(released, unreleased):
    for codes in (["ps1"], ["ps2"], ["ps1", "ps2"], ["nope", "ps2", "nope"], ["nope"]):
        expected = sorted(
            Assignment.objects.filter(code__in=codes, course__code="phys101").values_list(
                "pk", flat=True
            )
        )
        assert sorted(IN_COURSE(codes, "phys101")) == expected, codes
        assert IN_COURSE(codes, "chem101") == []
    # Empty (Django leaves an empty IN out of the SQL) and over MANY_MAX: compiled for the
    # call alone, with the same answers.
    assert IN_COURSE([], "phys101") == []
    many = ["ps2"] + [f"x{n}" for n in range(prepared.MANY_MAX)]
    assert IN_COURSE(many, "phys101") == [unreleased.pk]


def test_a_list_of_a_known_length_is_one_query_with_its_own_values(released, unreleased):
    IN_COURSE(["a", "b"], "phys101")
    with CaptureQueriesContext(connection) as captured:
        first = IN_COURSE(["ps1", "zzz"], "phys101")
        second = IN_COURSE(("zzz", "ps2"), "phys101")
    assert (first, second) == ([released.pk], [unreleased.pk])
    assert len(captured) == 2
    assert "'ps1'" in captured[0]["sql"] and "'ps2'" in captured[1]["sql"]


def test_each_thread_keeps_a_bounded_number_of_lengths(released):
    for length in range(1, prepared.MANY_SHAPES + 6):
        assert IN_COURSE(["ps1"] * length, "phys101") == [released.pk]
    assert len(IN_COURSE._local.shapes) == prepared.MANY_SHAPES
    # The oldest went first; a length dropped is compiled again and still answers.
    assert (1,) not in IN_COURSE._local.shapes
    assert IN_COURSE(["ps1"], "phys101") == [released.pk]


def test_lists_of_another_kind_are_refused(db):
    for wrong in ("ps1", [1], ["ps1", None], None):
        with pytest.raises(TypeError):
            IN_COURSE(wrong, "phys101")
    with pytest.raises(TypeError):
        Many(float)


def test_a_value_may_be_used_twice(released, unreleased):
    either = Prepared(
        lambda code: Assignment.objects.filter(code=code)
        | Assignment.objects.filter(course__code=code),
        str,
    )
    assert [a.pk for a in either("ps1")] == [released.pk]
    assert sorted(a.pk for a in either("phys101")) == sorted([released.pk, unreleased.pk])


def test_a_query_that_does_not_keep_its_values_as_parameters_fails_loudly(db):
    partly = Prepared(lambda code: Assignment.objects.filter(code__contains=code), str)
    with pytest.raises(ValueError, match="not among the parameters"):
        partly("ps")


@pytest.mark.django_db(transaction=True)
def test_threads_and_new_connections_each_get_their_own_answers(released, people, unreleased):
    WITH_ROLE(people["sam"].pk, "phys101", "ps1")
    connection.close()  # a closed connection reopens; the compiled query still answers
    assert WITH_ROLE(people["sam"].pk, "phys101", "ps1")[0].checked_role == "student"
    expected = {
        "ines": (released.pk, "instructor"),
        "gus": (released.pk, "grader"),
        "sam": (released.pk, "student"),
        "tia": (released.pk, "student"),
        "olga": (unreleased.pk, None),
    }
    barrier = threading.Barrier(len(expected))
    answers: dict[str, list[tuple[int, str | None]]] = {}
    errors: list[BaseException] = []

    def ask(name: str) -> None:
        try:
            barrier.wait()
            code = "ps2" if name == "olga" else "ps1"
            answers[name] = [
                (row.pk, row.checked_role)
                for _ in range(20)
                for row in WITH_ROLE(people[name].pk, "phys101", code)
            ]
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(name,)) for name in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert answers == {name: [row] * 20 for name, row in expected.items()}


# --- inserts ------------------------------------------------------------------------------

INSERT_EVENT = PreparedInsert(AuditEvent)


def _event(people, released, **detail):
    return audit_event(
        action=AuditEvent.Action.FEEDBACK_FETCHED,
        actor=people["sam"],
        assignment=released,
        student=people["sam"],
        **detail,
    )


def test_a_prepared_insert_writes_what_save_writes_and_gives_the_id(released, people):
    saved = _event(people, released, feedback=2, note="ü ' \" ; --")
    saved.save(force_insert=True)
    INSERT_EVENT(_event(people, released))  # compiled with another row's values
    with CaptureQueriesContext(connection) as captured:
        inserted = _event(people, released, feedback=2, note="ü ' \" ; --")
        inserted.at = saved.at
        INSERT_EVENT(inserted)
    assert len(captured) == 1
    assert inserted.pk is not None and inserted.pk not in (saved.pk, None)
    assert not inserted._state.adding and inserted._state.db == "default"
    rows = {
        row.pop("id"): row
        for row in AuditEvent.objects.filter(pk__in=[saved.pk, inserted.pk]).values()
    }
    assert rows[inserted.pk] == rows[saved.pk]
    assert rows[inserted.pk]["detail"] == {"feedback": 2, "note": "ü ' \" ; --"}
    assert rows[inserted.pk]["course_id"] == released.course_id


@pytest.mark.django_db(transaction=True)
def test_prepared_inserts_from_threads_each_get_their_own_row(released, people):
    errors: list[BaseException] = []
    ids: list[int] = []
    # One insert at a time: the suite's in-memory SQLite locks a table against other
    # connections' writes; each thread still compiles on, and writes through, its own.
    one_at_a_time = threading.Lock()

    def insert(number: int) -> None:
        try:
            for step in range(10):
                event = _event(people, released, thread=number, step=step)
                with one_at_a_time:
                    INSERT_EVENT(event)
                ids.append(event.pk)
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=insert, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 40
    stored = {
        (e.pk, e.detail["thread"], e.detail["step"]) for e in AuditEvent.objects.filter(pk__in=ids)
    }
    assert len(stored) == 40 and {thread for _, thread, _ in stored} == {0, 1, 2, 3}
