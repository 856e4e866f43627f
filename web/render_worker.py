"""The notebook render worker, started detached by ``web/previews.py`` (never run inside a
request worker): ``python -m web.render_worker <sha256>`` with its job as JSON on stdin.

Two processes, so that whatever kills the conversion, someone is left to write down why:

- the *supervisor* (``main``) reads the notebook from storage into a private temporary file,
  runs the converter, kills it past the wall-time limit, and stores the outcome beside the
  blob (``courses.models.preview_storage_names``): the sanitized HTML, or the reason the
  preview could not be made. Every replica finds it there; nothing is rendered twice.
- the *converter* (``--convert IN OUT``) runs nbconvert and the sanitizer under
  ``RLIMIT_CPU`` and ``RLIMIT_AS`` at a lower CPU priority (``nice``), so that a render
  yields the processor to the service's requests.

The request that started the supervisor took two locks for it (this blob; one of the
replica's render slots) and passed them as inherited file descriptors: they are held as long
as the supervisor lives and released by the kernel however it ends.

The supervisor does not load the project's settings or touch the database: the job names the
storage (as the request saw it), the names of the blob and of its preview, and the limits.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Exit statuses of the converter.
EXIT_INVALID = 3
EXIT_MEMORY = 4
CHUNK = 1024 * 1024


# --- the converter ------------------------------------------------------------------------


def convert(source: Path, target: Path) -> int:
    """Notebook file -> sanitized HTML file; the exit status says how it went."""
    data = source.read_bytes()
    try:
        # Loading the libraries is the first thing that may not fit in the memory limit.
        import nbconvert  # noqa: F401
        import nh3  # noqa: F401

        from web.rendering import notebook_html
    except MemoryError:
        return EXIT_MEMORY
    except Exception as exc:
        if _out_of_memory(exc):
            return EXIT_MEMORY
        raise
    try:
        page = notebook_html(data)
    except Exception as exc:  # nbformat's, json's or unicode's: the file is not a notebook
        if _out_of_memory(exc):
            return EXIT_MEMORY
        print(_first_line(exc), file=sys.stderr)
        return EXIT_INVALID
    except MemoryError:
        return EXIT_MEMORY
    target.write_text(page, encoding="utf-8")
    return 0


def _out_of_memory(exc: BaseException | None) -> bool:
    """Under RLIMIT_AS, running out shows as MemoryError, as ENOMEM from a library being
    loaded (an OSError or an ImportError around one), or as a SystemError."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            return True
        if "cannot allocate memory" in str(exc).lower():
            return True
        # CPython's "error return without exception set" from a C extension whose
        # allocation failed.
        if isinstance(exc, SystemError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# --- the supervisor -----------------------------------------------------------------------


def _limits(seconds: int, memory: int) -> Any:
    def apply() -> None:  # pragma: no cover (runs in the converter, between fork and exec)
        os.nice(10)
        # Soft limit: SIGXCPU; the hard one a few seconds later is SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


def run_converter(source: Path, target: Path, *, seconds: int, memory: int) -> dict[str, Any]:
    """Run the converter under its limits; ``{"ok": True}`` or the failure's reason."""
    process = subprocess.Popen(
        [sys.executable, "-m", "web.render_worker", "--convert", str(source), str(target)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # The supervisor is single-threaded: preexec_fn is safe here (it is not in gunicorn).
        preexec_fn=_limits(seconds, memory),
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        _out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"ok": False, "reason": "timeout"}
    detail = err.decode("utf-8", errors="replace").strip().splitlines()
    last = detail[-1][:300] if detail else ""
    status = process.returncode
    if status == 0:
        return {"ok": True}
    if status == EXIT_INVALID:
        return {"ok": False, "reason": "invalid", "detail": last}
    # SIGKILL that we did not send: the kernel's out-of-memory killer (the pod's memory limit).
    if status in (EXIT_MEMORY, -signal.SIGKILL) or "MemoryError" in last:
        return {"ok": False, "reason": "memory"}
    if status == -signal.SIGXCPU:
        return {"ok": False, "reason": "cpu"}
    return {"ok": False, "reason": "error", "detail": last or f"exit status {status}"}


def _storage(config: dict[str, Any]) -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure(STORAGES={"default": config})
    from django.core.files.storage import storages

    return storages["default"]


def _store(storage: Any, name: str, source: Path) -> None:
    """Put a file under ``name``, replacing what may be there, never half-written."""
    from django.core.files import File
    from django.core.files.storage import FileSystemStorage

    if isinstance(storage, FileSystemStorage):
        target = Path(storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".preview-", dir=target.parent)
        with os.fdopen(fd, "wb") as out, open(source, "rb") as handle:
            shutil.copyfileobj(handle, out, CHUNK)
        os.chmod(temp, 0o600)
        os.replace(temp, target)
        return
    with open(source, "rb") as handle:
        storage.save(name, File(handle))  # S3 overwrites (file_overwrite)


def supervise(sha256: str, job: dict[str, Any]) -> str:
    """Render one blob's notebook and store the outcome; returns what happened (for logs)."""
    storage = _storage(job["storage"])
    html_name, failed_name = job["html_name"], job["failed_name"]
    if storage.exists(html_name):
        return "already rendered"
    if storage.exists(failed_name):
        with storage.open(failed_name, "rb") as handle:
            if json.load(handle).get("limits") == job["limits"]:
                return "already failed under the same limits"
    work = Path(tempfile.mkdtemp(prefix=f"render-{sha256[:12]}-", dir=job["work_dir"]))
    try:
        source, target = work / "notebook.ipynb", work / "notebook.html"
        with storage.open(job["blob_name"], "rb") as handle, open(source, "wb") as out:
            shutil.copyfileobj(handle, out, CHUNK)
        outcome = run_converter(source, target, **job["limits"])
        if outcome.pop("ok"):
            _store(storage, html_name, target)
            storage.delete(failed_name)
            return "rendered"
        outcome["limits"] = job["limits"]
        record = work / "failed.json"
        record.write_text(json.dumps(outcome), encoding="utf-8")
        _store(storage, failed_name, record)
        return f"failed: {outcome['reason']}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--convert"]:
        return convert(Path(argv[1]), Path(argv[2]))
    sha256 = argv[0]
    job = json.loads(sys.stdin.read())
    try:
        outcome = supervise(sha256, job)
    finally:
        # The blob's lock file goes once the outcome is stored (or given up): a request that
        # still opened the old file finds the stored outcome when its own worker starts.
        Path(job["work_dir"], f"{sha256}.lock").unlink(missing_ok=True)
    print(f"render_worker: {sha256}: {outcome}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
