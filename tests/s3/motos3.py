"""A local S3-compatible server for the tests: moto's server mode (`moto_server`, PyPI `moto[server]`,
installed by `make setup-s3`) on 127.0.0.1, a bucket in it, and the S3A settings that point Hadoop
at it (path-style, plain HTTP, dummy credentials: moto accepts any).

Started as a process of its own on a free port and polled until it answers (bounded); stopped by
its pid (SIGTERM), then waited for. Nothing is kept: moto holds the objects in memory.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from runner.stream.jars import JVM_LIB, s3a_connector
from runner.tools import processes
from runner.tools.kafka_local import free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
ACCESS_KEY, SECRET_KEY = "fraud-test-key", "fraud-test-secret"   # moto checks neither
REGION = "us-east-1"


def missing() -> str | None:
    """Why the S3 tests can not run here, in one line naming `make setup-s3`; None when they can."""
    if not s3a_connector():
        return f"no S3A connector jars in {JVM_LIB / 's3'}: run `make setup-s3`"
    if not _moto_server():
        return "moto's S3 server (moto[server]) is not installed: run `make setup-s3`"
    return None


def _moto_server() -> str | None:
    exe = Path(sys.executable).with_name("moto_server")
    return str(exe) if exe.exists() else shutil.which("moto_server")


class MotoS3:
    """`with MotoS3(folder, bucket) as s3:` ... `s3.uri("some/folder")`, `s3.hadoop_conf()`."""

    def __init__(self, folder: Path, bucket: str):
        self.folder, self.bucket = Path(folder), bucket
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "moto.log"

    def uri(self, path: str) -> str:
        return f"s3a://{self.bucket}/{path.strip('/')}"

    def hadoop_conf(self, *, credentials: bool = True) -> dict[str, str]:
        """S3A's settings for this bucket alone (fs.s3a.bucket.<bucket>.*, so no other s3a:// root
        is touched); credentials=False leaves the keys to AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""
        prefix = f"fs.s3a.bucket.{self.bucket}."
        conf = {"endpoint": self.endpoint, "endpoint.region": REGION, "path.style.access": "true",
                "connection.ssl.enabled": "false"}
        if credentials:
            conf.update({"access.key": ACCESS_KEY, "secret.key": SECRET_KEY})
        return {prefix + k: v for k, v in conf.items()}

    @staticmethod
    def credentials_env() -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def start(self) -> MotoS3:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen([_moto_server(), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}; last lines of {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {START_TIMEOUT_S:.0f}s; see {self.log}")
        # CreateBucket, path-style: PUT /<bucket> (us-east-1 needs no location body)
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT"), timeout=10).close()
        return self

    def stop(self) -> None:
        processes.stop(self.proc, STOP_TIMEOUT_S)   # SIGTERM, then SIGKILL what is left of its session

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
