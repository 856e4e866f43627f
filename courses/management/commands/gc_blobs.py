"""manage.py gc_blobs: delete blobs nothing references, after a grace period."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from courses import storage_checks

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Delete file sets that no release, submission or feedback holds, stored files that "
        "none references (and their database rows), orphan files left by failed uploads, and "
        "stale upload temporary files, all only when older than the grace period."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace",
            default="24h",
            help="spare anything younger than this (e.g. 30m, 24h, 7d; default 24h)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            grace = storage_checks.parse_age(options["grace"])
        except ValueError as exc:
            raise CommandError(f"--grace {exc}") from exc
        report = storage_checks.gc_blobs(
            grace=grace, dry_run=options["dry_run"], progress=self.stderr.write
        )
        verb = "would delete" if report.dry_run else "deleted"
        for sha in report.restored:
            self.stdout.write(f"restored {sha} (moved aside by a collection that was killed)")
        for pk in report.bundles:
            self.stdout.write(f"{verb} ownerless bundle {pk}")
        for sha in report.rows:
            self.stdout.write(f"{verb} unreferenced blob {sha}")
        for sha in report.files:
            self.stdout.write(f"{verb} orphan file {sha}")
        for name in report.temp_files:
            self.stdout.write(f"{verb} temporary file {name}")
        self.stdout.write(
            f"{'Dry run: ' if report.dry_run else ''}{verb} {len(report.bundles)} ownerless "
            f"bundle(s), {len(report.rows)} unreferenced "
            f"blob(s), {len(report.files)} orphan file(s), {len(report.temp_files)} temporary "
            f"file(s), {report.bytes_freed} bytes; kept {report.kept_recent} younger than "
            f"{options['grace']}."
        )
