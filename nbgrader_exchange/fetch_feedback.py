"""``nbgrader fetch_feedback``: download the feedback on your submissions of an assignment.

Feedback is asked for by assignment and arrives per submission (its id and timestamp), so it
is found even when the local nbgrader cache of your submissions is gone. Files land where
nbgrader puts them: ``./<assignment>/feedback/<timestamp>/<notebook>.html``.
"""

from __future__ import annotations

from nbgrader.exchange.abc import ExchangeFetchFeedback as ABCExchangeFetchFeedback

from .errors import ServiceError
from .exchange import Exchange
from .files import folder_name


class ExchangeFetchFeedback(Exchange, ABCExchangeFetchFeedback):
    """Fetch the released feedback on each of the caller's submissions."""

    def init_src(self) -> None:
        self.course_id = self.require_course()
        self.assignment_id = self.coursedir.assignment_id
        self.check_student_id()

    def init_dest(self) -> None:
        self.dest_path = self.local_assignment_path(self.course_id, self.assignment_id) / "feedback"

    def copy_files(self) -> None:
        what = f"fetch feedback on {self.assignment_id} from course {self.course_id}"
        url = f"{self.assignment_url(self.course_id, self.assignment_id)}/feedback"
        self.log.info("Source: %s course %s", self.client.server, self.course_id)
        self.log.info("Destination: %s", self.dest_path)
        # Small files' bytes in the answer itself: one request for the whole feedback
        # (an older server ignores the parameter and sends URLs only).
        released = self.client.get_with_files(f"{url}?inline=true", what=what)
        if not released:
            self.log.warning(
                "No feedback available yet for '%s/%s'", self.course_id, self.assignment_id
            )
            return
        cache = self.new_blob_cache()
        for feedback in released:
            try:
                stamp = folder_name(feedback["timestamp"], "the submission timestamp")
            except ServiceError as exc:
                self.log.error("Feedback not fetched: %s", exc)
                continue
            self.log.info(
                "Found feedback for '%s/%s' submitted at %s",
                self.course_id,
                self.assignment_id,
                feedback["timestamp"],
            )
            written = self.client.download_bundle(
                feedback["files"], self.dest_path / stamp, what=what, cache=cache
            )
            for path in written:
                self.log.info("Fetched feedback: %s", path)
            if feedback.get("score") is not None:
                # Older servers send no score; graded feedback says it in the CLI as on the page.
                self.log.info(
                    "Score for the submission at %s: %g / %g",
                    feedback["timestamp"],
                    feedback["score"],
                    feedback["max_score"],
                )
