"""manage.py import_exchange: move courses in from nbgrader's filesystem exchange or ngshare,
with every release, submission (at its original timestamp) and feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from courses.exceptions import ExchangeError
from courses.importers import common

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Import courses from another exchange: 'fs ROOT' reads nbgrader's filesystem exchange, "
        "'ngshare --database URL --storage DIR' an ngshare installation. Each course is "
        "imported in one transaction; a second run adds only what is new; entries that "
        "cannot be read are skipped and listed with the reason."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sources = parser.add_subparsers(dest="source", required=True, metavar="{fs,ngshare}")
        fs = sources.add_parser("fs", help="nbgrader's filesystem exchange")
        fs.add_argument("root", help="the exchange root (nbgrader's Exchange.root)")
        ngshare = sources.add_parser("ngshare", help="an ngshare 0.5/0.6 installation")
        ngshare.add_argument(
            "--database",
            required=True,
            help="ngshare's database URL (sqlite:////path/ngshare.db or postgresql://...)",
        )
        ngshare.add_argument("--storage", required=True, help="ngshare's storage directory")
        for sub in (fs, ngshare):
            sub.add_argument(
                "--course",
                action="append",
                dest="courses",
                metavar="C",
                help="import only this course (repeatable; default: every course)",
            )
            sub.add_argument(
                "--instructor",
                action="append",
                dest="instructors",
                default=[],
                metavar="USER",
                help="make this user an instructor of every imported course (repeatable)",
            )
            sub.add_argument(
                "--dry-run",
                action="store_true",
                help="report what would be imported, change nothing",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["source"] == "fs":
            sources = self._read_fs(Path(options["root"]), options["courses"])
        else:
            from courses.importers import ngshare

            try:
                sources = ngshare.read(
                    database=options["database"],
                    storage=Path(options["storage"]),
                    courses=options["courses"],
                )
            except ngshare.SourceError as exc:
                raise CommandError(str(exc)) from exc
        failed = []
        for source in sources:
            try:
                summary = common.import_course(
                    source, instructors=options["instructors"], dry_run=options["dry_run"]
                )
            except ExchangeError as exc:
                # The course's transaction rolled back; the others still go in.
                self.stderr.write(f"Course {source.code} not imported: {exc.detail}")
                failed.append(source.code)
                continue
            self._report(summary)
        if failed:
            raise CommandError(f"{len(failed)} course(s) not imported: {', '.join(failed)}.")

    def _read_fs(self, root: Path, courses: list[str] | None) -> list[common.CourseSource]:
        from courses.importers import fs

        if not root.is_dir():
            raise CommandError(f"{root} is not a directory.")
        present = fs.list_courses(root)
        missing = sorted(set(courses or ()) - set(present))
        if missing:
            raise CommandError(f"No course {', '.join(missing)} under {root}.")
        return [fs.read_course(root, code) for code in (courses or present)]

    def _report(self, summary: common.CourseSummary) -> None:
        prefix = "Would import (dry run, nothing changed)" if summary.dry_run else "Imported"
        counts = ", ".join(f"{n} {key}" for key, n in sorted(summary.counts.items())) or "nothing"
        created = " (new course)" if summary.course_created else ""
        self.stdout.write(
            f"{prefix} {summary.code}{created}: {counts}; {summary.bytes_added} bytes added."
        )
        if not summary.added_anything:
            self.stdout.write(f"  {summary.code}: nothing new.")
        if summary.skipped:
            self.stdout.write(f"  skipped {len(summary.skipped)}:")
            for where, why in summary.skipped:
                self.stdout.write(f"    {where}: {why}")
