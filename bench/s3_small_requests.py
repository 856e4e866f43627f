"""CPU and wall time of one small S3 request, the boto3 client's way and ``courses.s3_requests``'
way, against a throwaway SeaweedFS on 127.0.0.1 (the one the tests use), in one process:

    python -m bench.s3_small_requests [--repeat 300] [--size 50000]
    python -m bench.s3_small_requests --repeat 40 --size 5242880   # a 5 MiB data file

Each line is the mean over ``--repeat`` requests, one after another, after one warm-up:
``time.process_time`` (this process's CPU: signing, serializing, parsing), the CPU of the
machine's ``weed`` processes (SeaweedFS's side of it; give it the machine alone) and wall
time.
Also what the presigned-URL path costs instead of a GET through the service: presigning
(the service) and following the URL with ``requests`` (the client).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .common import cpu_of_others, cpu_of_others_since


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--size", type=int, default=50_000, help="bytes per object")
    args = parser.parse_args(argv)

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "courses"],
        USE_TZ=True,
    )
    django.setup()
    import requests

    from courses import s3_requests
    from courses.s3_backend import ExchangeS3Storage
    from tests.harness.seaweedfs import SeaweedFS

    workdir = Path(tempfile.mkdtemp(prefix="s3-small-"))
    server = SeaweedFS(workdir / "weed").start()
    try:
        storage = ExchangeS3Storage(**server.storage_options()["OPTIONS"])
        client = storage.connection.meta.client
        bucket = storage.bucket_name
        body = os.urandom(args.size)
        sha = hashlib.sha256(body).hexdigest()
        params = storage._get_write_parameters("blob")
        kb = f"{args.size // 1000} KB"

        def run(label: str, request: Callable[[int], object]) -> None:
            request(0)
            wall, cpu, others = time.perf_counter(), time.process_time(), cpu_of_others()
            for i in range(args.repeat):
                request(i)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            theirs = cpu_of_others_since(others)["weed"]
            per = 1000 / args.repeat
            print(f"| {label} | {cpu * per:.2f} | {theirs * per:.2f} | {wall * per:.2f} |")

        print("| request | CPU ms | SeaweedFS CPU ms | wall ms |\n|---|---|---|---|")
        run(
            f"boto3 put_object {kb}",
            lambda i: client.put_object(Bucket=bucket, Key=f"b{i}", Body=body, **params),
        )
        run(
            f"lean PUT {kb}",
            lambda i: s3_requests.put(
                storage, client, key=f"l{i}", body=body, sha256=sha, params=params
            ),
        )
        # A blob above the single-PUT size: s3transfer's upload (how it went before) against
        # one lean PUT streamed from a file (``blobstore._s3_put`` up to the multipart
        # threshold). Both read the bytes from a file on disk, as a staged upload is.
        staged = workdir / "staged"
        staged.write_bytes(body)

        def transfer(i: int) -> None:
            with open(staged, "rb") as handle:
                client.upload_fileobj(
                    handle, bucket, f"t{i}", ExtraArgs=params, Config=storage.transfer_config
                )

        def streamed(i: int) -> None:
            with open(staged, "rb") as handle:
                s3_requests.put(
                    storage,
                    client,
                    key=f"s{i}",
                    body=handle,
                    sha256=sha,
                    params=params,
                    size=args.size,
                )

        run(f"s3transfer upload_fileobj {kb} from a file", transfer)
        run(f"lean PUT {kb} streamed from a file", streamed)
        run("boto3 head_object", lambda i: client.head_object(Bucket=bucket, Key=f"b{i}"))
        run("lean HEAD", lambda i: s3_requests.exists(storage, client, name=f"l{i}"))
        run("lean HEAD (absent)", lambda i: s3_requests.exists(storage, client, name=f"x{i}"))
        run(
            f"boto3 get_object {kb}",
            lambda i: client.get_object(Bucket=bucket, Key=f"b{i}")["Body"].read(),
        )
        run(f"storage.open().read() {kb}", lambda i: storage.open(f"b{i}").read())
        run(f"lean GET {kb}", lambda i: s3_requests.read(storage, client, name=f"l{i}"))
        run("presigned URL (storage.url)", lambda i: storage.url(f"l{i}", expire=300))
        session = requests.Session()
        urls = [storage.url(f"l{i}", expire=300) for i in range(args.repeat)]
        run(f"following a presigned URL {kb} (requests)", lambda i: session.get(urls[i]).content)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
