"""manage.py backup OUT: one archive of every table, every referenced file and a manifest."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandParser

from courses import backup

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Write one archive (tar; gzip when OUT ends in .gz or .tgz) holding every table, every "
        "referenced file and a manifest with counts and SHA-256s. Consistent while the service "
        "keeps serving."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="the archive to write, e.g. exchange-2026-11-28.tar.gz")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        self.stderr.write(f"Backing up to {options['out']}...")
        report = backup.backup(out=options["out"], progress=self.stderr.write)
        self.stdout.write(
            f"Backed up {backup.describe(report)} to {report.path} ({report.archive_bytes} "
            f"bytes) in {time.monotonic() - started:.1f}s."
        )
