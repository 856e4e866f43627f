"""JupyterLab's Assignments tab with the exchange's own error sentences.

nbgrader's ``assignment_list`` server extension (the server side of Lab's Assignments tab)
was written for the filesystem exchange. When listing fails with an ``ExchangeError`` it
shows a fixed paragraph saying the exchange *directory* does not exist; when Fetch or Fetch
Feedback fails it shows nothing at all (it just lists again); when Submit fails it shows a
Python traceback. With this plugin those failures have a cause worth reading ("the exchange
server at ... is not reachable", "you are not enrolled in ..."), so this server extension
keeps nbgrader's handlers and JavaScript exactly as they are and swaps the manager behind
them for one that passes the sentence on:

- listing fails: the sentence is shown in the tab, where nbgrader shows its errors;
- Fetch or Fetch Feedback fails: the tab shows what failed instead of the list (the refresh
  button brings the list back);
- Submit fails: nbgrader's "Invalid Submission" dialog shows the sentence, not a traceback.

Enable it next to nbgrader's own extensions, in the single-user image::

    jupyter server extension enable --sys-prefix nbgrader_exchange.lab

Unexpected errors (bugs) are reported as nbgrader reports them, with the traceback.
"""

from __future__ import annotations

import os
import textwrap
import traceback
from typing import Any

from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError, ExchangeFactory
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

Result = dict[str, Any]


class ExchangeAssignmentList(AssignmentList):
    """nbgrader's assignment list manager, reporting exchange failures in their own words."""

    # A failed Fetch or Fetch Feedback, shown by the listing that nbgrader's handler
    # sends right after it (the only answer the tab reads).
    _pending_error: str | None = None

    # --- listing --------------------------------------------------------------------------

    def _listing(self, course_id: str | None, *, cached: bool) -> Result:
        # Exceptions are caught inside the ``with``: nbgrader's chdir helper only goes back
        # to the previous directory when its block ends normally.
        with self.get_assignment_dir_config() as config:
            try:
                if cached:
                    config.ExchangeList.cached = True
                if course_id:
                    config.CourseDirectory.course_id = course_id
                lister = ExchangeFactory(config=config).List(
                    coursedir=CourseDirectory(config=config),
                    authenticator=Authenticator(config=config),
                    config=config,
                )
                assignments = lister.start()
            except ExchangeError as exc:
                self.log.error("Listing assignments failed: %s", exc)
                return {"success": False, "value": str(exc)}
            except Exception:
                self.log.error(traceback.format_exc())
                return {"success": False, "value": traceback.format_exc()}
        return {"success": True, "value": assignments}

    def list_released_assignments(self, course_id: str | None = None) -> Result:
        result = self._listing(course_id, cached=False)
        if result["success"]:
            for assignment in result["value"]:
                if assignment["status"] == "fetched":
                    assignment["path"] = os.path.relpath(assignment["path"], self.root_dir)
                    for notebook in assignment["notebooks"]:
                        notebook["path"] = os.path.relpath(notebook["path"], self.root_dir)
            result["value"].sort(key=lambda a: (a["course_id"], a["assignment_id"]))
        return result

    def list_submitted_assignments(self, course_id: str | None = None) -> Result:
        result = self._listing(course_id, cached=True)
        if result["success"]:
            for assignment in result["value"]:
                for submission in assignment["submissions"]:
                    path = submission.get("local_feedback_path")
                    if path and os.path.exists(path):
                        submission["local_feedback_path"] = os.path.relpath(path, self.root_dir)
                assignment["submissions"].sort(key=lambda s: s["timestamp"])
            result["value"].sort(key=lambda a: a["assignment_id"])
        return result

    def list_assignments(self, course_id: str | None = None) -> Result:
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            return {"success": False, "value": error}
        return super().list_assignments(course_id=course_id)

    # --- actions --------------------------------------------------------------------------

    def _run(self, role: str, course_id: str, assignment_id: str) -> Result:
        with self.get_assignment_dir_config():
            try:
                config = self.load_config()
                config.CourseDirectory.course_id = course_id
                config.CourseDirectory.assignment_id = assignment_id
                app = getattr(ExchangeFactory(config=config), role)(
                    coursedir=CourseDirectory(config=config),
                    authenticator=Authenticator(config=config),
                    config=config,
                )
                app.start()
            except ExchangeError as exc:
                self.log.error("%s of %s failed: %s", role, assignment_id, exc)
                return {"success": False, "value": str(exc)}
            except Exception:
                self.log.error(traceback.format_exc())
                return {"success": False, "value": traceback.format_exc()}
        return {"success": True}

    def _remember_failure(self, result: Result) -> Result:
        if not result["success"]:
            self._pending_error = result["value"]
        return result

    def fetch_assignment(self, course_id: str, assignment_id: str) -> Result:
        return self._remember_failure(self._run("FetchAssignment", course_id, assignment_id))

    def fetch_feedback(self, course_id: str, assignment_id: str) -> Result:
        return self._remember_failure(self._run("FetchFeedback", course_id, assignment_id))

    def submit_assignment(self, course_id: str, assignment_id: str) -> Result:
        result = self._run("Submit", course_id, assignment_id)
        if not result["success"] and "Traceback" not in result["value"]:
            # The dialog shows the message in a <pre>, which does not wrap long lines.
            result["value"] = textwrap.fill(
                result["value"], width=76, break_long_words=False, break_on_hyphens=False
            )
        return result


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbgrader_exchange.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Put the manager in place of nbgrader's (its handlers look it up on every request).

    Jupyter Server loads extensions in name order, so nbgrader's ``assignment_list``
    (``nbgrader.server_...``) has set its manager up by the time this one runs.
    """
    manager = ExchangeAssignmentList(parent=serverapp)
    manager.root_dir = serverapp.root_dir
    serverapp.web_app.settings["assignment_list_manager"] = manager
    serverapp.log.info("nbgrader_exchange.lab: the Assignments tab reports exchange errors")
