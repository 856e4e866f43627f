"""Correct blob rows recorded with a size other than their bytes'.

Before manifests were checked against bytes, an upload could record a blob with the size its
manifest claimed (one hash listed twice with two sizes, or a stored file named with a wrong
size). Listings then showed that size and downloads broke off at it, in every course holding
those bytes. This migration compares each row with the size of its stored file (one metadata
request per blob, several at once on an object store; no bytes are read) and corrects the row
and the totals of the bundles that list it. A file missing from storage is left to
``verify_storage``, which reports it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.core.files.storage import FileSystemStorage, storages
from django.db import migrations
from django.db.models import Sum

CHUNK = 1000


def _stored_size(storage, sha256: str) -> int | None:
    try:
        return storage.size(f"blobs/{sha256[:2]}/{sha256}")
    except Exception:  # missing (or unreadable): verify_storage reports it, not a migration
        return None


def repair_blob_sizes(apps, schema_editor) -> list[str]:
    """Give every blob row the size of its stored bytes; the hashes corrected."""
    Blob = apps.get_model("courses", "Blob")
    Bundle = apps.get_model("courses", "Bundle")
    BundleEntry = apps.get_model("courses", "BundleEntry")
    if not Blob.objects.exists():
        return []  # a new install: no need to reach the storage at all
    storage = storages["default"]
    threads = 1 if isinstance(storage, FileSystemStorage) else 8
    corrected: list[str] = []
    rows = Blob.objects.order_by("sha256").values_list("sha256", "size")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, rows.count(), CHUNK):
            chunk = list(rows[start : start + CHUNK])
            sizes = pool.map(lambda row: _stored_size(storage, row[0]), chunk)
            for (sha256, recorded), actual in zip(chunk, sizes, strict=True):
                if actual is not None and actual != recorded:
                    Blob.objects.filter(sha256=sha256).update(size=actual)
                    corrected.append(sha256)
    bundles = Bundle.objects.filter(entries__blob_id__in=corrected).distinct().values_list("pk")
    for (pk,) in bundles:
        total = BundleEntry.objects.filter(bundle_id=pk).aggregate(total=Sum("blob__size"))
        Bundle.objects.filter(pk=pk).update(total_size=total["total"] or 0)
    return corrected


class Migration(migrations.Migration):
    dependencies = [("courses", "0005_bundle_ownerless_since")]

    operations = [migrations.RunPython(repair_blob_sizes, migrations.RunPython.noop)]
