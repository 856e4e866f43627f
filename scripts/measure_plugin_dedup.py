"""How many bytes the plugin moves when a release carries a large data file.

An instructor releases an assignment with a data file of ``--data-mb`` MB; ``--students``
students fetch it, answer, and submit (handing the data file back unchanged); the instructor
collects. Prints the bytes each step sent or received over HTTP next to the bytes on disk,
and the time each step took, against a throwaway service (gunicorn, SQLite, local files).

    .venv/bin/python scripts/measure_plugin_dedup.py --students 10 --data-mb 20
    .venv/bin/python scripts/measure_plugin_dedup.py --students 10 --data-mb 20 \
        --without-release-dir
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from nbgrader_exchange.client import ExchangeClient  # noqa: E402
from tests.harness.live import LiveServer  # noqa: E402
from tests.plugin.support import (  # noqa: E402
    BIN,
    Actor,
    answer,
    plugin_config,
    write_source,
)

SENT = {"bytes": 0}
RECEIVED = {"bytes": 0}


def count(response: requests.Response, *args: object, **kwargs: object) -> None:
    SENT["bytes"] += int(response.request.headers.get("Content-Length") or 0)
    RECEIVED["bytes"] += int(response.headers.get("Content-Length") or 0)


_original_init = ExchangeClient.__init__


def counting_init(self: ExchangeClient, *args: object, **kwargs: object) -> None:
    _original_init(self, *args, **kwargs)  # type: ignore[arg-type]
    self.session.hooks["response"].append(count)


ExchangeClient.__init__ = counting_init  # type: ignore[method-assign]


def step(name: str, action: object) -> None:
    SENT["bytes"] = RECEIVED["bytes"] = 0
    start = time.perf_counter()
    action()  # type: ignore[operator]
    took = time.perf_counter() - start
    print(
        f"{name:<34} {took:7.2f} s   sent {SENT['bytes'] / 1e6:9.2f} MB   "
        f"received {RECEIVED['bytes'] / 1e6:9.2f} MB",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--data-mb", type=float, default=20.0)
    parser.add_argument(
        "--without-release-dir",
        action="store_true",
        help="collect on a machine without the instructor's release/ directory",
    )
    options = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    root = Path(tempfile.mkdtemp(prefix="plugin-dedup-"))
    (root / "server").mkdir()
    server = LiveServer(data_dir=root / "server")
    server.start()
    try:
        names = ["ines"] + [f"s{i:03d}" for i in range(options.students)]
        tokens = {name: server.create_api_token(name) for name in names[:1]}
        tokens.update(server.tokens(names[1:]))
        server.manage("create_course", "big101", "--instructor", "ines")
        for name in names[1:]:
            server.manage("add_member", "big101", name, "--role", "student")

        def actor(name: str) -> Actor:
            work = root / name
            work.mkdir(exist_ok=True)
            config = plugin_config(server.url, tokens[name], root / f"{name}-cache")
            return Actor(name, work, config)

        ines = actor("ines")
        write_source(ines.work)
        release = ines.work / "release" / "ps1"
        shutil.copytree(ines.work / "source" / "ps1", release)
        (release / "data.bin").write_bytes(os.urandom(int(options.data_mb * 1e6)))
        size = sum(p.stat().st_size for p in release.iterdir())
        print(f"release: {size / 1e6:.2f} MB; {options.students} students\n")
        step("release_assignment", lambda: ines.run("ReleaseAssignment", "big101", "ps1"))
        students = [actor(name) for name in names[1:]]

        def fetch_all() -> None:
            for s in students:
                s.run("FetchAssignment", "big101", "ps1")

        def submit_all() -> None:
            for s in students:
                answer(s.work / "ps1" / "ps1.ipynb")
                s.run("Submit", "big101", "ps1")

        step(f"fetch_assignment x{len(students)}", fetch_all)
        step(f"submit x{len(students)}", submit_all)
        if options.without_release_dir:
            shutil.rmtree(ines.work / "release")
        step("collect (all students)", lambda: ines.run("Collect", "big101", "ps1"))
        on_disk = sum(p.stat().st_size for p in (ines.work / "submitted").rglob("*") if p.is_file())
        print(f"\ncollected onto disk: {on_disk / 1e6:.2f} MB")
        return 0
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
