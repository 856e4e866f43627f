"""What every part of backup and restore shares: the archive's format, the error, and the
models a backup holds in load order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, models, router

from ..exceptions import ExchangeError

if TYPE_CHECKING:
    from .dump import BackupReport


FORMAT = "nbgrader-exchange-backup"
VERSION = 1
MANIFEST = "manifest.json"
# The record of collections describes this install's own collections, not data: a
# restored copy would only make a target where gc ran look "not empty".
EXCLUDED = {
    "contenttypes.contenttype",
    "auth.permission",
    "sessions.session",
    "courses.collectionrecord",
}
BATCH = 1000
# Archives named by the service itself (a directory or an S3 prefix given): sortable by time.
ARCHIVE_PREFIX = "exchange-"
ARCHIVE_SUFFIX = ".tar.gz"
S3_PART_SIZE = 16 * 1024 * 1024


class BackupError(ExchangeError):
    """A backup that cannot be written or an archive that cannot be restored."""

    status_code = 400
    code = "backup"


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def backup_models() -> list[type[models.Model]]:
    """Every model whose rows a backup holds, parents before children (load order)."""
    chosen = [
        model
        for model in apps.get_models()
        if _label(model) not in EXCLUDED
        and model._meta.managed
        and not model._meta.proxy
        and router.allow_migrate_model(DEFAULT_DB_ALIAS, model)
    ]
    chosen.sort(key=_label)
    included = set(chosen)
    ordered: list[type[models.Model]] = []
    visiting: set[type[models.Model]] = set()

    def visit(model: type[models.Model]) -> None:
        if model in ordered or model in visiting:
            return
        visiting.add(model)
        for dep in _dependencies(model):
            if dep in included and dep is not model:
                visit(dep)
        visiting.discard(model)
        ordered.append(model)

    for model in chosen:
        visit(model)
    return ordered


def _dependencies(model: type[models.Model]) -> list[type[models.Model]]:
    deps = []
    for f in model._meta.get_fields():
        if (f.many_to_one or f.one_to_one or f.many_to_many) and f.concrete and f.related_model:
            deps.append(f.related_model._meta.concrete_model)
    return deps


@dataclass
class RestoreReport:
    tables: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0
    created_at: str = ""
    source_database: str = ""
    cleared: dict[str, int] = field(default_factory=dict)


def describe(report: BackupReport | RestoreReport) -> str:
    rows = sum(report.tables.values())
    return (
        f"{rows} row(s) in {len(report.tables)} table(s), {report.blobs} blob(s) "
        f"({report.blob_bytes} bytes)"
    )
