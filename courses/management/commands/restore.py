"""manage.py restore IN: load a backup archive into an empty, migrated install.

IN is a file, ``-`` for standard input (``kubectl exec -i ... restore - < exchange.tar.gz``)
or ``s3://bucket/key``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import CommandParser

from courses import backup

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Restore a backup archive into this install (the database and storage of DATABASE_URL "
        "and EXCHANGE_STORAGE): every checksum is verified before any row is written. Run "
        "`migrate` first; a target that already has rows is refused unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "source",
            metavar="IN",
            help="the archive written by `backup`: a file, '-' for standard input, or "
            "s3://BUCKET/KEY",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="delete every row already in the target's tables before restoring",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        source = options["source"]
        self.stderr.write(f"Restoring {'standard input' if source == '-' else source}...")
        if source == "-":
            report = backup.restore(
                stream=sys.stdin.buffer, force=options["force"], progress=self.stderr.write
            )
        else:
            report = backup.restore(
                source=source, force=options["force"], progress=self.stderr.write
            )
        if report.cleared:
            self.stdout.write(f"Deleted {sum(report.cleared.values())} existing row(s) first.")
        for label, rows in report.tables.items():
            self.stdout.write(f"  {label}: {rows}")
        self.stdout.write(
            f"Restored {backup.describe(report)} from a {report.source_database} backup taken "
            f"{report.created_at}, in {time.monotonic() - started:.1f}s."
        )
