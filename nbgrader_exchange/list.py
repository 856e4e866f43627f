"""``nbgrader list`` and the JupyterLab "Assignments" tab.

Returns exactly the dicts nbgrader's own ``ExchangeList`` returns (the JupyterLab extension
reads them): released assignments as ``released`` or ``fetched``; with ``--inbound`` (every
student's submissions, for instructors) or ``--cached`` (your own submissions) one group per
course, student and assignment holding its ``submissions``, each with its notebooks and the
feedback keys ``has_local_feedback``, ``has_exchange_feedback``, ``local_feedback_path`` and
``feedback_updated``. Without a configured course, every course of the user is listed.

The printed list of released assignments shows each one's due date and cutoff as the server
gives them to the caller: a student's own (an extension's, if any). The dicts keep nbgrader's
keys only. ``--inbound --remove`` removes the listed submissions on the server (instructors).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from nbgrader.exchange.abc import ExchangeList as ABCExchangeList
from traitlets import Bool

from .errors import ServiceError
from .exchange import Exchange
from .files import sha256_of

REMOVED_MARK = "removed.txt"


def _top_notebooks(files: list[dict[str, Any]]) -> list[str]:
    """Notebook ids of the top-level notebooks of a bundle, sorted like nbgrader's glob."""
    return sorted(
        PurePosixPath(f["path"]).stem
        for f in files
        if "/" not in f["path"] and f["path"].endswith(".ipynb")
    )


class ExchangeList(Exchange, ABCExchangeList):
    """List (or remove) released assignments, submissions and your own submissions."""

    as_json = Bool(False, help="Print the list as JSON on standard output.").tag(config=True)

    def init_src(self) -> None:
        pass

    def init_dest(self) -> None:
        self.what = "list assignments" if not (self.inbound or self.cached) else "list submissions"
        course_id = self.coursedir.course_id
        if course_id:
            self.course_ids = [course_id]
        else:
            self.course_ids = sorted(
                c["course_id"] for c in self.client.get("courses", what=self.what)
            )
        if self.inbound or self.cached:
            self.records = self._submissions()
        else:
            self.records = self._releases()

    def copy_files(self) -> None:
        pass

    # --- what the server holds -------------------------------------------------------------

    def _assignments(self, course_id: str) -> list[dict[str, Any]]:
        assignments = self.client.get(self.assignment_url(course_id), what=self.what)
        wanted = self.coursedir.assignment_id
        return [
            a
            for a in assignments
            if a.get("released") and (not wanted or wanted == "*" or a["assignment_id"] == wanted)
        ]

    def _releases(self) -> list[dict[str, Any]]:
        records = []
        self._dates: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        for course_id in self.course_ids:
            for assignment in self._assignments(course_id):
                self._dates[(course_id, assignment["assignment_id"])] = (
                    assignment.get("due_date"),
                    assignment.get("accept_until"),
                )
                records.append(
                    {
                        "course_id": course_id,
                        "assignment_id": assignment["assignment_id"],
                        "remote": self.client.url_for(
                            self.assignment_url(course_id, assignment["assignment_id"])
                        ),
                    }
                )
        return sorted(records, key=lambda r: (r["course_id"], r["assignment_id"]))

    def _submissions(self) -> list[dict[str, Any]]:
        student = self.coursedir.student_id
        if self.cached:
            student = self.client.get("me", what=self.what)["username"]
        elif student in ("", "*"):
            student = ""
        found: list[dict[str, Any]] = []
        for course_id in self.course_ids:
            for assignment in self._assignments_with_submissions(course_id):
                params = {"student": student} if student else {}
                url = f"{self.assignment_url(course_id, assignment['assignment_id'])}/submissions"
                for sub in self.client.get(url, what=self.what, **params):
                    if student and sub["student"] != student:
                        continue
                    try:
                        record = self._record_dir(sub)
                    except ServiceError as exc:
                        self.log.error("Not listed: %s", exc)
                        continue
                    if self.cached and os.path.exists(os.path.join(record, REMOVED_MARK)):
                        continue
                    found.append(sub)
        with ThreadPoolExecutor(max_workers=self.download_workers) as pool:
            return list(pool.map(self._with_files, found))

    def _assignments_with_submissions(self, course_id: str) -> list[dict[str, Any]]:
        # Students see released assignments; an unreleased one may still hold submissions,
        # which instructors see in the full list.
        assignments = self.client.get(self.assignment_url(course_id), what=self.what)
        wanted = self.coursedir.assignment_id
        return [
            a for a in assignments if not wanted or wanted == "*" or a["assignment_id"] == wanted
        ]

    def _with_files(self, sub: dict[str, Any]) -> dict[str, Any]:
        # The detail carries the feedback's hashes too; reading them is not a fetch.
        detail = self.client.get(f"submissions/{sub['id']}", what=self.what)
        return {
            **sub,
            "files": detail.get("files", []),
            "feedback_files": detail.get("feedback_files", []),
        }

    def _record_dir(self, sub: dict[str, Any]) -> str:
        """The local record of a submission in nbgrader's cache (written by submit)."""
        return str(
            self.submission_record(
                sub["course_id"], sub["student"], sub["assignment_id"], sub["timestamp"]
            )
        )

    # --- nbgrader's dicts ------------------------------------------------------------------

    def _released_notebooks(self, record: dict[str, Any]) -> list[str]:
        detail = self.client.get(
            self.assignment_url(record["course_id"], record["assignment_id"]), what=self.what
        )
        return _top_notebooks(detail.get("files", []))

    def parse_assignments(self) -> list[dict[str, Any]]:
        assignments = []
        for record in self.records:
            if self.inbound or self.cached:
                assignments.append(self._parse_submission(record))
            else:
                assignments.append(self._parse_release(record))
        if self.inbound or self.cached:
            assignments = self._group(assignments)
        return assignments

    def _parse_release(self, record: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "course_id": record["course_id"],
            "assignment_id": record["assignment_id"],
        }
        assignment_dir = self.local_assignment_dir(info["course_id"], info["assignment_id"])
        if os.path.exists(assignment_dir):
            info["status"] = "fetched"
            info["path"] = os.path.abspath(assignment_dir)
            notebooks = [
                (os.path.splitext(os.path.basename(nb))[0], os.path.abspath(nb))
                for nb in sorted(glob.glob(os.path.join(info["path"], "*.ipynb")))
            ]
        else:
            info["status"] = "released"
            info["path"] = record["remote"]
            notebooks = [
                (nb, f"{record['remote']}/{nb}.ipynb") for nb in self._released_notebooks(record)
            ]
        if self.remove:
            info["status"] = "removed"
        if not notebooks:
            self.log.warning("No notebooks found in %s", info["path"])
        info["notebooks"] = [{"notebook_id": nb, "path": path} for nb, path in notebooks]
        return info

    def _parse_submission(self, sub: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "course_id": sub["course_id"],
            "student_id": sub["student"],
            "assignment_id": sub["assignment_id"],
            "timestamp": sub["timestamp"],
        }
        if self.inbound:
            info["random_string"] = None
        record = self._record_dir(sub)
        info["status"] = "removed" if self.remove else "submitted"
        if self.cached and os.path.isdir(record):
            info["path"] = record
        else:
            info["path"] = self.client.url_for(f"submissions/{sub['id']}")
        info["record"] = record
        assignment_dir = self.local_assignment_dir(info["course_id"], info["assignment_id"])
        feedback = {f["path"]: f["sha256"] for f in sub.get("feedback_files", [])}
        info["notebooks"] = []
        notebook_ids = _top_notebooks(sub.get("files", []))
        if not notebook_ids:
            self.log.warning("No notebooks found in %s", info["path"])
        for notebook_id in notebook_ids:
            nb_info: dict[str, Any] = {
                "notebook_id": notebook_id,
                "path": os.path.join(info["path"], f"{notebook_id}.ipynb"),
            }
            if info["status"] != "submitted":
                info["notebooks"].append(nb_info)
                continue
            local = os.path.join(
                assignment_dir, "feedback", info["timestamp"], f"{notebook_id}.html"
            )
            has_local = os.path.isfile(local)
            exchange_sha = feedback.get(f"{notebook_id}.html")
            nb_info["has_local_feedback"] = has_local
            nb_info["has_exchange_feedback"] = exchange_sha is not None
            nb_info["local_feedback_path"] = local if has_local else None
            nb_info["feedback_updated"] = bool(
                has_local and exchange_sha is not None and sha256_of(Path(local)) != exchange_sha
            )
            info["notebooks"].append(nb_info)
        if info["status"] == "submitted":
            nbs = info["notebooks"]
            info["has_local_feedback"] = bool(nbs) and all(nb["has_local_feedback"] for nb in nbs)
            info["has_exchange_feedback"] = bool(nbs) and all(
                nb["has_exchange_feedback"] for nb in nbs
            )
            info["feedback_updated"] = bool(nbs) and any(nb["feedback_updated"] for nb in nbs)
            if info["has_local_feedback"]:
                full = os.path.abspath(assignment_dir)
                base = full if os.path.exists(full) else assignment_dir
                info["local_feedback_path"] = os.path.join(base, "feedback", info["timestamp"])
            else:
                info["local_feedback_path"] = None
        return info

    def _group(self, infos: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._cache_records = [info.pop("record") for info in infos]
        keys = sorted({(i["course_id"], i["student_id"], i["assignment_id"]) for i in infos})
        groups = []
        for key in keys:
            submissions = sorted(
                (i for i in infos if (i["course_id"], i["student_id"], i["assignment_id"]) == key),
                key=lambda x: x["timestamp"],
            )
            groups.append(
                {
                    "course_id": key[0],
                    "student_id": key[1],
                    "assignment_id": key[2],
                    "status": submissions[0]["status"],
                    "submissions": submissions,
                }
            )
        return groups

    # --- output ----------------------------------------------------------------------------

    def format_inbound_assignment(self, info: dict[str, Any]) -> str:
        msg = "{course_id} {student_id} {assignment_id} {timestamp}".format(**info)
        if info["status"] == "submitted":
            if info["has_local_feedback"] and not info["feedback_updated"]:
                msg += " (feedback already fetched)"
            elif info["has_exchange_feedback"]:
                msg += " (feedback ready to be fetched)"
            else:
                msg += " (no feedback available)"
        return msg

    def format_outbound_assignment(self, info: dict[str, Any]) -> str:
        msg = "{course_id} {assignment_id}".format(**info)
        due, cutoff = getattr(self, "_dates", {}).get(
            (info["course_id"], info["assignment_id"]), (None, None)
        )
        if due:
            msg += f" (due {due})"
        if cutoff:
            msg += f" (accepted until {cutoff})"
        if os.path.exists(info["assignment_id"]):
            msg += " (already downloaded)"
        return msg

    def _show(self, assignments: list[dict[str, Any]], removing: bool) -> None:
        if self.as_json:
            json.dump(assignments, sys.stdout, indent=1)
            sys.stdout.write("\n")
            sys.stdout.flush()
            return
        if self.inbound or self.cached:
            self.log.info(
                "Removing submitted assignments:" if removing else "Submitted assignments:"
            )
            for assignment in assignments:
                for info in assignment["submissions"]:
                    self.log.info(self.format_inbound_assignment(info))
        else:
            self.log.info("Removing released assignments:" if removing else "Released assignments:")
            for info in assignments:
                self.log.info(self.format_outbound_assignment(info))

    def list_files(self) -> list[dict[str, Any]]:
        assignments = self.parse_assignments()
        self._show(assignments, removing=False)
        return assignments

    def remove_files(self) -> list[dict[str, Any]]:
        assignments = self.parse_assignments()
        self._show(assignments, removing=True)
        if self.inbound:
            # Removed on the server (instructors only; audited there, bytes freed by gc_blobs).
            for sub in self.records:
                self.client.delete(
                    f"submissions/{sub['id']}",
                    what=(
                        f"remove the submission of {sub['assignment_id']} by {sub['student']} "
                        f"at {sub['timestamp']} from course {sub['course_id']}"
                    ),
                )
        elif self.cached:
            # The server keeps every submission; removing forgets it here, like nbgrader's
            # cache: the record is emptied and marked, and --cached lists it no more.
            for record in self._cache_records:
                shutil.rmtree(record, ignore_errors=True)
                os.makedirs(record, exist_ok=True)
                with open(os.path.join(record, REMOVED_MARK), "w") as fh:
                    fh.write("Removed with nbgrader list --cached --remove.\n")
        else:
            for info in assignments:
                self.client.delete(
                    f"{self.assignment_url(info['course_id'], info['assignment_id'])}/release",
                    what=f"remove {info['assignment_id']} from course {info['course_id']}",
                    force="true",
                )
        return assignments
