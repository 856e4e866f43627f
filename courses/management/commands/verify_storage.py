"""manage.py verify_storage: every referenced blob present and intact; orphans listed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from courses import storage_checks

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Check that every file the database references is in storage and that its bytes hash "
        "to its SHA-256; list orphan files (no database row) and unreferenced rows. Exits 1 "
        "when a file is missing or damaged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--quick", action="store_true", help="compare sizes instead of reading every byte"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = storage_checks.verify_storage(quick=options["quick"], progress=self.stderr.write)
        for sha in report.missing:
            self.stdout.write(f"MISSING  {sha}")
        for sha, problem in report.corrupt:
            self.stdout.write(f"DAMAGED  {sha}: {problem}")
        for sha in report.orphan_files:
            self.stdout.write(f"orphan file (no database row)   {sha}")
        for sha in report.unreferenced_rows:
            self.stdout.write(f"unreferenced blob (no bundle)   {sha}")
        for pk in report.ownerless_bundles:
            self.stdout.write(f"ownerless bundle (no release, submission or feedback) {pk}")
        self.stdout.write(
            f"Checked {report.checked} referenced blob(s): {len(report.missing)} missing, "
            f"{len(report.corrupt)} damaged; {len(report.orphan_files)} orphan file(s), "
            f"{len(report.unreferenced_rows)} unreferenced blob(s), "
            f"{len(report.ownerless_bundles)} ownerless bundle(s) (gc_blobs removes those)."
        )
        if not report.ok:
            raise CommandError(
                f"{len(report.missing)} referenced file(s) missing and {len(report.corrupt)} "
                "damaged in storage: restore them from a backup (see docs/operations.md)."
            )
