"""Measure one large upload and its download through a live server (not part of the suite).

    .venv/bin/python -m api.tests.measure_transfer [MiB]

Starts gunicorn (one worker) with a temporary data directory, releases one file of random
bytes as a tar.gz upload, fetches it back through its signed URL, checks the hash, and
prints the times and the worker's peak resident memory before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import requests

from tests.harness.live import LiveServer

CHUNK = 4 * 1024 * 1024


def worker_peak_mib(pid: int) -> dict[str, int]:
    """Peak resident memory (VmHWM) of each child process of gunicorn's master, in MiB."""
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    peaks = {}
    for child in children:
        try:
            with open(f"/proc/{child}/status") as status:
                for line in status:
                    if line.startswith("VmHWM"):
                        peaks[child] = int(line.split()[1]) // 1024
        except OSError:
            continue
    return peaks


def main(size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, LiveServer(workers=1, threads=4) as server:
        path = os.path.join(tmp, "big.bin")
        digest = hashlib.sha256()
        with open(path, "wb") as handle:
            left = size
            while left:
                chunk = os.urandom(min(left, CHUNK))
                handle.write(chunk)
                digest.update(chunk)
                left -= len(chunk)
        sha = digest.hexdigest()
        archive_path = os.path.join(tmp, "upload.tar.gz")
        with tarfile.open(archive_path, "w:gz", compresslevel=1) as archive:
            archive.add(path, arcname="big.bin")
        token = server.create_api_token("ada", staff=True)
        headers = {"Authorization": f"token {token}"}
        requests.post(
            f"{server.api_url}/courses",
            json={"course_id": "c1", "instructors": ["ada"]},
            headers=headers,
            timeout=60,
        ).raise_for_status()
        assert server.process is not None
        print("worker peak memory before (MiB):", worker_peak_mib(server.process.pid))
        manifest = json.dumps([{"path": "big.bin", "size": size, "sha256": sha}])
        started = time.monotonic()
        with open(archive_path, "rb") as archive_file:
            response = requests.post(
                f"{server.api_url}/courses/c1/assignments/a1/release",
                headers=headers,
                files={"manifest": (None, manifest), "archive": ("a.tar.gz", archive_file)},
                timeout=3600,
            )
        upload_seconds = time.monotonic() - started
        response.raise_for_status()
        files = requests.get(
            f"{server.api_url}/courses/c1/assignments/a1/release/files",
            headers=headers,
            timeout=60,
        ).json()["files"]
        started = time.monotonic()
        received = hashlib.sha256()
        count = 0
        with requests.get(files[0]["url"], stream=True, timeout=3600) as download:
            for chunk in download.iter_content(1024 * 1024):
                received.update(chunk)
                count += len(chunk)
        download_seconds = time.monotonic() - started
        assert received.hexdigest() == sha and count == size, "downloaded bytes differ"
        mib = size / 2**20
        print(
            f"{mib:.0f} MiB: upload {upload_seconds:.1f} s ({mib / upload_seconds:.0f} MiB/s), "
            f"signed-URL download {download_seconds:.1f} s ({mib / download_seconds:.0f} MiB/s), "
            "hash checked"
        )
        print("worker peak memory after (MiB):", worker_peak_mib(server.process.pid))


if __name__ == "__main__":
    main(int(sys.argv[1] if len(sys.argv) > 1 else 200) * 1024 * 1024)
