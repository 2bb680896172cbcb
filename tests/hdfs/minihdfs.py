"""A real HDFS for the tests: Hadoop's MiniDFSCluster (one NameNode, one DataNode in one JVM) from
the jar `make setup` puts in jvm/lib/minicluster, at the Hadoop version pyspark ships.

Started with Hadoop's own `org.apache.hadoop.test.MiniDFSClusterManager`; every port is chosen by
the OS (port 0) on 127.0.0.1, and the NameNode's is read from the details file the manager writes
once the cluster is up (after its DataNode registered). Stopped by its pid (SIGTERM: Hadoop's
shutdown hook stops both nodes), then waited for.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pyspark

from runner.stream.jars import JVM_LIB
from runner.tools import processes

MAIN_CLASS = "org.apache.hadoop.test.MiniDFSClusterManager"
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
_VERSION = re.compile(r"-(\d+\.\d+\.\d+)\.jar$")


def pyspark_jars() -> Path:
    return Path(pyspark.__file__).parent / "jars"


def hadoop_version(folder: Path, artifact: str) -> str | None:
    for jar in sorted(folder.glob(f"{artifact}-*.jar")):
        m = _VERSION.search(jar.name)
        if m:
            return m.group(1)
    return None


def minicluster_jar() -> Path:
    """The mini cluster jar, after checking it is pyspark's Hadoop version."""
    folder = JVM_LIB / "minicluster"
    ours = hadoop_version(folder, "hadoop-client-minicluster")
    theirs = hadoop_version(pyspark_jars(), "hadoop-client-api")
    if ours is None:
        raise RuntimeError(f"no hadoop-client-minicluster jar in {folder}: run `make setup`")
    if ours != theirs:
        raise RuntimeError(f"hadoop-client-minicluster {ours} in {folder} but pyspark ships Hadoop {theirs}: "
                           f"set <hadoop.version>{theirs}</hadoop.version> in jvm/pom.xml, then `make setup`")
    return folder / f"hadoop-client-minicluster-{ours}.jar"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = Path(home) / "bin" / "java" if home else None
    found = str(java) if java and java.exists() else shutil.which("java")
    if not found:
        raise RuntimeError("java not found (the mini HDFS needs Java 17+): install OpenJDK 17 or set JAVA_HOME")
    return found


class MiniHDFS:
    """`with MiniHDFS(folder) as hdfs:` ... `hdfs.uri("/some/folder")`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"hdfs://127.0.0.1:{self.port}"

    def uri(self, path: str) -> str:
        return f"{self.url}/{path.strip('/')}"

    @property
    def log(self) -> Path:
        return self.folder / "minihdfs.log"

    def start(self) -> MiniHDFS:
        self.folder.mkdir(parents=True, exist_ok=True)
        details = self.folder / "details.json"
        details.unlink(missing_ok=True)
        classpath = f"{minicluster_jar()}:{pyspark_jars()}/*"   # pyspark's jars: Hadoop client, log4j
        cmd = [_java(), "-Xmx512m", f"-Dtest.build.data={self.folder / 'data'}", "-cp", classpath, MAIN_CLASS,
               "-format", "-datanodes", "1", "-nnport", "0", "-httpport", "0",
               "-D", f"hdfs.minidfs.basedir={self.folder / 'data'}",
               "-D", "dfs.replication=1",
               "-writeDetails", str(details)]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the mini HDFS exited with {self.proc.returncode}; last lines of {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            if details.exists():
                try:
                    self.port = int(json.loads(details.read_text())["namenode_port"])
                    return self
                except (ValueError, KeyError):
                    pass   # still being written
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the mini HDFS did not come up within {START_TIMEOUT_S:.0f}s; see {self.log}")

    def stop(self) -> None:
        processes.stop(self.proc, STOP_TIMEOUT_S)   # SIGTERM, then SIGKILL what is left of its session

    def __enter__(self) -> MiniHDFS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def on_hdfs(sp, hdfs: MiniHDFS):
    """Point a StreamProject's checkpoint_root and output_root at a fresh folder of the mini HDFS;
    `sp.hdfs_base` is that folder's URI."""
    from storecheck import on_store

    sp = on_store(sp, hdfs.uri(f"fraud-{uuid.uuid4().hex[:8]}"))
    sp.hdfs_base = sp.store_base
    return sp
