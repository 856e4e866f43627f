"""Start-up checks of exchange_site/gunicorn_conf.py: a service that cannot work stops before
it serves, with one sentence and exit status 1 (what JupyterHub's log then shows)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from exchange_site import gunicorn_conf
from tests.harness import BIN, REPO
from tests.harness.ports import free_port

GUNICORN = BIN / "gunicorn"


def start(tmp_path: Path, port: int, **env: str) -> subprocess.CompletedProcess:
    """gunicorn as the one-machine recipe starts it; its exit status and output."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EXCHANGE_", "DATABASE_URL", "SECRET_KEY", "JUPYTERHUB_"))
    }
    return subprocess.run(
        [
            str(GUNICORN),
            "exchange_site.wsgi",
            "--config",
            "python:exchange_site.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=REPO,
        env={**clean, "EXCHANGE_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_port_in_use_stops_the_service_with_a_sentence(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = start(tmp_path, port, SECRET_KEY="k" * 50)
    assert result.returncode == 1
    assert (
        f"The exchange cannot start: 127.0.0.1:{port} is already in use by another program"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_missing_secret_file_stops_the_service_with_a_sentence(tmp_path):
    result = start(tmp_path, free_port(), SECRET_KEY_FILE=str(tmp_path / "secret_key"))
    assert result.returncode == 1
    assert "The exchange cannot start: SECRET_KEY_FILE=" in result.stderr
    assert "cannot read it" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_without_migrate_stops_the_service_with_a_sentence(tmp_path):
    result = start(tmp_path, free_port(), SECRET_KEY="k" * 50)
    assert result.returncode == 1
    assert "migration(s) not applied: run `manage.py migrate`" in result.stderr
    assert not list(tmp_path.glob("gunicorn*.pid"))


def test_a_free_port_passes(db):
    assert gunicorn_conf.address_problem([("127.0.0.1", free_port()), "/tmp/unix.sock"]) is None


def test_an_address_that_cannot_be_bound_is_named():
    problem = gunicorn_conf.address_problem([("192.0.2.1", free_port())])
    assert problem is not None and "cannot listen on 192.0.2.1:" in problem


@pytest.mark.django_db
def test_a_migrated_database_passes():
    assert gunicorn_conf.settings_problem() is None


def test_an_unreachable_database_is_named(monkeypatch):
    from django.db.migrations import executor

    def refuse(self, connection, *args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(executor.MigrationExecutor, "__init__", refuse)
    assert (
        gunicorn_conf.settings_problem() == "the database cannot be reached (connection refused)."
    )


def test_the_hook_exits_with_the_sentence(monkeypatch):
    logged = []

    class Log:
        def error(self, message, *args):
            logged.append(message % args)

    class Server:
        log = Log()

        class cfg:
            address = [("127.0.0.1", 1)]

    monkeypatch.setattr(gunicorn_conf, "address_problem", lambda addresses: "port 1 is taken.")
    with pytest.raises(SystemExit) as exit_info:
        gunicorn_conf.on_starting(Server())
    assert exit_info.value.code == 1
    assert logged == ["The exchange cannot start: port 1 is taken."]


def test_a_bad_setting_is_named(monkeypatch):
    import django
    from django.core.exceptions import ImproperlyConfigured

    def fail() -> None:
        raise ImproperlyConfigured("DEBUG='maybe': expected true or false")

    monkeypatch.setattr(django, "setup", fail)
    assert gunicorn_conf.settings_problem() == (
        "DEBUG='maybe': expected true or false (a setting in the service's environment)."
    )


# --- the server's defaults -------------------------------------------------------------------


def test_workers_follow_the_cpus_this_process_may_use(monkeypatch, tmp_path):
    import builtins
    import importlib

    real_open = builtins.open
    cpu_max = tmp_path / "cpu.max"

    def fake_open(path, *args, **kwargs):
        return real_open(cpu_max if path == "/sys/fs/cgroup/cpu.max" else path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    cpu_max.write_text("300000 100000\n")  # a container limited to 3 CPUs on a 16-CPU node
    assert gunicorn_conf.usable_cpus() == 3
    assert importlib.reload(gunicorn_conf).workers == 3
    cpu_max.write_text("max 100000\n")
    assert gunicorn_conf.usable_cpus() == 16
    assert importlib.reload(gunicorn_conf).workers == 8  # at most 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert importlib.reload(gunicorn_conf).workers == 2  # at least 2
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert importlib.reload(gunicorn_conf).workers == 5
    monkeypatch.undo()
    importlib.reload(gunicorn_conf)


def test_a_kept_alive_connection_survives_a_pause_between_requests():
    """A client that pauses between two requests on one connection (as a thread starved of
    CPU on a loaded machine does) and does not retry gets its answer, not a reset: the
    server keeps idle connections open longer than gunicorn's 2 s default."""
    import http.client
    import time

    from tests.harness.live import LiveServer

    as_deployed = {"GUNICORN_CMD_ARGS": "--config python:exchange_site.gunicorn_conf"}
    with LiveServer(workers=1, threads=1, env=as_deployed) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for pause in (0, 3):
                time.sleep(pause)
                connection.request("GET", "/healthz", headers={"Host": "localhost"})
                response = connection.getresponse()
                response.read()
                assert response.status == 200
        finally:
            connection.close()


def given(text: str, option: str) -> list[int]:
    """The values ``text`` gives gunicorn's ``option``: ``--threads 4``, ``--threads=4`` or,
    in a Python or JSON list, ``"--threads", "4"``."""
    return [int(value) for value in re.findall(rf'--{option}[ =",]+(\d+)', text)]


def test_given_reads_each_way_of_writing_an_option():
    text = 'a --threads 3 --timeout=20 ["--keep-alive", "9"]'
    assert [given(text, o) for o in ("threads", "timeout", "keep-alive")] == [[3], [20], [9]]


def test_every_way_of_starting_the_service_runs_gunicorn_alike():
    """``make run``, the image, the chart, the one-machine guide's hub service and the test
    suite's servers give gunicorn the threads, timeout, keep-alive and worker class
    gunicorn_conf.py says.
    Each writes them out (the image and the chart start gunicorn without that file), so a
    change to one must reach all. A test server with gunicorn's 2 s keep-alive closed a
    connection a test was sending on after a pause ("Remote end closed connection without
    response"), a failure no deployment would show."""
    from tests.harness.live import LiveServer

    wanted = {
        "threads": gunicorn_conf.threads,
        "timeout": gunicorn_conf.timeout,
        "keep-alive": gunicorn_conf.keepalive,
    }
    makefile = (REPO / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") :]
    chart = REPO / "charts" / "nbgrader-exchange"
    values = yaml.safe_load((chart / "values.yaml").read_text())["gunicorn"]
    sources = {
        "make run": run[: run.index("\n\n")],
        "Dockerfile": (REPO / "Dockerfile").read_text(),
        # The chart's threads and timeout are values; its keep-alive is written out.
        "chart": (chart / "templates" / "deployment.yaml").read_text()
        + f" --threads={values['threads']} --timeout={values['timeout']}",
        # The guide's hub service loads gunicorn_conf.py (--config): keep-alive is from there.
        "one-machine guide": (REPO / "docs" / "one-machine.md").read_text()
        + f" --keep-alive {gunicorn_conf.keepalive}",
    }
    for name, text in sources.items():
        found = {option: given(text, option) for option in wanted}
        assert found == {option: [value] for option, value in wanted.items()}, name
        # The guide's service loads gunicorn_conf.py, whose worker_class is this one.
        worker_classes = re.findall(r'--worker-class[ =",]+([\w.]+)', text)
        assert worker_classes == ([] if "guide" in name else [gunicorn_conf.worker_class]), name
    assert gunicorn_conf.worker_class == "exchange_site.gunicorn_worker.BalancedThreadWorker"
    server = LiveServer()
    try:
        assert server.env["GUNICORN_CMD_ARGS"].split() == [
            "--keep-alive",
            str(wanted["keep-alive"]),
        ]
        command = server.command()
        assert command[command.index("--worker-class") + 1] == gunicorn_conf.worker_class
    finally:
        server.cleanup()
