"""Every file the runner itself touches under checkpoint_root and output_root, on any store Spark
writes to: a plain path or file: URI, hdfs://, s3a://, and the other Hadoop filesystems.

`path(location)` gives a path object with the small part of pathlib the runner uses (`/`, name,
parent, exists, is_dir, iterdir, glob, read_text, read_bytes, write_text, mkdir, rename):

- local (a plain path or a file: URI): a pathlib.Path. No JVM, so `status`, `audit`, the
  dashboard and the report of a local run stay instant.
- any other scheme: a `HadoopPath`, Hadoop's FileSystem API through the JVM pyspark runs: the
  same client, configuration and credentials Spark writes with. Inside a running session, the
  session's Hadoop configuration. Where none runs (`status`, `audit`, `dashboard`, `report`, and
  `apply` before its session starts), a JVM of its own started by pyspark's launcher (closed
  once a session runs) and a configuration built by Spark's own
  `SparkHadoopUtil.newConfiguration` from the target's `spark_conf` (`spark.hadoop.*` keys,
  `AWS_*` variables, HADOOP_CONF_DIR's files) -- what the session would have.

Why not pyarrow.fs or fsspec: pyarrow's HadoopFileSystem loads libhdfs.so, which ships with a
Hadoop distribution, not with pyspark or on Maven Central; fsspec's WebHDFS needs the NameNode's
HTTP address, which an hdfs:// URI does not give. Both would read settings and credentials
their own way (core-site.xml, `spark.hadoop.*`, Kerberos), so a root Spark writes might not be
one `status` can read. Measured on 2 cores: the gateway starts in ~3.5 s and the first HDFS call
takes ~2 s more; a local root needs neither.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import unquote, urlparse

from runner.errors import RunnerError

# Stores whose rename of a file or folder is one atomic metadata operation. On the others
# (s3a, gs, ...) a rename is a copy then a delete, object by object.
ATOMIC_RENAME_SCHEMES = {"", "file", "hdfs", "viewfs", "webhdfs", "swebhdfs"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

_spark_conf: dict[str, str] = {}


def configure(spark_conf: Mapping[str, str]) -> None:
    """The target's spark_conf, for the Hadoop configuration used where no session runs.
    Call before the first non-local path is touched (the CLI does, on loading the project)."""
    global _spark_conf
    conf = {str(k): str(v) for k, v in spark_conf.items()}
    if conf != _spark_conf:
        _spark_conf = conf
        _close_sessionless()


def scheme(location: str | os.PathLike) -> str:
    """'' for a plain path, else the URI scheme in lower case ('file', 'hdfs', 's3a', ...)."""
    m = _SCHEME.match(str(location))
    if m:
        return m.group(1).lower()
    return "file" if str(location).startswith("file:") else ""


def path(location: str | os.PathLike) -> Path | HadoopPath:
    """A path object for a plain path, a file: URI (read literally, as Hadoop does: no
    percent-decoding) or any Hadoop filesystem URI."""
    if isinstance(location, (Path, HadoopPath)):
        return location
    text = str(location)
    if scheme(text) == "file":
        return Path(urlparse(text).path)
    if scheme(text):
        return HadoopPath(text)
    return Path(text)


def uri(location) -> str:
    """The string to give Spark: a file: URI for a local path (so a cluster whose default
    filesystem is HDFS does not read it as an HDFS path), the URI itself otherwise."""
    p = path(location)
    if isinstance(p, Path):
        # Not Path.as_uri(): Hadoop reads a path string literally, so "%3D" would name a folder.
        return f"file://{p.resolve()}"
    return str(p)


def renames_atomically(location) -> bool:
    return scheme(location) in ATOMIC_RENAME_SCHEMES


def same_store(a, b) -> bool:
    """Both on one filesystem, so a rename can move one to the other."""
    pa_, pb = path(a), path(b)
    if isinstance(pa_, Path) or isinstance(pb, Path):
        return isinstance(pa_, Path) and isinstance(pb, Path)
    return (pa_.scheme, pa_.authority) == (pb.scheme, pb.authority)


def from_logged_uri(entry: str) -> Path | HadoopPath:
    """A path written in a Spark log (`_spark_metadata`): a percent-encoded URI."""
    parsed = urlparse(entry)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return HadoopPath(f"{parsed.scheme}://{parsed.netloc}{unquote(parsed.path)}")


def replace_text(p, text: str) -> None:
    """Write a small file so a reader sees the old content or the new one, never a part."""
    p = path(p)
    if isinstance(p, Path):
        from runner.files import write_atomic
        write_atomic(p, text)
    elif renames_atomically(p):
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text)
        tmp.rename(p, overwrite=True)
    else:
        # An object store's PUT is atomic: the object appears whole when the stream closes.
        p.write_text(text)


def move(src, dst) -> None:
    """Move a file or folder to dst (which must not exist) on the same store, creating dst's
    parent. Nothing is copied between stores (checkpoints.archive keeps each on its own)."""
    src, dst = path(src), path(dst)
    if not same_store(src, dst):
        raise RunnerError(f"can not move {src} to {dst}: they are on different stores",
                          hint="archive each folder on its own store")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(src, Path):
        shutil.move(str(src), str(dst))
    else:
        src.rename(dst)   # HDFS: one NameNode operation; S3: a copy then a delete per object


def remove_tree(p) -> None:
    """Delete a folder. Only for what was never committed (a crashed write's leftovers) or was
    copied and checked: the runner never deletes checkpoints or committed outputs."""
    p = path(p)
    if isinstance(p, Path):
        shutil.rmtree(p, ignore_errors=True)
    else:
        p._call("delete", lambda fs, jp: fs.delete(jp, True))


def read_parquet(p, columns: list[str] | None = None):
    """One Parquet file as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = path(p)
    source = p if isinstance(p, Path) else pa.BufferReader(p.read_bytes())
    return pq.read_table(source, columns=columns, partitioning=None)


# --------------------------------------------------------------------------- Hadoop

_sessionless = None   # (gateway, Hadoop Configuration) of a private JVM, for the configured conf


def _hadoop():
    """(py4j gateway, Hadoop Configuration): the running session's, else a private JVM's."""
    from pyspark.sql import SparkSession

    session = SparkSession._instantiatedSession
    if session is not None and session._sc._jsc is not None:
        _close_sessionless()   # the session's own client from now on
        return session._sc._gateway, session._jsparkSession.sessionState().newHadoopConf()
    return _sessionless_hadoop()


def _sessionless_hadoop():
    """A JVM of its own (pyspark's launcher, so spark-submit's class path and HADOOP_CONF_DIR),
    not pyspark's shared gateway: a session started later in this process (`apply` plans before
    it starts Spark) must launch its JVM with its own conf (spark.jars, driver memory), which a
    JVM already running would ignore. The configuration is Spark's own
    SparkHadoopUtil.newConfiguration over the target's spark_conf: what a session would use."""
    global _sessionless
    if _sessionless is None:
        from runner.stream.jars import s3a_connector_on_class_path
        from runner.stream.spark_log import launch_private_gateway

        with s3a_connector_on_class_path():
            gateway = launch_private_gateway()   # its log in the verb's file, as the session's
        jvm = gateway.jvm
        conf = jvm.org.apache.spark.SparkConf(True)
        for k, v in _spark_conf.items():
            conf.set(k, v)
        _sessionless = (gateway, jvm.org.apache.spark.deploy.SparkHadoopUtil.get().newConfiguration(conf))
    return _sessionless


def _close_sessionless() -> None:
    global _sessionless
    if _sessionless is not None:
        gateway, _ = _sessionless
        _sessionless = None
        gateway.shutdown()
        proc = getattr(gateway, "proc", None)
        if proc is not None and proc.stdin:
            proc.stdin.close()   # the JVM exits when its stdin closes (pyspark's launcher)
            proc.wait(30)


class HadoopPath:
    """A path on a Hadoop filesystem (hdfs://, s3a://, ...), held as a decoded URI string; every
    I/O call goes to Hadoop's FileSystem through the JVM."""

    def __init__(self, text: str):
        parsed = urlparse(text)
        self.scheme, self.authority = parsed.scheme.lower(), parsed.netloc
        self.key = "/" + "/".join(part for part in parsed.path.split("/") if part)

    # ---- pure path arithmetic (no JVM)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.key if self.key != '/' else '/'}"

    def __repr__(self) -> str:
        return f"HadoopPath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, HadoopPath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: HadoopPath) -> bool:
        return str(self) < str(other)

    def __truediv__(self, name: str) -> HadoopPath:
        return HadoopPath(f"{self.scheme}://{self.authority}{self.key.rstrip('/')}/{str(name).strip('/')}")

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> HadoopPath:
        head = self.key.rsplit("/", 1)[0] or "/"
        return HadoopPath(f"{self.scheme}://{self.authority}{head}")

    def with_name(self, name: str) -> HadoopPath:
        return self.parent / name

    # ---- I/O

    def _call(self, what: str, fn):
        from py4j.protocol import Py4JJavaError

        gateway, conf = _hadoop()
        jpath = gateway.jvm.org.apache.hadoop.fs.Path(str(self))
        try:
            return fn(jpath.getFileSystem(conf), jpath)
        except Py4JJavaError as e:
            java = e.java_exception
            message = str(java.getMessage() or java.toString()).strip().splitlines()[0]
            raise RunnerError(f"{self}: {what} failed: {java.getClass().getSimpleName()}: {message}",
                              hint="check that the store answers from this machine and that the target's "
                                   "spark_conf holds its settings (spark.hadoop.*; README \"Running on a cluster\")"
                              ) from None

    def exists(self) -> bool:
        return bool(self._call("exists", lambda fs, p: fs.exists(p)))

    def is_dir(self) -> bool:
        return bool(self._call("stat", lambda fs, p: fs.exists(p) and fs.getFileStatus(p).isDirectory()))

    def is_file(self) -> bool:
        return bool(self._call("stat", lambda fs, p: fs.exists(p) and fs.getFileStatus(p).isFile()))

    def iterdir(self) -> Iterator[HadoopPath]:
        names = self._call("list", lambda fs, p: [s.getPath().getName() for s in fs.listStatus(p)]
                           if fs.exists(p) else [])
        return iter(self / n for n in sorted(names))

    def glob(self, pattern: str) -> Iterator[HadoopPath]:
        """Children whose name matches a one-level pattern ('batch=*', '*.parquet')."""
        if "/" in pattern:
            raise ValueError(f"only one-level patterns, got {pattern!r}")
        return iter(p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern))

    def read_bytes(self) -> bytes:
        def read(fs, p):
            stream = fs.open(p)
            try:
                # One py4j transfer per file (commons-io is on pyspark's class path).
                return bytes(_jvm().org.apache.commons.io.IOUtils.toByteArray(stream))
            finally:
                stream.close()
        return self._call("read", read)

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        def write(fs, p):
            out = fs.create(p, True)
            try:
                out.write(bytearray(data))
            finally:
                out.close()
        self._call("write", write)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        # Hadoop's mkdirs always makes the parents and accepts an existing folder.
        self._call("mkdir", lambda fs, p: fs.mkdirs(p))

    def rename(self, target: HadoopPath, *, overwrite: bool = False) -> HadoopPath:
        """Rename to `target`, which must not exist (or, with overwrite, may be a file). On HDFS
        one atomic NameNode operation. Hadoop's FileContext, not FileSystem.rename, whose
        rename onto an existing folder moves the source into it."""
        target = path(target)

        def rename(fs, p):
            gateway, conf = _hadoop()
            jvm = gateway.jvm
            options = gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
            options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE if overwrite \
                else jvm.org.apache.hadoop.fs.Options.Rename.NONE
            context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(p.toUri(), conf)
            context.rename(p, jvm.org.apache.hadoop.fs.Path(str(target)), options)
        if renames_atomically(self):
            self._call(f"rename to {target}", rename)
        else:
            def copy_rename(fs, p):
                if not fs.rename(p, _jvm().org.apache.hadoop.fs.Path(str(target))):
                    raise RunnerError(f"{self}: rename to {target} refused by the store",
                                      hint="the target may exist already")
            self._call(f"rename to {target}", copy_rename)
        return target



def _jvm():
    return _hadoop()[0].jvm
