"""The driver JVM's class-data archive: Spark's classes read, verified and laid out once, at `make
setup`, instead of at every start of a driver.

A driver JVM loads some 20,000 classes from Spark's jars before it plans a query, parsing and
verifying each; that was about half of the 7 s a bare session took to start here, and 3 of the
10 s `runner plan` took. HotSpot's class data sharing maps them from one file instead: a JVM
started with -XX:ArchiveClassesAtExit writes the classes it loaded when it exits (a dynamic
archive, JEP 350), and every driver started after with -XX:SharedArchiveFile reads them from it
(README "Benchmarks").

`make setup` runs `python -m runner.stream.class_archive jvm/lib/cds/driver.jsa`: a session with
the runner's own settings and a short workload like the pipeline's (JSON parsing, a windowed
aggregation, Parquet, Kafka's source, a stateful streaming query on RocksDB), then the JVM exits
and leaves the archive. build_session adds the option to read it whenever the file is there.

The archive holds nothing the SQL reads and changes no result: it is the same classes, loaded
faster. It is only good for the JVM that wrote it and the same class path (HotSpot checks every
jar's path, size and time, and a longer class path may only add jars at the end). One that does
not match is ignored with a warning that -Xlog:cds*=off keeps out of the runner's output: a slower
start, nothing else. `make setup` makes it again when pyspark or the jars change.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from runner.stream.jars import JVM_LIB

ARCHIVE = JVM_LIB / "cds" / "driver.jsa"
QUIET = "-Xlog:cds*=off"        # an archive that does not match says so on the JVM's stdout
EXIT_TIMEOUT_S = 180.0          # writing ~150 MB takes seconds; bounded anyway


def java_options(options: str) -> str:
    """`options` (a driver's extraJavaOptions) with the archive read at start, when `make setup`
    made one and the options do not already name an archive of their own."""
    if not ARCHIVE.is_file() or "SharedArchiveFile" in options or "ArchiveClassesAtExit" in options:
        return options
    return " ".join(filter(None, [options, f"-XX:SharedArchiveFile={ARCHIVE}", QUIET]))


# --------------------------------------------------------------------------- making it

def _workload(spark, work: Path) -> None:
    """What a driver of this project does, briefly, so that what it loads is in the archive."""
    from pyspark.sql import functions as F

    from runner.stream.sink_batches import collected

    rows = [(f'{{"txn_id": "t{i}", "event_time": "2026-01-01T00:00:{i % 60:02d}Z", "Amount": {i}.5}}',)
            for i in range(200)]
    parsed = (spark.createDataFrame(rows, "value STRING")
              .select(F.from_json("value", "txn_id STRING, event_time TIMESTAMP, Amount DOUBLE").alias("j"))
              .select("j.*")
              .where(F.expr("try_cast(event_time AS TIMESTAMP) IS NOT NULL AND trim(txn_id) <> ''")))
    per_window = parsed.groupBy(F.window("event_time", "10 seconds")).agg(
        F.count("*").alias("n"), F.count_if(F.col("Amount") > 100).alias("big"))
    per_window.write.mode("overwrite").parquet(str(work / "batch"))
    spark.read.parquet(str(work / "batch")).collect()
    # Kafka's source classes (nothing connects until a query runs)
    spark.readStream.format("kafka").option("kafka.bootstrap.servers", "127.0.0.1:9").option(
        "subscribe", "t").load().selectExpr("CAST(value AS STRING)", "partition", "offset").schema

    def write(batch_df, batch_id: int) -> None:   # as the KPI writer does (runner/stream/sink_batches.py)
        cached = batch_df.persist()
        try:
            collected(cached, 10)
            cached.write.mode("overwrite").parquet(str(work / "stream" / f"batch={batch_id}"))
        finally:
            cached.unpersist()

    # three files, a batch each (available-now: the query ends by itself, nothing is interrupted)
    for n in range(3):
        (work / "in").mkdir(exist_ok=True)
        (work / "in" / f"{n}.json").write_text("".join(
            f'{{"id": {i}, "ts": "2026-01-01T00:{n:02d}:{i % 60:02d}Z"}}\n' for i in range(100)))
    stream = (spark.readStream.schema("id LONG, ts TIMESTAMP").option("maxFilesPerTrigger", 1).json(str(work / "in"))
              .withWatermark("ts", "2 seconds").dropDuplicates(["id", "ts"])
              .groupBy(F.window("ts", "10 seconds")).agg(F.count("*").alias("n")))
    query = (stream.writeStream.outputMode("append").foreachBatch(write).trigger(availableNow=True)
             .option("checkpointLocation", str(work / "checkpoint")).start())
    if not query.awaitTermination(EXIT_TIMEOUT_S):
        query.stop()


def build(dest: Path) -> None:
    """Run the workload in a driver that writes the archive when it exits; `dest` appears only
    once the archive is whole."""
    from runner.stream.session import DEFAULT_CONF, build_session

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    options = f"{DEFAULT_CONF['spark.driver.extraJavaOptions']} -XX:ArchiveClassesAtExit={partial} {QUIET}"
    with tempfile.TemporaryDirectory(prefix="class-archive-") as work:
        spark = build_session("local[4]", app_name="class-archive", log_level="ERROR",
                              conf={"spark.driver.extraJavaOptions": options,
                                    "spark.ui.showConsoleProgress": "false"})
        jvm = spark.sparkContext._gateway.proc   # spark-submit execs the driver JVM in this process
        ran = False
        try:
            _workload(spark, Path(work))
            ran = True
        finally:
            spark.stop()
            jvm.stdin.close()                    # the gateway exits at end of input, writing the archive
            jvm.wait(timeout=EXIT_TIMEOUT_S)
            if not ran:                          # what the JVM wrote is not the workload's archive
                partial.unlink(missing_ok=True)
    if jvm.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the driver JVM exited with code {jvm.returncode} and wrote no archive")
    partial.replace(dest)


def main(argv: list[str]) -> int:
    from runner.stream import spark_log

    dest = Path(argv[0]) if argv else ARCHIVE
    started = time.monotonic()
    spark_log.configure("class-archive", lambda: dest.parent)   # Spark's lines in <dest folder>/logs/
    try:
        build(dest)
    except Exception as e:   # setup goes on: the archive only makes drivers start faster
        print(f"note: no class-data archive ({type(e).__name__}: {e}); drivers start without it", file=sys.stderr)
        return 1
    print(f"class-data archive: {dest} ({dest.stat().st_size / 2**20:.0f} MB, "
          f"{time.monotonic() - started:.0f} s to make; Spark's log in {dest.parent / 'logs'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
