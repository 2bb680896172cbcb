"""The producer: creditcard.csv rows (or synthetic ones) to `transactions` as JSON.

Each record carries every column, a stable `txn_id` and `event_time` = start + Time
seconds, as the lab does. Pacing: `rate` events per wall second, or `speedup` event-time
seconds per wall second, or neither (as fast as the producer goes).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

import pandas as pd

from runner.errors import RunnerError
from runner.stream.kafka_clients import client_config

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass
class ReplaySummary:
    sent: int
    errors: int
    seconds: float
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("nan")


def default_start() -> datetime:
    """Now in UTC, floored to the minute, so KPI windows line up with wall-clock minutes."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


def records(rows: pd.DataFrame, *, start: datetime, id_prefix: str) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: key = txn_id, value = the row as a JSON object."""
    cols = list(rows.columns)
    out = []
    times = rows["Time"].to_numpy()
    for i, values in enumerate(rows.itertuples(index=False, name=None)):
        rec = {c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cols, values)}
        txn_id = f"{id_prefix}-{i:08d}"
        rec["txn_id"] = txn_id
        rec["event_time"] = (start + timedelta(seconds=float(times[i]))).strftime(TIME_FORMAT)
        out.append((txn_id.encode(), json.dumps(rec, allow_nan=True).encode()))
    return out


def send(options: Mapping[str, str], topic: str, rows: pd.DataFrame, *, start: datetime | None = None,
         id_prefix: str = "txn", rate: float | None = None, speedup: float | None = None,
         on_progress: Callable[[int], None] | None = None) -> ReplaySummary:
    """Send `rows` to `topic`, paced by `rate` or `speedup`; returns what was sent."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    if rate is not None and speedup is not None:
        raise RunnerError("give --rate or --speedup, not both")
    if (rate is not None and rate <= 0) or (speedup is not None and speedup <= 0):
        raise RunnerError("--rate and --speedup must be positive")
    start = start or default_start()
    pairs = records(rows, start=start, id_prefix=id_prefix)
    times = rows["Time"].to_numpy()
    try:
        producer = KafkaProducer(**client_config(options), linger_ms=20, batch_size=256 * 1024,
                                 acks="all", retries=10, max_block_ms=30000)
    except KafkaError as e:
        raise RunnerError(f"cannot reach Kafka at {options.get('bootstrap.servers')}: {e}",
                          hint="start it with `runner kafka start`") from None

    errors = 0
    first_error: list[str] = []

    def failed(exc):
        nonlocal errors
        errors += 1
        if not first_error:
            first_error.append(str(exc))

    t0 = time.monotonic()
    step = 500 if rate is None and speedup is None else 50
    try:
        for i, (key, value) in enumerate(pairs):
            if rate is not None:
                due = i / rate
            elif speedup is not None:
                due = (times[i] - times[0]) / speedup
            else:
                due = 0.0
            wait = due - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            producer.send(topic, key=key, value=value).add_errback(failed)
            if on_progress and (i + 1) % step == 0:
                on_progress(step)
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=30)
    if on_progress and len(pairs) % step:
        on_progress(len(pairs) % step)
    return ReplaySummary(sent=len(pairs) - errors, errors=errors, seconds=time.monotonic() - t0,
                         first_error=first_error[0] if first_error else None)


def load_rows(data: str | None, synthetic: int | None, seed: int = 42,
              limit: int | None = None) -> tuple[pd.DataFrame, str]:
    """The rows to replay and an id prefix naming where they came from."""
    if (data is None) == (synthetic is None):
        raise RunnerError("give --data PATH or --synthetic N")
    if synthetic is not None:
        from runner.tools.synth import generate
        rows, prefix = generate(synthetic, seed=seed), f"syn{seed}"
    else:
        try:
            rows = pd.read_csv(data)
        except FileNotFoundError:
            raise RunnerError(f"no such file: {data}", hint="put the Kaggle creditcard.csv in data/") from None
        missing = [c for c in ("Time", "Amount", "Class") if c not in rows.columns]
        if missing:
            raise RunnerError(f"{data} lacks columns {', '.join(missing)} (creditcard.csv layout expected)")
        prefix = "csv"
    if limit is not None:
        rows = rows.head(limit)
    if rows["Time"].isna().any() or not all(math.isfinite(t) for t in rows["Time"].head(1)):
        raise RunnerError(f"{data}: Time has missing values")
    return rows.reset_index(drop=True), prefix
