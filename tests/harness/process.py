"""The base of every server a test starts: start it, wait until it answers, stop it by its pid.

Each server runs in a session of its own (its pid is its process group), writes its output to
a log file the test can show on failure, and is asked by the kernel to stop when the process
that started it dies (``PR_SET_PDEATHSIG``), so a test run that is killed leaves no server
behind. The death signal belongs to the *thread* that started the server: start servers from
a thread that outlives them (the test's own thread, or a session fixture).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import requests

_PR_SET_PDEATHSIG = 1


def die_with_this_process() -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send SIGTERM to the child when we die."""
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    return preexec


def read_log(path: Path) -> str:
    """The server's log so far, or nothing if it has none yet."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def terminate(
    process: subprocess.Popen | None, *, timeout: float = 30, group: bool = False
) -> None:
    """SIGTERM the process we started (its whole process group if ``group``), wait for it,
    SIGKILL it if it does not stop."""
    if process is None or process.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        try:
            if group:
                os.killpg(process.pid, sig)  # started in its own session: pgid == pid
            else:
                process.send_signal(sig)
        except ProcessLookupError:  # pragma: no cover - it ended just now
            pass

    send(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - only when TERM is ignored
        send(signal.SIGKILL)
        process.wait(timeout=10)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is ours to signal)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_pid_file(path: Path, *, timeout: float = 15) -> None:
    """Stop the process whose pid the file holds (one a server started and wrote down), if it
    is still alive: TERM, then KILL."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):  # pragma: no cover - only when TERM is ignored
        os.kill(pid, signal.SIGKILL)


class ManagedProcess:
    """A server started by a test. Subclasses say what to run and when it is ready:

    - :meth:`command` (and :meth:`environment`, :meth:`workdir`): what to start;
    - :meth:`is_ready`: one probe (an exception such as a refused connection means "not yet");
    - :meth:`prepare` / :meth:`cleanup`: work before the start / after the stop.

    ``start()`` starts and waits (``start(wait=False)`` then ``wait_ready()`` starts several
    at once); ``stop()`` stops it by its pid; ``with Server() as server:`` does both.
    """

    kind = "server"
    startup_timeout: float = 60.0
    stop_timeout: float = 30.0
    #: Signal the whole process group (the server and every child it started) on stop.
    stop_group = False
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    # --- what subclasses say ---------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def workdir(self) -> Path | None:
        return None

    def is_ready(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Work before the process starts (migrations, configuration files)."""

    def cleanup(self) -> None:
        """Work after the process stopped (leftover children, temporary directories)."""

    # --- the process -----------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> Self:
        self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir(),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_this_process(),
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until :meth:`is_ready`; stop the server and raise with its log if it exits
        or does not get ready in time."""
        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log()[-8000:]}")
            try:
                if self.is_ready():
                    return
            except (OSError, requests.RequestException):
                pass
            time.sleep(0.2)
        log = self.log()[-8000:]
        self.stop()
        raise RuntimeError(f"{self.kind} was not ready in {timeout} s:\n{log}")

    def log(self) -> str:
        return read_log(self.log_path)

    def stop(self) -> None:
        """Stop the server by its pid (TERM, then KILL), then :meth:`cleanup`."""
        process, self.process = self.process, None
        terminate(process, timeout=self.stop_timeout, group=self.stop_group)
        self.cleanup()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()
