"""manage.py backup OUT: one archive of every table, every referenced file and a manifest.

OUT is a file, a directory (a name with the time is made up), ``-`` for standard output
(``kubectl exec ... backup - > exchange.tar.gz``) or ``s3://bucket/prefix/``.
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
        "Write one archive (tar; gzip when OUT ends in .gz or .tgz) holding every table, every "
        "referenced file and a manifest with counts and SHA-256s. Consistent while the service "
        "keeps serving. OUT may be a directory, '-' (standard output, gzip) or "
        "s3://BUCKET/PREFIX/ (the service's S3 endpoint and keys)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "out",
            help="the archive to write: a file such as exchange-2026-11-28.tar.gz, a directory, "
            "'-' for standard output, or s3://BUCKET/PREFIX/",
        )
        parser.add_argument(
            "--keep",
            type=int,
            metavar="N",
            help="afterwards delete all but the newest N archives named exchange-<time>.tar.gz "
            "in OUT's directory or S3 prefix",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        out: str = options["out"]
        keep = options["keep"]
        if keep is not None and keep < 1:
            raise backup.BackupError("--keep must be at least 1.")
        if keep is not None and out == "-":
            raise backup.BackupError("--keep needs a directory or an s3:// prefix, not '-'.")
        # With OUT '-' standard output carries the archive: every message goes to stderr.
        say = self.stderr.write if out == "-" else self.stdout.write
        self.stderr.write(f"Backing up to {'standard output' if out == '-' else out}...")
        if out == "-":
            report = backup.backup_to_stream(stream=sys.stdout.buffer, progress=self.stderr.write)
            sys.stdout.buffer.flush()
        elif out.startswith("s3://"):
            report = backup.backup_to_s3(url=out, progress=self.stderr.write)
        else:
            report = backup.backup(out=out, progress=self.stderr.write)
        say(
            f"Backed up {backup.describe(report)} to {report.path} ({report.archive_bytes} "
            f"bytes) in {time.monotonic() - started:.1f}s."
        )
        if keep is not None:
            target = out if out.startswith("s3://") else str(report.path)
            deleted = backup.prune(target=target, keep=keep, progress=self.stderr.write)
            say(f"Kept the newest {keep} archive(s); deleted {len(deleted)} older one(s).")
