"""Write the service's roster into nbgrader's gradebook, without collecting anything.

Run in the course directory (where ``nbgrader_config.py`` is), as an instructor or grader::

    python -m nbgrader_exchange.sync_roster [--course=COURSE_ID]

Every student of the course on the exchange gets their first name, last name, email and
LMS id in the gradebook (``gradebook.sync_students``, in one transaction); a field the roster
leaves empty keeps what the gradebook has. ``collect`` does the same for the students it collects.
"""

from __future__ import annotations

from typing import Any

from nbgrader.apps.baseapp import NbGrader, nbgrader_aliases, nbgrader_flags

from .exchange import Exchange
from .gradebook import sync_students


class ExchangeSyncRoster(Exchange):
    """The sync as an exchange role: the roster from the service, the gradebook locally."""

    def init_src(self) -> None:
        self.course_id = self.require_course()

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        what = f"read the roster of course {self.course_id}"
        members = self.client.get(f"courses/{self.course_id}/members", what=what)
        written = sync_students(self.coursedir.db_url, self.course_id, members)
        self.log.info(
            "Wrote %d student(s) of %s into the gradebook: %s",
            len(written),
            self.course_id,
            ", ".join(written) or "none",
        )


class SyncRosterApp(NbGrader):
    name = "nbgrader-exchange-sync-roster"
    description = "Write the exchange's roster (names, email, LMS id) into the gradebook."
    aliases = {**nbgrader_aliases, "course": "CourseDirectory.course_id"}
    flags = nbgrader_flags

    def start(self) -> Any:
        from nbgrader.exchange import ExchangeError

        super().start()
        try:
            ExchangeSyncRoster(
                coursedir=self.coursedir, authenticator=self.authenticator, parent=self
            ).start()
        except ExchangeError as exc:
            # One sentence, exit status 1, as nbgrader's own exchange commands end.
            self.fail(str(exc))


main = SyncRosterApp.launch_instance

if __name__ == "__main__":  # pragma: no cover - run as python -m
    main()
