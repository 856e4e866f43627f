"""Notebook previews under load: eight people open the page of one submission holding a
4 MiB notebook at once (as a browser does: the page, then again every 5 s while it says the
preview is being made, then the preview itself), while API clients keep listing assignments
and submissions. Targets: the API's p95 under 2 s during the views, every page answered
within 30 s, and every viewer ends on the rendered notebook.

    python -m bench.render --viewers 8 --notebook-mib 4

``--distinct`` gives each viewer a notebook of its own (eight renders instead of one, which
the replica makes ``EXCHANGE_RENDER_CONCURRENCY`` at a time).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from tests.harness import live as live_setup
from web.tests.notebooks import large_notebook

from .common import (
    MIB,
    Phase,
    Target,
    add_server_options,
    client_class,
    machine,
    percentile,
    server_under_test,
)

COURSE = "render101"
ASSIGNMENT = "ps1"
PAGE_REFRESH_SECONDS = 5  # the submission page's meta refresh while a preview is made
API_TARGET_P95_S = 2.0
VIEW_TARGET_S = 30.0

_SESSION = """
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.get(username={name!r})
client = Client()
client.force_login(user)
print(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
"""


def browser(target: Target, username: str) -> requests.Session:
    """A signed-in browser session for a person (a session made by Django's own login)."""
    result = target.server.manage("shell", "-c", _SESSION.format(name=username))
    name, value = result.stdout.strip().splitlines()[-1].split()
    http = requests.Session()
    http.cookies.set(name, value, domain="127.0.0.1", path="/")
    return http


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


class Viewer:
    """One person looking at a submission: the page, refreshed while the preview is made,
    then the preview frame. Every response's time is one sample."""

    def __init__(self, http: requests.Session, base: str, submission: int, path: str) -> None:
        self.http = http
        self.page_url = f"{base}/submissions/{submission}/"
        self.frame_url = f"{base}/submissions/{submission}/submission/view/{path}"
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.time_to_preview: float | None = None
        self.outcome = ""

    def _get(self, url: str) -> str:
        start = time.perf_counter()
        response = self.http.get(url, timeout=300)
        self.latencies.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        return response.text

    def run(self, deadline: float) -> None:
        began = time.perf_counter()
        try:
            while time.monotonic() < deadline:
                page = self._get(self.page_url)
                if "<iframe sandbox" in page:
                    frame = self._get(self.frame_url)
                    self.outcome = "rendered" if "jp-Notebook" in frame else frame[:200]
                    break
                if 'class="preview-note pending"' not in page:
                    note = re.search(r'class="preview-note[^"]*">([^<]*)', page)
                    self.outcome = "no preview: " + (note.group(1).strip() if note else page[:200])
                    break
                time.sleep(PAGE_REFRESH_SECONDS)
            else:
                self.outcome = "no preview before the deadline"
        except Exception as exc:  # a refused connection, a timeout, a 500: all count
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.outcome = "error"
        self.time_to_preview = time.perf_counter() - began


def api_load(
    target: Target, token: str, phase: Phase, stop: threading.Event, submission: int
) -> None:
    """An instructor's client reading the API in a loop (what the plugin and formgrader do)."""
    Client = client_class()
    with Client(target.url, token) as http:
        calls = [
            lambda: http.get(f"courses/{COURSE}/assignments", what="list"),
            lambda: http.get(f"courses/{COURSE}/assignments/{ASSIGNMENT}", what="list"),
            lambda: http.get(
                f"courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", what="collect"
            ),
            lambda: http.get(f"submissions/{submission}", what="collect"),
        ]
        n = 0
        while not stop.is_set():
            phase.run(calls[n % len(calls)])
            n += 1


def render_workers(target: Target) -> list[psutil.Process]:
    try:
        children = target.sampler.process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            command = child.cmdline()
            # The supervisors: one per render (each has one converter child).
            if "web.render_worker" in command and "--convert" not in command:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def run_render(
    target: Target,
    *,
    viewers: int,
    size: int,
    distinct: bool,
    api_clients: int,
    baseline_s: float,
    deadline_s: float,
) -> dict[str, Any]:
    from nbgrader_exchange.files import entry_from_bytes

    students = [f"viewer{n}" for n in range(viewers)] if distinct else ["viewer0"]
    tokens = target.tokens(
        {"render-admin": True, "render-instructor": False, **dict.fromkeys(students, False)}
    )
    live_setup.create_course(
        target.server,
        code=COURSE,
        admin_token=tokens["render-admin"],
        instructor="render-instructor",
        instructor_token=tokens["render-instructor"],
        students=students,
    )
    Client = client_class()
    url = f"courses/{COURSE}/assignments/{ASSIGNMENT}"
    with Client(target.url, tokens["render-instructor"]) as instructor:
        instructor.upload_bundle(
            f"{url}/release", [entry_from_bytes("ps1/ps1.ipynb", b"{}")], what="release"
        )
    submissions = []
    for n, student in enumerate(students):
        data = large_notebook(size, seed=n + 1)
        with Client(target.url, tokens[student], transfer_timeout=600) as http:
            result = http.upload_bundle(
                f"{url}/submissions", [entry_from_bytes("ps1/ps1.ipynb", data)], what="submit"
            )
        submissions.append(result["id"])
    notebook_bytes = len(large_notebook(size, seed=1))

    load_before = uptime()
    stop = threading.Event()

    def api_phase(name: str, seconds: float | None) -> tuple[Phase, list[threading.Thread]]:
        phase = Phase(name)
        phase.started = time.perf_counter()
        threads = [
            threading.Thread(
                target=api_load,
                args=(target, tokens["render-instructor"], phase, stop, submissions[0]),
                daemon=True,
            )
            for _ in range(api_clients)
        ]
        for thread in threads:
            thread.start()
        if seconds is not None:
            time.sleep(seconds)
            stop.set()
            for thread in threads:
                thread.join()
            phase.ended = time.perf_counter()
            stop.clear()
        return phase, threads

    cpu_before = target.sampler.cpu_seconds()
    target.sampler.mark()
    baseline, _ = api_phase("api, no views", baseline_s)
    baseline.server_cpu = target.sampler.cpu_seconds() - cpu_before
    baseline.peak_rss = target.sampler.mark()

    cpu_before = target.sampler.cpu_seconds()
    target.sampler.mark()
    people = [
        Viewer(
            browser(target, "render-instructor"),
            target.url,
            submissions[n % len(submissions)],
            "ps1/ps1.ipynb",
        )
        for n in range(viewers)
    ]
    during, api_threads = api_phase("api, during the views", None)
    deadline = time.monotonic() + deadline_s
    view_threads = [
        threading.Thread(target=person.run, args=(deadline,), daemon=True) for person in people
    ]
    most_workers = 0
    for thread in view_threads:
        thread.start()
    while any(thread.is_alive() for thread in view_threads):
        most_workers = max(most_workers, len(render_workers(target)))
        time.sleep(0.5)
    stop.set()
    for thread in api_threads:
        thread.join()
    during.ended = time.perf_counter()
    during.server_cpu = target.sampler.cpu_seconds() - cpu_before
    during.peak_rss = target.sampler.mark()
    load_after = uptime()
    for leftover in render_workers(target):  # none, unless the deadline passed
        leftover.kill()

    view_latencies = [s for person in people for s in person.latencies]
    result: dict[str, Any] = {
        "viewers": viewers,
        "distinct_notebooks": distinct,
        "notebook_bytes": notebook_bytes,
        "api_clients": api_clients,
        "api": [baseline.summary(), during.summary()],
        "views": {
            "responses": len(view_latencies),
            "slowest_response_s": round(max(view_latencies, default=0), 2),
            "p95_response_s": round(percentile(view_latencies, 0.95), 2),
            "time_to_preview_s": [round(p.time_to_preview or 0, 1) for p in people],
            "outcomes": sorted({p.outcome for p in people}),
            "errors": [e for p in people for e in p.errors],
        },
        "render_workers_at_once_max": most_workers,
        "uptime_before": load_before,
        "uptime_after": load_after,
    }
    problems = []
    p95 = percentile(during.latencies, 0.95)
    if p95 >= API_TARGET_P95_S:
        problems.append(f"API p95 during the views is {p95:.2f} s (target < {API_TARGET_P95_S} s)")
    if during.errors:
        problems.append(f"{len(during.errors)} API errors during the views: {during.errors[:3]}")
    if max(view_latencies, default=0) >= VIEW_TARGET_S:
        problems.append(f"a page took {max(view_latencies):.1f} s (target < {VIEW_TARGET_S} s)")
    if any(p.outcome != "rendered" for p in people):
        problems.append(f"not every viewer got the preview: {sorted({p.outcome for p in people})}")
    result["problems"] = problems
    result["ok"] = not problems
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.render", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--viewers", type=int, default=8)
    parser.add_argument("--notebook-mib", type=float, default=4)
    parser.add_argument("--distinct", action="store_true", help="a notebook per viewer")
    parser.add_argument("--api-clients", type=int, default=4)
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--deadline-seconds", type=float, default=900)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    # The chart's default deployment: 2 workers x 4 threads.
    add_server_options(parser)
    parser.add_argument(
        "--render-seconds", type=int, default=900, help="EXCHANGE_RENDER_SECONDS for the run"
    )
    parser.add_argument(
        "--render-memory-mib",
        type=int,
        help="EXCHANGE_RENDER_MEMORY for the run (default: the server's)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    size = int(args.notebook_mib * MIB)
    env = {
        # The notebook is previewed whatever the default cap (5 MiB) is.
        "EXCHANGE_RENDER_MAX_SIZE": str(max(size * 2, 5 * MIB)),
        "EXCHANGE_RENDER_SECONDS": str(args.render_seconds),
    }
    if args.render_memory_mib:
        env["EXCHANGE_RENDER_MEMORY"] = str(args.render_memory_mib * MIB)
    workdir = Path(tempfile.mkdtemp(prefix="exchange-render-bench-"))
    with server_under_test(
        database=args.database,
        storage=args.storage,
        workers=args.workers,
        threads=args.threads,
        env=env,
        workdir=workdir / "srv",
    ) as target:
        result = run_render(
            target,
            viewers=args.viewers,
            size=size,
            distinct=args.distinct,
            api_clients=args.api_clients,
            baseline_s=args.baseline_seconds,
            deadline_s=args.deadline_seconds,
        )
        result["machine"] = machine(target)
        result["server_env"] = env
    print(json.dumps(result, indent=2))
    print("RESULT: " + ("OK" if result["ok"] else "FAILED"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
