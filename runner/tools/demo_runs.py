"""The demo's run folders: .runtime/demo/<time>/, one per `runner demo`, the oldest removed, and
the generated project.yml inside it (the project's sql/ and vars with the run's own broker,
model, checkpoints, outputs and runtime folder), so a demo never touches a user's own runs."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import yaml

DEMO_FOLDER = "demo"          # under the project's runtime folder (.runtime/demo)
KEEP_RUNS = 3                 # older demo run folders are removed when a new one starts


def pick_port(preferred: int) -> int:
    """`preferred` when it is free on 127.0.0.1, else a free port."""
    from runner.tools.kafka_local import _port_free, free_port
    return preferred if preferred and _port_free(preferred) else free_port()


def new_run_dir(project) -> Path:
    """A fresh .runtime/demo/<time>/ folder; removes all but the newest KEEP_RUNS - 1 older runs."""
    base = project.runtime_dir / DEMO_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    old = sorted(p for p in base.iterdir() if p.is_dir() and p.name[:1].isdigit())
    for p in old[:max(0, len(old) - (KEEP_RUNS - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run = base / stamp
    n = 1
    while run.exists():
        n += 1
        run = base / f"{stamp}-{n}"
    run.mkdir()
    return run


def write_demo_project(project, run_dir: Path, bootstrap: str) -> Path:
    """run_dir/project.yml: the project's vars, topics, sources and sql/, with the demo's own
    broker, model, checkpoints, outputs and runtime folder."""
    raw = yaml.safe_load(project.file.read_text()) or {}
    raw["model"] = str(run_dir / "models" / project.model_path.name)
    raw["paths"] = {"sql": str(project.sql_dir), "target": str(run_dir / "target"),
                    "runtime": str(run_dir / ".runtime")}
    base = dict((raw.get("targets") or {}).get(project.target.name) or {})
    base.update({"master": project.target.master, "output_root": str(run_dir / "output"),
                 "checkpoint_root": str(run_dir / "checkpoints"),
                 "kafka": {"bootstrap.servers": bootstrap},  # the demo's own plaintext broker
                 # Spark's progress bars would fill apply.log; the dashboard shows progress instead
                 "spark_conf": {**project.target.spark_conf, "spark.ui.showConsoleProgress": "false"}})
    raw["targets"] = {"demo": base}
    raw["default_target"] = "demo"
    f = run_dir / "project.yml"
    f.write_text(f"# Written by `runner demo` from {project.file}; this demo run's own broker and folders.\n"
                 + yaml.safe_dump(raw, sort_keys=False))
    return f
