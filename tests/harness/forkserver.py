"""The real ``nbgrader`` CLI without its three seconds of imports on every command.

``nbgrader`` spends most of a short command importing (nbconvert, jupyter_server, tornado,
SQLAlchemy): about 3 s of a 4 s ``nbgrader list`` on a 2-core machine, more under coverage.
The plugin's end-to-end tests run about a hundred commands, so a process here imports
nbgrader once and forks a child for each command. The child takes the command's arguments,
environment and working directory, runs nbgrader's own entry point
(``NbGraderApp.launch_instance``, what the ``nbgrader`` script calls) with its output in a
file, and exits with nbgrader's status. Nothing but the imports is shared: each command has a
fresh process, its own HOME and cache, and no application instance left from another.

The server (a ``ManagedProcess``: started, waited for and stopped by its pid like the others)
listens on a Unix socket in a private directory. Under coverage each child saves its own
data file before it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from . import BIN, REPO
from .process import ManagedProcess

_INT = struct.Struct("!i")  # the child sends its pid, then its exit status


class ForkServer(ManagedProcess):
    """A process that has imported nbgrader, forking one child per ``run``."""

    kind = "nbgrader fork server"

    def __init__(self, command_prefix: list[str], env: dict[str, str]) -> None:
        """``command_prefix`` starts Python (``[sys.executable]``, or coverage's runner);
        ``env`` is the server's own environment (each command brings its own), with its
        private directory as HOME, so that nothing imported can read a person's files."""
        self._dir = Path(tempfile.mkdtemp(prefix="nbgrader-forks-"))
        self._prefix = command_prefix
        self._env = {**env, "HOME": str(self._dir)}
        self.socket_path = self._dir / "socket"
        self.log_path = self._dir / "log"

    def command(self) -> list[str]:
        return [*self._prefix, "-m", "tests.harness.forkserver", str(self.socket_path)]

    def environment(self) -> dict[str, str]:
        return self._env

    def workdir(self) -> Path:
        return self._dir

    def is_ready(self) -> bool:
        return (self._dir / "ready").exists()

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def run(
        self, args: list[str], *, env: dict[str, str], cwd: Path, timeout: float
    ) -> tuple[int, str]:
        """``nbgrader <args>`` in ``cwd`` with exactly ``env``: its exit status and its output
        (stdout and stderr together). A command still running after ``timeout`` seconds is
        killed and raises ``TimeoutError``."""
        with tempfile.NamedTemporaryFile(dir=self._dir, suffix=".out") as out:
            request = json.dumps(
                {"args": args, "env": env, "cwd": str(cwd), "output": out.name}
            ).encode()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(str(self.socket_path))
                conn.sendall(request)
                conn.shutdown(socket.SHUT_WR)
                pid = _INT.unpack(_receive(conn, _INT.size))[0]
                try:
                    status = _INT.unpack(_receive(conn, _INT.size))[0]
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):  # it ended just now
                        os.kill(pid, signal.SIGKILL)
                    raise TimeoutError(f"nbgrader {' '.join(args)} ran over {timeout} s") from None
            return status, Path(out.name).read_text(errors="replace")


# --- nbgrader for the tests: one fork server for the session, or a process per command ----


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without Jupyter's, nbgrader's or coverage's settings, with
    this checkout first on the paths, and ``settings``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "NBGRADER_", "COV_CORE", "COVERAGE_"))
    }
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(settings)
    return env


def python_command(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """How to start Python: under coverage when the tests are measured, else plainly."""
    try:
        import coverage
    except ImportError:  # pragma: no cover
        return [sys.executable], env
    current = coverage.Coverage.current()
    if current is None:
        return [sys.executable], env
    env = {**env, "COVERAGE_FILE": str(Path(current.config.data_file).absolute())}
    rcfile = REPO / "pyproject.toml"
    return [sys.executable, "-m", "coverage", "run", "--parallel-mode", f"--rcfile={rcfile}"], env


class _Forks:
    """The fork server ``run_nbgrader`` uses once ``fork_nbgrader()`` has been called
    (tests/conftest.py does, for the session): started by the first command."""

    enabled = False
    server: ForkServer | None = None


def fork_nbgrader() -> None:
    """Run every later ``run_nbgrader`` command as a child of one process that has imported
    nbgrader already."""
    _Forks.enabled = True


def stop_forking_nbgrader() -> None:
    """Stop the fork server, if one started; later commands start their own processes."""
    _Forks.enabled = False
    if _Forks.server is not None:
        _Forks.server.stop()
        _Forks.server = None


def run_nbgrader(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 300
) -> tuple[int, str]:
    """The real ``nbgrader <args>`` in ``cwd`` with exactly ``env``: its exit status and its
    output (stdout and stderr together). A child of the fork server when forking is on, else
    a process of its own (under coverage when the tests are measured)."""
    if _Forks.enabled and _Forks.server is None:
        _Forks.server = ForkServer(*python_command(clean_environment())).start()
    if _Forks.server is not None:
        return _Forks.server.run(args, env=env, cwd=cwd, timeout=timeout)
    python, env = python_command(env)
    done = subprocess.run(
        [*python, str(BIN / "nbgrader"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout


def _receive(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the nbgrader fork server closed the connection")
        data += chunk
    return data


# --- the server side -------------------------------------------------------------------------


def _child(conn: socket.socket) -> int:
    """Run one command as its request says; the exit status nbgrader's script would give."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # nbgrader waits for its kernels
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    request: dict[str, Any] = json.loads(data)
    conn.sendall(_INT.pack(os.getpid()))
    output = os.open(request["output"], os.O_WRONLY | os.O_TRUNC)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["nbgrader", *request["args"]]

    from nbgrader.apps.nbgraderapp import main

    try:
        main()
        status = 0
    except SystemExit as stop:  # as the interpreter reads sys.exit's argument
        if stop.code is None or isinstance(stop.code, int):
            status = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    return status


def _finish(conn: socket.socket, status: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        import coverage

        current = coverage.Coverage.current()
        if current is not None:
            current.stop()
            current.save()
    except ImportError:  # not measured
        pass
    conn.sendall(_INT.pack(status))


def serve(path: str) -> None:
    import nbgrader.apps.nbgraderapp  # noqa: F401 - the slow part, done once

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    Path(path).with_name("ready").touch()
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            status = 1
            try:
                status = _child(conn)
            finally:
                try:
                    _finish(conn, status)
                finally:
                    os._exit(status if 0 <= status < 256 else 1)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
