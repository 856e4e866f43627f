"""The record of garbage collections: one row that ``gc_blobs`` marks before it deletes
anything and when it ends, so that an upload can tell whether bytes it put may have been
removed since (``courses/collection_epoch.py``).

Kept beside ``models.py`` (which imports it, so Django registers it) because it is one
feature's table.
"""

from __future__ import annotations

from django.db import models

# The one row's primary key.
RECORD_PK = 1


class CollectionRecord(models.Model):
    """How many collections have started (``epoch``) and whether the last one has not
    finished (``running``: still running, or killed). No row: no collection ever ran."""

    # Internal bookkeeping, shown on no page: its names need no translation.
    epoch = models.BigIntegerField(default=0)
    running = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"collection {self.epoch}{' (running)' if self.running else ''}"
