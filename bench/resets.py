"""Connection resets seen by a plain HTTP client that never retries: N students fetch an
assignment at concurrency C, each over one kept-alive ``http.client`` connection (the list,
then every file through its signed URL), as curl, a browser or a script would.

    python -m bench.resets --students 2000 --concurrency 64 [--keep-alive 2]

Every error counts (``ConnectionResetError``, ``RemoteDisconnected``, ``BrokenPipeError``,
a status other than 200, a byte that differs); the run reports them by kind. The server is
started with the service's gunicorn configuration (``exchange_site/gunicorn_conf.py``);
``--keep-alive`` overrides its keep-alive seconds, to compare with gunicorn's default of 2.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.harness import live as live_setup
from tests.harness.uploads import multipart_files

from .common import add_server_options, machine, server_under_test
from .workload import NOTEBOOKS, notebook

COURSE = "resets101"


def run(
    *, students: int, concurrency: int, keep_alive: int | None, workers: int, threads: int
) -> dict[str, Any]:
    args = "--config python:exchange_site.gunicorn_conf"
    if keep_alive is not None:
        args += f" --keep-alive {keep_alive}"
    release = {path: notebook(path, 200 * 1000) for path in NOTEBOOKS}
    sha = {path: hashlib.sha256(data).hexdigest() for path, data in release.items()}
    errors: collections.Counter[str] = collections.Counter()
    requests_made = [0]
    lock = threading.Lock()
    with server_under_test(
        database="sqlite", workers=workers, threads=threads, env={"GUNICORN_CMD_ARGS": args}
    ) as target:
        names = [f"student{i:04d}" for i in range(students)]
        tokens = target.tokens({"r-admin": True, "r-teacher": False, **dict.fromkeys(names, False)})
        live_setup.create_course(
            target.server,
            code=COURSE,
            admin_token=tokens["r-admin"],
            instructor="r-teacher",
            instructor_token=tokens["r-teacher"],
            students=names,
        )
        teacher = live_setup.session(tokens["r-teacher"])
        response = teacher.post(
            f"{target.server.api_url}/courses/{COURSE}/assignments/ps1/release",
            files=multipart_files(release),
            timeout=120,
        )
        response.raise_for_status()
        base = urlsplit(target.url)
        api_path = urlsplit(target.server.api_url).path

        def fetch(student: str) -> None:
            connection = http.client.HTTPConnection(base.hostname, base.port, timeout=120)
            done = 0
            try:
                headers = {"Authorization": f"token {tokens[student]}"}
                connection.request(
                    "GET",
                    f"{api_path}/courses/{COURSE}/assignments/ps1/release/files",
                    headers=headers,
                )
                answer = connection.getresponse()
                body = answer.read()
                done += 1
                if answer.status != 200:
                    raise RuntimeError(f"status {answer.status}")
                for entry in json.loads(body)["files"]:
                    url = urlsplit(entry["url"])
                    connection.request("GET", url.path)
                    answer = connection.getresponse()
                    data = answer.read()
                    done += 1
                    if answer.status != 200:
                        raise RuntimeError(f"status {answer.status}")
                    if hashlib.sha256(data).hexdigest() != sha[entry["path"]]:
                        raise RuntimeError("bytes differ")
            except Exception as exc:  # every failure counts, by kind
                with lock:
                    errors[
                        type(exc).__name__ + (f": {exc}" if isinstance(exc, RuntimeError) else "")
                    ] += 1
            finally:
                connection.close()
                with lock:
                    requests_made[0] += done

        start = time.perf_counter()
        cpu_before = target.sampler.cpu_seconds()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(fetch, names))
        wall = time.perf_counter() - start
        result = {
            "students": students,
            "concurrency": concurrency,
            "keep_alive_s": keep_alive if keep_alive is not None else "service default (75)",
            "workers": workers,
            "threads": threads,
            "wall_s": round(wall, 1),
            "requests_answered": requests_made[0],
            "failed_students": sum(errors.values()),
            "errors": dict(errors),
            "server_cpu_s": round(target.sampler.cpu_seconds() - cpu_before, 1),
            "server_peak_rss_MB": round(target.sampler.peak / 1e6),
            "machine": machine(target),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.resets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--students", "-n", type=int, default=2000)
    parser.add_argument("--concurrency", "-c", type=int, default=64)
    parser.add_argument("--keep-alive", type=int, help="gunicorn's keep-alive seconds")
    add_server_options(parser)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(
        students=args.students,
        concurrency=args.concurrency,
        keep_alive=args.keep_alive,
        workers=args.workers,
        threads=args.threads,
    )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    print("RESULT: " + ("OK" if not result["failed_students"] else "FAILED"))
    return 0 if not result["failed_students"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
