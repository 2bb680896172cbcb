"""What a streaming query's checkpoint depends on, and whether a change lets it resume.

The verdicts follow Spark's "Recovery Semantics after Changes in a Streaming Query":
- the number or kind of input sources, or their subscribed topics, may not change;
- a file sink's output directory may not change; a Kafka sink's topic may;
- filters and projections may change;
- any change to stateful operations (grouping keys, aggregates, dedup, window) may not.
A watermark's delay is not part of the state: Spark restarts with the new delay (the
watermark itself never moves back), which tests/stream/test_restart.py shows on real queries.

Pure functions over the manifest: no Spark, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from runner.compile.dialect import FraudSpark

NEW, RESUME, COMPATIBLE, INCOMPATIBLE = "NEW", "RESUME", "RESUME (compatible change)", "INCOMPATIBLE"

# `runner plan --detailed-exitcode`, as `terraform plan -detailed-exitcode`: 0 nothing changes,
# 2 changes apply can carry out (a new query starts from scratch, a compatible one resumes),
# 3 apply would refuse (a KPI's state would have to be reset). 1 stays the code of an error.
PLAN_EXIT_CODES = {RESUME: 0, NEW: 2, COMPATIBLE: 2, INCOMPATIBLE: 3}


def plan_exit_code(kinds) -> int:
    """The exit code of a plan whose queries have these verdict kinds: the worst one's."""
    return max((PLAN_EXIT_CODES[k] for k in kinds), default=0)


@dataclass
class Verdict:
    kind: str
    reasons: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.kind == INCOMPATIBLE


def lineage(manifest, name: str) -> list:
    """The model and every model it reads from, dependencies first."""
    wanted, stack = set(), [name]
    while stack:
        m = manifest.model(stack.pop())
        if m.name not in wanted:
            wanted.add(m.name)
            stack.extend(m.refs)
    return [m for m in manifest.models if m.name in wanted]


def stateful_shape(sql: str) -> dict | None:
    """Grouping keys, aggregates and DISTINCT of one model's SELECT, normalized; None if stateless."""
    tree = sqlglot.parse_one(sql, read=FraudSpark)
    norm = lambda e: e.sql(dialect=FraudSpark, normalize=True, comments=False)  # noqa: E731
    shape = {"group_by": [], "aggregates": [], "distinct": False}
    for select in tree.find_all(exp.Select):
        group = select.args.get("group")
        if group:
            shape["group_by"] += [norm(e) for e in group.expressions]
        shape["aggregates"] += sorted({norm(a) for a in select.find_all(exp.AggFunc)})
        shape["distinct"] |= bool(select.args.get("distinct"))
    return shape if (shape["group_by"] or shape["aggregates"] or shape["distinct"]) else None


def query_fingerprint(manifest, model_name: str, sink: dict, *, sources: dict, sink_location: str,
                      vars_: dict, reads: dict[str, str] | None = None) -> dict:
    """Everything the checkpoint of (model, sink) depends on, as plain JSON-able data.

    `sources`: {'kafka.transactions': {'topic': ...}}; `sink_location`: resolved path or topic;
    `vars_`: the effective var values (shown in reasons, not used for the verdict);
    `reads`: {model: topic} a query after the route query reads those models' rows from. The
    transactions' source stays in its sources too: what it computes still comes from there.
    """
    models = lineage(manifest, model_name)
    model = models[-1]
    stateful = {}
    watermarks = {}
    for m in models:
        shape = stateful_shape(m.sql)
        if shape:
            stateful[m.name] = shape
        if m.config.watermark:
            watermarks[m.name] = dict(m.config.watermark)
    used_sources = sorted({f"{k}.{n}" for m in models for k, n in m.sources})
    read = {f"topic.{topic}": {"topic": topic} for topic in sorted(set((reads or {}).values()))}
    return {
        "sources": {**{s: sources[s] for s in used_sources}, **read},
        "stateful": stateful,
        "watermarks": watermarks,
        "sink": {"kind": sink["kind"], "location": sink_location},
        "output_mode": model.config.output_mode,
        "models": {m.name: m.fingerprint for m in models},
        "vars": vars_,
    }


def _diff_list(old: list, new: list) -> str:
    return f"{', '.join(old) or 'none'} -> {', '.join(new) or 'none'}"


def verdict(old: dict | None, new: dict) -> Verdict:
    if old is None:
        return Verdict(NEW, ["no checkpoint yet: the query starts from the source's starting offsets"])
    bad: list[str] = []
    ok: list[str] = []

    if set(old["sources"]) != set(new["sources"]):
        bad.append(f"its sources changed ({_diff_list(sorted(old['sources']), sorted(new['sources']))}); "
                   "Spark can not restart a query whose number or kind of sources changed")
    for name in set(old["sources"]) & set(new["sources"]):
        if old["sources"][name] != new["sources"][name]:
            bad.append(f"source {name} changed from {old['sources'][name]} to {new['sources'][name]}; "
                       "Spark can not restart a query whose subscribed topics changed")

    for name in sorted(set(old["stateful"]) | set(new["stateful"])):
        before, after = old["stateful"].get(name), new["stateful"].get(name)
        if before == after:
            continue
        if before is None or after is None:
            bad.append(f"{name} {'became stateful' if before is None else 'is no longer stateful'}; "
                       "the saved state does not fit the new query")
            continue
        for part, label in (("group_by", "grouping keys"), ("aggregates", "aggregates")):
            if before[part] != after[part]:
                bad.append(f"{name}: {label} changed ({_diff_list(before[part], after[part])}); "
                           "Spark can not restore state of a different shape")
        if before["distinct"] != after["distinct"]:
            bad.append(f"{name}: DISTINCT changed; deduplication state can not change across a restart")

    for name in sorted(set(old["watermarks"]) | set(new["watermarks"])):
        before, after = old["watermarks"].get(name), new["watermarks"].get(name)
        if before == after:
            continue
        if before is None or after is None or before["column"] != after["column"]:
            bad.append(f"{name}: the watermark changed ({before} -> {after}); the event-time column of "
                       "stateful operators can not change across a restart")
        else:
            ok.append(f"{name}: watermark delay {before['delay']} -> {after['delay']} (Spark resumes with the "
                      "new delay; the watermark never moves back, so windows already closed stay closed)")

    if old["sink"]["kind"] != new["sink"]["kind"]:
        bad.append(f"the sink changed from {old['sink']['kind']} to {new['sink']['kind']}")
    elif old["sink"]["location"] != new["sink"]["location"]:
        if new["sink"]["kind"] == "parquet":
            bad.append(f"the Parquet output directory changed ({old['sink']['location']} -> "
                       f"{new['sink']['location']}); a file sink's directory may not change across a restart")
        else:
            ok.append(f"{new['sink']['kind']} sink target {old['sink']['location']} -> {new['sink']['location']}")

    if old["output_mode"] != new["output_mode"]:
        (bad if new["stateful"] else ok).append(
            f"output mode {old['output_mode']} -> {new['output_mode']}")

    for name in sorted(set(old["models"]) | set(new["models"])):
        if old["models"].get(name) != new["models"].get(name) and name not in new["stateful"]:
            ok.append(f"{name}: SQL changed (a filter or projection; allowed across a restart)")
        elif old["models"].get(name) != new["models"].get(name):
            ok.append(f"{name}: SQL changed outside its grouping keys and aggregates")
    changed_vars = [f"{k} {old['vars'].get(k)!r} -> {new['vars'].get(k)!r}"
                    for k in sorted(set(old.get("vars", {})) | set(new.get("vars", {})))
                    if old.get("vars", {}).get(k) != new.get("vars", {}).get(k)]
    if changed_vars and ok:
        ok.append("vars changed: " + "; ".join(changed_vars))

    if bad:
        return Verdict(INCOMPATIBLE, bad)
    if ok:
        return Verdict(COMPATIBLE, ok)
    return Verdict(RESUME, ["nothing it depends on changed"])
