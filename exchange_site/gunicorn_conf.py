"""gunicorn settings for the exchange: start-up checks that stop with one sentence.

    gunicorn exchange_site.wsgi --config python:exchange_site.gunicorn_conf --bind 127.0.0.1:9010

Without them a service started by JupyterHub fails in ways that are hard to read from the
hub's log: a missing secret file is a traceback in every worker and "Worker failed to boot",
an address in use is five "Connection in use" retries, and a database that was never
migrated only shows up as "no such table" on the first request. With them gunicorn's master
checks the settings, the address and the database before it starts any worker, logs
"The exchange cannot start: <sentence>" and exits with status 1; JupyterHub then logs
"Service nbgrader-exchange exited with status 1".

It also sets the server's defaults (options on the command line still win):

- ``workers``: one per CPU this process may use (the cgroup's CPU limit in a container,
  else the CPUs it may run on), at least 2 so that one slow request never holds the whole
  service, at most 8; ``WEB_CONCURRENCY`` overrides. Python runs one request's code at a
  time per process, so processes, not threads, use the CPUs.
- ``worker_class``: gunicorn's thread worker that takes a new connection only while it has
  a thread free (``gunicorn_worker.py``), so that in a rush a request goes to a worker that
  can serve it instead of waiting behind a busy one.
- ``threads``: 4 per worker: requests mostly wait on the
  network (uploads, downloads) or the database, so a few threads keep a CPU busy; more only
  add memory (each holds a database connection and, with S3, a storage client).
- ``keepalive``: 75 s. A client reuses its connection for the next request; if the server
  closes it at the moment the client sends, the client sees "Connection reset by peer". With
  gunicorn's 2 s default that happened to a few of 2000 students fetching at once on a loaded
  machine (a client's thread paused longer than 2 s between two requests). 75 s is longer
  than a client pauses within one operation, as in nginx's default.
- no ``preload_app``: loading the application in the master before forking shares its pages
  copy-on-write (the server's PSS drops from 120 to 107 MB after serving requests), but the
  master then holds the application too and each worker's RSS still counts the shared
  pages: RSS of master + 2 workers rose from 160 to 187 MB (bench/RESULTS.md, "A small
  server: idle and peak RSS").
- no memory hooks here: a worker's malloc settings (two arenas, ``malloc_trim`` once idle)
  and the modules it defers are set up by the WSGI entry (``exchange_site/wsgi.py``,
  ``memory.py``, ``lean.py``), which gunicorn imports in every worker before its threads
  start. A ``post_fork`` or ``post_request`` hook in this file would do the same, but only
  where this file is loaded: ``make run``, the image and the chart start gunicorn without it.
  Tried and not kept (bench/RESULTS.md, "Idle RSS after serving requests"): ``gc.freeze()``
  after start-up and smaller thread stacks.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import Any

HUB_PORTS = "JupyterHub's own port is 8000 and its proxy's API port 8001 by default"


def usable_cpus() -> int:
    """CPUs this process may use: a cgroup v2 CPU limit (``cpu.max``) when there is one,
    else the CPUs the scheduler lets it run on."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as limits:
            quota, period = limits.read().split()[:2]
        if quota != "max":
            available = min(available, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return available


def _env_count(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else default


worker_class = "exchange_site.gunicorn_worker.BalancedThreadWorker"
workers = _env_count("WEB_CONCURRENCY", min(8, max(2, usable_cpus())))
threads = 4
keepalive = 75
timeout = 300


def settings_problem() -> str | None:
    """Load Django's settings and look at the database; a sentence when something is wrong."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        from exchange_site.env import prepare_data_dir

        prepare_data_dir()
        django.setup()
    except ImproperlyConfigured as exc:
        return f"{exc} (a setting in the service's environment)."
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any driver error: the database cannot be reached
        return f"the database cannot be reached ({exc})."
    finally:
        # The master forks the workers: they must not share its connection.
        connections.close_all()
    if pending:
        return (
            f"the database has {len(pending)} migration(s) not applied: run "
            f"`manage.py migrate` with the service's environment first."
        )
    return None


def address_problem(addresses: list[Any]) -> str | None:
    """A sentence when one of gunicorn's TCP addresses is taken by another program."""
    for address in addresses:
        if not isinstance(address, tuple):  # a Unix socket: gunicorn reports those itself
            continue
        host, port = address[0], address[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return f"cannot listen on {host}:{port} ({exc.strerror})."
                return (
                    f"{host}:{port} is already in use by another program ({HUB_PORTS}); "
                    f"give the service a free port, the same in its url and in --bind."
                )
    return None


def on_starting(server: Any) -> None:
    """gunicorn's hook, in the master before it binds: stop here with a sentence."""
    problem = address_problem(list(server.cfg.address)) or settings_problem()
    if problem:
        server.log.error("The exchange cannot start: %s", problem)
        sys.exit(1)
