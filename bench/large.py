"""One large file: a submission holding a single 1 GiB file, uploaded and downloaded through
the plugin's client; the server's peak RSS (master and all workers) above idle, and the
times. Then a file one byte over the limit, which must be refused with 413.

    python -m bench.large --size-mib 1024

The file is generated on disk as a stream (never held in memory) from a seeded generator,
so its bytes are incompressible like a real data set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness import live as live_setup

from .common import (
    MIB,
    RssSampler,
    Target,
    add_server_options,
    client_class,
    machine,
    server_under_test,
)

COURSE = "big101"


class ClientRss(RssSampler):
    """The RSS of this process alone (the client): not the servers it started."""

    def current(self, *, fresh: bool = True) -> int:
        return self.process.memory_info().rss


def write_random_file(path: Path, size: int, seed: str = "large") -> str:
    """``size`` incompressible bytes written in 1 MiB blocks; returns their SHA-256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = rng.randbytes(min(MIB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def run_large(target: Target, *, size: int, limit: int, workdir: Path) -> dict[str, Any]:
    from nbgrader_exchange import transfer as transfer_module
    from nbgrader_exchange.client import ServiceError
    from nbgrader_exchange.files import entry_from_bytes, entry_from_file

    tokens = target.tokens({"big-admin": True, "big-instructor": False, "big-student": False})
    live_setup.create_course(
        target.server,
        code=COURSE,
        admin_token=tokens["big-admin"],
        instructor="big-instructor",
        instructor_token=tokens["big-instructor"],
        students=["big-student"],
    )
    Client = client_class()
    instructor = Client(target.url, tokens["big-instructor"], transfer_timeout=3600)
    student = Client(target.url, tokens["big-student"], transfer_timeout=3600)
    url = f"courses/{COURSE}/assignments/ps1"
    instructor.upload_bundle(
        f"{url}/release", [entry_from_bytes("ps1/ps1.ipynb", b"{}")], what="release"
    )

    source = workdir / "big.bin"
    start = time.perf_counter()
    expected = write_random_file(source, size)
    generated = time.perf_counter() - start

    # One small upload and download first, so the server's workers have imported what these
    # requests use: what is measured above idle is then what the bytes cost.
    warm = workdir / "warm.bin"
    warm.write_bytes(b"warm-up")
    for _ in range(2 * target.workers):  # each worker, most likely
        warmed = student.upload_bundle(
            f"{url}/submissions", [entry_from_file("ps1/warm.bin", warm)], what="submit"
        )
        student.download_bundle(
            student.get(f"submissions/{warmed['id']}", what="download")["files"],
            workdir / "warm",
            what="download",
        )
        shutil.rmtree(workdir / "warm")
    warm.unlink()
    client = ClientRss(os.getpid()).start()

    idle = target.sampler.current()
    client_idle = client.current()
    target.sampler.mark()
    client.mark()
    cpu_before = target.sampler.cpu_seconds()
    # The client's own share of the upload: hashing the file and writing the tar.gz.
    archive_s: list[float] = []
    original = transfer_module.write_archive

    def timed_write_archive(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            archive_s.append(time.perf_counter() - began)

    transfer_module.write_archive = timed_write_archive
    start = time.perf_counter()
    try:
        entry = entry_from_file("ps1/big.bin", source)
        hash_s = time.perf_counter() - start
        submission = student.upload_bundle(f"{url}/submissions", [entry], what="submit")
    finally:
        transfer_module.write_archive = original
    upload_s = time.perf_counter() - start
    upload_peak = target.sampler.mark()
    client_upload_peak = client.mark()
    cpu_upload = target.sampler.cpu_seconds()

    start = time.perf_counter()
    detail = student.get(f"submissions/{submission['id']}", what="download")
    dest = workdir / "download"
    student.download_bundle(detail["files"], dest, what="download")
    download_s = time.perf_counter() - start
    download_peak = target.sampler.mark()
    client_download_peak = client.mark()
    cpu_download = target.sampler.cpu_seconds()
    client.stop()
    downloaded = sha256_file(dest / "ps1" / "big.bin")
    (dest / "ps1" / "big.bin").unlink()
    source.unlink()

    # One byte over the limit (a sparse file of zeros: cheap to make, and the server must
    # refuse it from the manifest before reading its bytes).
    over = workdir / "over.bin"
    with open(over, "wb") as handle:
        handle.truncate(limit + 1)
    start = time.perf_counter()
    refusal: dict[str, Any] = {}
    try:
        student.upload_bundle(
            f"{url}/submissions", [entry_from_file("ps1/over.bin", over)], what="submit"
        )
        refusal = {"status": 201, "detail": "accepted: the limit was not enforced"}
    except ServiceError as exc:
        refusal = {"status": exc.status, "code": exc.code, "detail": str(exc)}
    refusal["seconds"] = round(time.perf_counter() - start, 1)
    over.unlink()
    instructor.close()
    student.close()

    result = {
        "file_MiB": size // MIB,
        "generate_s": round(generated, 1),
        "upload_s": round(upload_s, 1),
        "upload_MB_per_s": round(size / 1e6 / upload_s, 1),
        "upload_client_hash_s": round(hash_s, 1),
        "upload_client_tar_gz_s": round(sum(archive_s), 1),
        "upload_transfer_and_server_s": round(upload_s - hash_s - sum(archive_s), 1),
        "download_s": round(download_s, 1),
        "download_MB_per_s": round(size / 1e6 / download_s, 1),
        "server_cpu_upload_s": round(cpu_upload - cpu_before, 1),
        "server_cpu_download_s": round(cpu_download - cpu_upload, 1),
        "client_rss_before_MB": round(client_idle / 1e6),
        "client_peak_rss_above_before_upload_MB": round((client_upload_peak - client_idle) / 1e6),
        "client_peak_rss_above_before_download_MB": round(
            (client_download_peak - client_idle) / 1e6
        ),
        "server_idle_rss_MB": round(idle / 1e6),
        "server_peak_rss_upload_MB": round(upload_peak / 1e6),
        "server_peak_rss_above_idle_upload_MB": round((upload_peak - idle) / 1e6),
        "server_peak_rss_download_MB": round(download_peak / 1e6),
        "server_peak_rss_above_idle_download_MB": round((download_peak - idle) / 1e6),
        "bytes_match": downloaded == expected,
        "over_limit": refusal,
    }
    problems = []
    if not result["bytes_match"]:
        problems.append(f"the downloaded file's SHA-256 {downloaded} is not {expected}")
    if refusal.get("status") != 413:
        problems.append(f"a file over the limit got {refusal}, not 413")
    result["problems"] = problems
    result["ok"] = not problems
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.large", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    add_server_options(parser)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    limit = max(size, 1024 * MIB)
    workdir = Path(tempfile.mkdtemp(prefix="exchange-large-"))
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    with server_under_test(
        database=args.database,
        storage=args.storage,
        workers=args.workers,
        threads=args.threads,
        env={"EXCHANGE_MAX_FILE_SIZE": str(limit), "EXCHANGE_MAX_BUNDLE_SIZE": str(2 * limit)},
        workdir=workdir / "srv",
    ) as target:
        result = run_large(target, size=size, limit=limit, workdir=workdir)
        result["machine"] = machine(target)
    result["machine"]["load_average_at_start"] = load_at_start
    result["limit_bytes"] = limit
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    print("RESULT: " + ("OK" if result["ok"] else "FAILED"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
