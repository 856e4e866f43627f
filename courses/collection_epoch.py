"""Whether a garbage collection may have removed bytes since an upload began putting them.

``record_bundle`` must not record a row for bytes that are gone, and only a collection
(``gc_blobs``) removes bytes. It used to ask storage about every blob that had no row or
an unreferenced row (on an object store, one HEAD each); it now asks only when a
collection may have removed something since the upload took its *ticket*.

The protocol:

1. Collections run one at a time (``storage_locks.collector_lock``, held for the whole
   run; a killed collection's lock goes with its process or connection).
2. Before it deletes anything (rows or bytes), a collection commits, on the one row of
   ``CollectionRecord``: ``epoch + 1`` and ``running``. After its last removal (also when
   it fails part way: its removals are over by then) it commits ``running = False``, only
   if the epoch is still its own. A dry run marks nothing. A killed collection leaves
   ``running`` set: uploads keep asking storage until a later collection finishes.
3. An upload reads the record (its ticket, ``Ticket``) in the same statement as the read
   of the hashes it may reference without bytes, and in any case before its first put.
4. ``record_bundle``, under the collection lock held shared (SQLite: its write
   transaction), reads the record again in its one read of the blob rows. If no collection
   was running at the ticket and the epoch is unchanged, storage is not asked.

Why that is enough. A collection removes bytes only between its two marks, and only under
the exclusive collection lock. Take an upload whose ticket (time t) saw no collection
running, and whose record read (time r, holding the shared lock until it commits) saw the
same epoch. A collection that removed bytes before r either finished before t (removals
before t), or was running at t (the ticket would say so: one runs at a time and only it
clears its mark), or started after t and committed its mark before its removal, which
committed before the upload got the shared lock (the epoch read at r would differ). A
collection that removes bytes after r waits for the upload's commit, after which its blobs
are referenced and spared. So no bytes were removed between t and the commit.

Each blob the bundle lists was present at some moment after t: bytes this upload sent were
put after the ticket (or found there: a local ``put`` that refreshes an existing file, an
object store's HEAD of a large blob); a blob referenced without bytes had a row when the
ticket was read in the same statement, and a row names bytes that are there unless a
collection is between its marks (rows go first, bytes after). Hence present at commit.

Uploads that record bundles without a ticket (imports, restores) always ask storage. A
collection cut from its database (PostgreSQL) loses its locks with its connection; the
only removal it can still make is one blob moved aside and back within one ``_remove_bytes``
(the round trip after the move fails, so the bytes are put back).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import BooleanField, CharField, F, QuerySet, Value
from django.utils import timezone

from .collection_models import RECORD_PK, CollectionRecord
from .storage_locks import collector_lock

logger = logging.getLogger(__name__)

# The record's row among blob rows in a UNION: no blob has an empty hash.
MARK = ""


@dataclass(frozen=True)
class Ticket:
    """The record of collections as an upload read it."""

    epoch: int = 0
    running: bool = False


# No row: no collection ever started.
NEVER = Ticket()


def record_row() -> QuerySet[Any]:
    """The record as one row (``MARK``, epoch, running), to be joined by ``UNION ALL`` to a
    read of (sha256, size, flag) blob rows: no round trip of its own."""
    return (
        CollectionRecord.objects.filter(pk=RECORD_PK)
        .annotate(mark=Value(MARK, output_field=CharField()))
        .values_list("mark", "epoch", "running")
    )


def with_record(rows: QuerySet[Any]) -> QuerySet[Any]:
    """A read of (sha256, size, flag) blob rows, with the record's row added."""
    return rows.order_by().union(record_row(), all=True)


def split(rows: Iterable[tuple[str, int, bool]]) -> tuple[list[tuple[str, int, bool]], Ticket]:
    """Blob rows and the record read with them (``with_record``)."""
    blobs, ticket = [], NEVER
    for row in rows:
        if row[0] == MARK:
            ticket = Ticket(epoch=row[1], running=bool(row[2]))
        else:
            blobs.append(row)
    return blobs, ticket


def take_ticket() -> Ticket:
    """The record alone, for an upload with no read to join it to."""
    _, ticket = split(record_row())
    return ticket


def known_flag() -> Value:
    """A constant third column for a blob read joined to the record."""
    return Value(True, output_field=BooleanField())


def may_have_removed(ticket: Ticket | None, now: Ticket) -> bool:
    """Whether a collection may have removed bytes between the ticket and ``now`` (read
    under the shared collection lock); no ticket: it may have."""
    return ticket is None or ticket.running or now.epoch != ticket.epoch


@contextmanager
def collection_run() -> Iterator[None]:
    """A collection's whole run: one at a time, marked running before its first deletion
    and finished after its last."""
    with collector_lock():
        epoch = _start()
        try:
            yield
        except BaseException:
            # Its removals are over: uploads need not check for it any more.
            _finish(epoch, quiet=True)
            raise
        _finish(epoch)


def _start() -> int:
    """Committed before anything is deleted: ``epoch + 1``, running."""
    now = timezone.now()
    record = CollectionRecord.objects.filter(pk=RECORD_PK)
    with transaction.atomic():
        # No race on creating the row: collections run one at a time.
        if not record.update(epoch=F("epoch") + 1, running=True, started_at=now):
            CollectionRecord.objects.create(pk=RECORD_PK, epoch=1, running=True, started_at=now)
        return record.values_list("epoch", flat=True).get()


def _finish(epoch: int, *, quiet: bool = False) -> None:
    """Not running any more, unless another collection has started since (this one lost
    its lock with its connection): that one clears its own mark."""
    try:
        with transaction.atomic():
            CollectionRecord.objects.filter(pk=RECORD_PK, epoch=epoch).update(
                running=False, finished_at=timezone.now()
            )
    except DatabaseError:
        if not quiet:
            raise
        # Left running: uploads keep asking storage until a later collection finishes.
        logger.warning("collection %d could not record its end", epoch, exc_info=True)
