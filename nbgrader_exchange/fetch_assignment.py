"""``nbgrader fetch_assignment``: download the course's release into ``./<assignment>``."""

from __future__ import annotations

import fnmatch
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from nbgrader.exchange.abc import ExchangeFetchAssignment as ABCExchangeFetchAssignment

from . import seen_release
from .exchange import Exchange


class ExchangeFetchAssignment(Exchange, ABCExchangeFetchAssignment):
    """Fetch a release; with ``--replace`` only the missing files are downloaded."""

    def init_src(self) -> None:
        self.course_id = self.require_course()
        self.assignment_id = self.coursedir.assignment_id

    def init_dest(self) -> None:
        self.dest_path = self.local_assignment_path(self.course_id, self.assignment_id)
        if self.dest_path.is_dir() and not self.replace_missing_files:
            root = self.dest_path.relative_to(Path(self.assignment_dir).absolute())
            self.fail(f"You already have a copy of the assignment in this directory: {root}")

    def _ignored(self, path: str) -> bool:
        return any(
            fnmatch.fnmatch(part, pattern)
            for part in PurePosixPath(path).parts
            for pattern in self.coursedir.ignore
        )

    def copy_files(self) -> None:
        what = f"fetch {self.assignment_id} from course {self.course_id}"
        url = f"{self.assignment_url(self.course_id, self.assignment_id)}/release/files"
        # A first fetch takes the small files' bytes with the manifest (one request for the
        # notebooks); ``--replace`` wants few of them, by URL.
        replacing = self.dest_path.is_dir()
        if replacing:
            manifest = self.client.get(url, what=what)
        else:
            manifest = self.client.get_with_files(f"{url}?inline=true", what=what)
        files = manifest["files"]
        self.log.info("Source: %s course %s", self.client.server, self.course_id)
        self.log.info("Destination: %s", self.dest_path)
        if replacing:

            def skip(path: str) -> bool:
                if self._ignored(path):
                    return True
                if (self.dest_path / PurePosixPath(path)).exists():
                    return True
                self.log.warning("Replacing missing file '%s'", path)
                return False

            self.client.download_bundle(files, self.dest_path, what=what, skip=skip)
        else:
            self.dest_path.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self.dest_path.parent))
            staging.chmod(0o755)
            try:
                self.client.download_bundle(files, staging, what=what, skip=self._ignored)
                staging.rename(self.dest_path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        # What a later submit leaves out without asking the server again (seen_release.py).
        release = seen_release.from_answer(manifest)
        seen_release.remember(self.cache, self.course_id, self.assignment_id, release)
        self.log.info("Fetched as: %s %s", self.course_id, self.assignment_id)
