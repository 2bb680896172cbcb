"""The parse floor: the pipeline's own from_json alone, to a no-op sink, in a process of its own.

    python -m bench.floor --project RUN_DIR

Reads the project's transactions source as `runner apply` does (same session settings, same
source options), parses each value with the exact from_json call of the compiled stg_parsed
model (same strict schema, same generator shape), and writes to Spark's noop sink with
availableNow. What is left to a pipeline above this rate is everything but the parse. Prints
one `BENCH_RESULT {json}` line.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_PARSE = re.compile(r"from_json\(CAST\(value AS STRING\), '[^']*'\)")


def parse_expression(manifest) -> str:
    """stg_parsed's from_json call, as compiled."""
    sql = manifest.model("stg_parsed").sql
    found = _PARSE.search(sql)
    if not found:
        raise RuntimeError("no `from_json(CAST(value AS STRING), '<schema>')` in the compiled stg_parsed "
                           "(sql/staging/stg_parsed.sql): update bench/floor.py's pattern to its parse")
    return found.group(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", required=True, help="a bench project folder (bench/workload.py bench_project)")
    args = ap.parse_args(argv)

    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.stream import checkpoints, sources
    from runner.stream.session import session_for

    project = load_project(Path(args.project))
    manifest = compile_project(project, write=False)
    parse = parse_expression(manifest)
    spark = session_for(project, app_name="bench-floor")
    t0 = time.monotonic()
    sources.register_streaming(spark, project, {("kafka", "transactions")})
    view = sources.view_name("kafka", "transactions")
    parsed = spark.sql(f"SELECT j.* FROM `{view}` LATERAL VIEW explode(array({parse})) AS j")
    q = (parsed.writeStream.format("noop").option("checkpointLocation", checkpoints.location(project.checkpoint_root, "floor"))
         .trigger(availableNow=True).start())
    q.awaitTermination()
    drain_s = time.monotonic() - t0
    print("BENCH_RESULT " + json.dumps({"drain_s": drain_s,
                                         "rows": sum(p.numInputRows for p in q.recentProgress)}), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
