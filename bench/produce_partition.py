"""One partition of the benchmark's backlog, sent in event-time order by a process of its own.

    python -m bench.produce_partition --bootstrap HOST:PORT --topic T --records N \
        --partitions P --partition p [--seed S] [--start ISO-TIME]

Generates the same N rows as every other partition's process (runner.tools.synth, one seed),
keeps records i with i % P == p, encodes them as `runner replay` does and sends them to partition
p in order. One request in flight at a time, so a retried batch can not overtake the next one:
the partition's offsets follow event time.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import backlog_rows, partition_of  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True, help="records in the whole backlog")
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--partition", type=int, required=True, help="the partition this process sends")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-01-01T00:00:00+00:00", help="event time of the first record")
    args = ap.parse_args(argv)

    from kafka import KafkaProducer

    from runner.tools import replay

    rows = backlog_rows(args.records)
    mine = rows[partition_of(len(rows), args.partitions) == args.partition]
    # txn_ids number the whole backlog, whichever partition a record is in.
    t0 = time.monotonic()
    pairs = replay.records(mine.reset_index(drop=True), start=datetime.fromisoformat(args.start),
                           id_prefix=f"bench-p{args.partition}")
    encoded = time.monotonic() - t0
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks=1, linger_ms=50, batch_size=512 * 1024,
                             max_in_flight_requests_per_connection=1, retries=10, max_block_ms=60_000)
    errors: list[str] = []
    t0 = time.monotonic()
    for key, value in pairs:
        producer.send(args.topic, key=key, value=value, partition=args.partition).add_errback(
            lambda e: errors.append(str(e)))
    producer.flush(timeout=300)
    producer.close(timeout=30)
    sent = time.monotonic() - t0
    if errors:
        print(f"partition {args.partition}: {len(errors)} records failed, first: {errors[0]}", file=sys.stderr)
        return 1
    print(f"partition {args.partition}: {len(pairs)} records encoded in {encoded:.1f}s, sent in {sent:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
