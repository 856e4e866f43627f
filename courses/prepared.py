"""Queries compiled once and run again with other values: the hot reads of every request.

Django compiles a query to SQL each time it runs: for the one-row reads every request
makes (the assignment with the caller's role, a student's feedback) that costs about ten
times the database's own work (0.9 ms against 0.1 ms for the assignment read). A
``Prepared`` query is written with the ORM as any other, built once per thread with
placeholder values, and compiled once; each call then runs the same SQL with the call's
values in the placeholders' places, and Django turns the rows into model instances (or
values) as usual: ``select_related``, annotations and the database's converters work
unchanged.

Use it for a query whose SQL does not depend on its values: equality with an ``int`` or a
``str``, never ``None`` (which compiles to ``IS NULL``). A list for ``__in`` is a ``Many``
value: its SQL has one placeholder per item, so such a query is compiled once for each
length of its lists (up to ``MANY_MAX`` items; an empty list, whose ``__in`` Django leaves
out of the SQL, and a longer one are compiled for their call alone, as the ORM does). Each
placeholder must show up, as it is, among the compiled query's parameters (once or more);
a query that changes one (``__contains`` wraps it in ``%``) fails loudly on its first run.

The compiled query is kept per thread and database connection (Django's connections are
per thread; a compiler is bound to one), so threads never share one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.sql.subqueries import InsertQuery

T = TypeVar("T")

# Placeholder values, unlike anything a real query passes: database ids are positive, and
# no code or name holds a NUL character.
_INT_BASE = -7_300_000_000_000
_STR_PREFIX = "\x00prepared-"
# Lists of up to this many items are compiled once per length; and each thread keeps at
# most this many lengths' compiled queries of one ``Prepared`` (the oldest goes first).
MANY_MAX = 100
MANY_SHAPES = 32


class Many:
    """A ``Prepared`` argument that is a list of ``kind`` (int or str), for ``__in``."""

    def __init__(self, kind: type) -> None:
        if kind not in (int, str):
            raise TypeError("Many takes int or str.")
        self.kind = kind

    def __repr__(self) -> str:
        return f"Many({self.kind.__name__})"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and all(type(v) is self.kind for v in value)


def _placeholder(kind: type, number: int, item: int | None = None) -> Any:
    """Argument ``number``'s placeholder (its ``item``-th for a list): ints count down
    from _INT_BASE, a list's a million apart; strs carry their numbers."""
    if kind is int:
        return _INT_BASE - number if item is None else _INT_BASE - 1_000_000 * (number + 1) - item
    return f"{_STR_PREFIX}{number}" if item is None else f"{_STR_PREFIX}{number}-{item}"


class Prepared(Generic[T]):
    """``Prepared(build, int, str)(7, "ps1")`` runs ``build(7, "ps1")`` as a list, compiled
    once per thread; ``build`` takes one value per type given and returns a query (slice
    it inside ``build`` to limit it: slicing the result would compile again).
    ``Prepared(build, Many(str))(["a", "b"])``: a list, compiled once per length."""

    def __init__(self, build: Callable[..., QuerySet[Any, T]], *kinds: type | Many) -> None:
        if any(kind not in (int, str) and not isinstance(kind, Many) for kind in kinds):
            raise TypeError("Prepared queries take int and str values, or Many of them.")
        self._build = build
        self._kinds = kinds
        self._local = threading.local()

    def _compiled(
        self, lengths: tuple[int, ...]
    ) -> tuple[QuerySet[Any, T], Any, str, list[Any], list[list[int]]]:
        shapes: dict[tuple[int, ...], Any] = self._local.__dict__.setdefault("shapes", {})
        state = shapes.get(lengths)
        if state is not None and state[1].connection is connections[state[0].db]:
            return state
        counts = iter(lengths)
        arguments = [
            [_placeholder(kind.kind, number, item) for item in range(next(counts))]
            if isinstance(kind, Many)
            else _placeholder(kind, number)
            for number, kind in enumerate(self._kinds)
        ]
        template = self._build(*arguments)
        compiler = template.query.get_compiler(using=template.db)
        sql, params = compiler.as_sql()
        params = list(params)
        positions = []
        for placeholder in _flat(arguments, self._kinds):
            where = [n for n, param in enumerate(params) if param == placeholder]
            if not where:
                raise ValueError(
                    f"A prepared query must pass each value as it is as a parameter; "
                    f"{placeholder!r} is not among the parameters of: {sql}"
                )
            positions.append(where)
        state = (template, compiler, sql, params, positions)
        if lengths not in shapes and len(shapes) >= MANY_SHAPES:
            del shapes[next(iter(shapes))]
        shapes[lengths] = state
        return state

    def __call__(self, *values: Any) -> list[T]:
        if len(values) != len(self._kinds) or any(
            not kind.accepts(value) if isinstance(kind, Many) else type(value) is not kind
            for value, kind in zip(values, self._kinds, strict=True)
        ):
            raise TypeError(f"Prepared query takes {self._kinds}, not {values!r}.")
        lengths = tuple(
            len(value)
            for value, kind in zip(values, self._kinds, strict=True)
            if isinstance(kind, Many)
        )
        if any(not 0 < length <= MANY_MAX for length in lengths):
            return list(self._build(*values))
        template, compiler, sql, params, positions = self._compiled(lengths)
        given = list(params)
        for places, value in zip(positions, _flat(values, self._kinds), strict=True):
            for place in places:
                given[place] = value
        answer = (sql, tuple(given))
        # The compiler already holds what compiling it set up (its select, the related
        # models' layout, the converters' fields): asked for its SQL, it gives the same text
        # with this call's values; the query clone hands that compiler to Django's usual
        # iteration, which runs it and builds the rows.
        compiler.as_sql = lambda *args, **kwargs: answer
        query = template._chain()
        query.query.get_compiler = lambda *args, **kwargs: compiler
        return list(query)


def _flat(values: Any, kinds: tuple[type | Many, ...]) -> list[Any]:
    """The values of a call (or its placeholders) one by one, lists' items in order."""
    flat: list[Any] = []
    for value, kind in zip(values, kinds, strict=True):
        if isinstance(kind, Many):
            flat.extend(value)
        else:
            flat.append(value)
    return flat


class PreparedInsert:
    """``PreparedInsert(Model)(obj)`` inserts ``obj`` as ``obj.save(force_insert=True)``
    does (defaults, ``pre_save`` such as ``auto_now_add``, the id the database returns) with
    the INSERT compiled once per thread and database connection.

    For models without a ``save()`` of their own and no ``pre_save``/``post_save``
    receivers (none are sent), written once per request and on every request: the audit
    event of a fetch."""

    def __init__(self, model: type[Model]) -> None:
        self._model = model
        meta = model._meta
        self._fields = [
            field for field in meta.local_concrete_fields if field is not meta.auto_field
        ]
        self._returning = meta.db_returning_fields
        self._local = threading.local()

    def _compiled(self, using: str) -> tuple[Any, str]:
        state = getattr(self._local, "state", None)
        if state is not None and state[0].connection is connections[using]:
            return state
        query = InsertQuery(self._model)
        query.insert_values(self._fields, [self._model()])
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = self._returning
        ((sql, params),) = compiler.as_sql()
        if len(params) != len(self._fields):
            raise ValueError(f"{self._model.__name__}'s INSERT does not take one value a field.")
        state = (compiler, sql)
        self._local.state = state
        return state

    def __call__(self, obj: Model) -> None:
        using = router.db_for_write(self._model, instance=obj)
        compiler, sql = self._compiled(using)
        answer = [
            (
                sql,
                tuple(
                    compiler.prepare_value(f, compiler.pre_save_val(f, obj)) for f in self._fields
                ),
            )
        ]
        compiler.query.objs = [obj]
        compiler.as_sql = lambda *args, **kwargs: answer
        for row in compiler.execute_sql(self._returning):
            for value, field in zip(row, self._returning, strict=True):
                setattr(obj, field.attname, value)
        obj._state.adding = False
        obj._state.db = using
