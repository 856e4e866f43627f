"""Restore's last step, inside one transaction: clear the target (``--force``), insert each
table's verified rows, reset sequences, and check every referenced blob was restored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core import serializers
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

from ..models import BundleEntry
from ..progress import Progress
from .tables import BATCH, BackupError, RestoreReport, _label, backup_models


def _clear(progress: Progress) -> dict[str, int]:
    cleared = {}
    for model in reversed(backup_models()):
        # Children first; _raw_delete skips cascades and signals, which an ordered wipe of
        # every table does not need.
        for m2m in model._meta.local_many_to_many:
            if m2m.remote_field.through._meta.auto_created:
                m2m.remote_field.through._base_manager.all()._raw_delete(DEFAULT_DB_ALIAS)
        count = model._base_manager.count()
        if count:
            model._base_manager.all()._raw_delete(DEFAULT_DB_ALIAS)
            cleared[_label(model)] = count
            progress(f"  cleared {_label(model)}: {count} row(s)")
    return cleared


def _load_table(model: type[models.Model], path: Path) -> int:
    """Insert the rows of one table file with their primary keys and timestamps as saved."""
    fields = [f for f in model._meta.local_concrete_fields]
    rows = 0
    with path.open("rb") as handle:
        while True:
            lines = [line for _, line in zip(range(BATCH), handle, strict=False)]
            if not lines:
                break
            records = [json.loads(line) for line in lines]
            objects = list(
                serializers.deserialize("python", records, handle_forward_references=False)
            )
            instances = [obj.object for obj in objects]
            if model._meta.parents:  # pragma: no cover - multi-table inheritance
                for obj in objects:
                    obj.save()
            else:
                # raw: keep auto_now / auto_now_add values as they were saved.
                model._base_manager._insert(
                    instances, fields=fields, raw=True, using=DEFAULT_DB_ALIAS
                )
            for obj in objects:
                for name, values in (obj.m2m_data or {}).items():
                    if values:
                        getattr(obj.object, name).set(values)
            rows += len(instances)
    return rows


def _reset_sequences(models_: list[type[models.Model]]) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    # The tables of many-to-many fields (a user's groups) have id sequences of their own.
    through = [
        f.remote_field.through
        for model in models_
        for f in model._meta.local_many_to_many
        if f.remote_field.through._meta.auto_created
    ]
    statements = connection.ops.sequence_reset_sql(no_style(), [*models_, *through])
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _check_blob_rows(expected: set[str]) -> None:
    referenced = set(BundleEntry.objects.values_list("blob_id", flat=True).distinct())
    if referenced - expected:
        raise BackupError(
            f"The backup's rows reference {len(referenced - expected)} blob(s) that it does "
            "not hold. Nothing was restored."
        )


def load_tables(
    manifest: dict[str, Any],
    by_label: dict[str, type[models.Model]],
    *,
    work: Path,
    force: bool,
    report: RestoreReport,
    progress: Progress,
) -> None:
    """In one transaction: clear the target (``force``), load every verified table file from
    ``work`` and check its row count, reset the sequences, check the blobs referenced."""
    with transaction.atomic():
        if force:
            report.cleared = _clear(progress)
        for table in manifest["tables"]:
            rows = _load_table(by_label[table["model"]], work / f"{table['model']}.jsonl")
            if rows != table["rows"]:
                raise BackupError(
                    f"{table['file']} holds {rows} row(s), the manifest says "
                    f"{table['rows']}. Nothing was restored."
                )
            report.tables[table["model"]] = rows
            progress(f"  {table['model']}: {rows} row(s)")
        _reset_sequences([by_label[t["model"]] for t in manifest["tables"]])
        _check_blob_rows(set(manifest["blobs"]["sha256"]))
