"""manage.py verify_storage: every referenced blob present and intact (bytes and recorded
size); orphans listed; ``--repair`` corrects recorded sizes from intact bytes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from courses import storage_checks

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Check that every file the database references is in storage and that its bytes hash "
        "to its SHA-256 and has its recorded size; list orphan files (no database row) and "
        "unreferenced rows. Exits 1 when a file is missing or damaged, or a recorded size is "
        "wrong (--repair corrects those)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--quick", action="store_true", help="compare sizes instead of reading every byte"
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="give blob rows whose bytes are intact the size of those bytes (and their "
            "bundles the totals that follow); not with --quick",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["quick"] and options["repair"]:
            raise CommandError(
                "--repair reads every byte to trust only intact files; run it without --quick."
            )
        report = storage_checks.verify_storage(
            quick=options["quick"], repair=options["repair"], progress=self.stderr.write
        )
        for sha in report.missing:
            self.stdout.write(f"MISSING  {sha}")
        for sha, problem in report.corrupt:
            self.stdout.write(f"DAMAGED  {sha}: {problem}")
        for sha, recorded, actual in report.wrong_sizes:
            self.stdout.write(
                f"WRONG SIZE  {sha}: recorded {recorded} bytes, its bytes are {actual}"
            )
        for sha, recorded, actual in report.repaired:
            self.stdout.write(f"repaired size  {sha}: was {recorded} bytes, now {actual}")
        for sha in report.orphan_files:
            self.stdout.write(f"orphan file (no database row)   {sha}")
        for sha in report.unreferenced_rows:
            self.stdout.write(f"unreferenced blob (no bundle)   {sha}")
        for pk in report.ownerless_bundles:
            self.stdout.write(f"ownerless bundle (no release, submission or feedback) {pk}")
        self.stdout.write(
            f"Checked {report.checked} referenced blob(s): {len(report.missing)} missing, "
            f"{len(report.corrupt)} damaged, {len(report.wrong_sizes)} with a wrong recorded "
            f"size, {len(report.repaired)} size(s) repaired; {len(report.orphan_files)} orphan "
            f"file(s), {len(report.unreferenced_rows)} unreferenced blob(s), "
            f"{len(report.ownerless_bundles)} ownerless bundle(s) (gc_blobs removes those)."
        )
        if report.missing or report.corrupt:
            raise CommandError(
                f"{len(report.missing)} referenced file(s) missing and {len(report.corrupt)} "
                "damaged in storage: restore them from a backup (see docs/operations.md)."
            )
        if report.wrong_sizes:
            raise CommandError(
                f"{len(report.wrong_sizes)} file(s) are intact but recorded with a wrong size, "
                "so their downloads break off: run verify_storage --repair (see "
                "docs/operations.md)."
            )
