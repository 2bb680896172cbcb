"""`runner docs`: the site opened from disk in a real headless Chromium shows every model of the
manifest in the DAG and in its own section, the column types Spark found, the lineage of
fraud_alerts.fraud_prob, the plan's verdicts, the vars and the model card; no request leaves
the disk. The site (of a copy of the shipped project with a freshly trained model) is written to
this repo's target/docs/, with a screenshot of the page as target/docs/screenshot.png."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FEATURES = {f"V{i}" for i in range(1, 29)} | {"Amount"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# checked before any fixture runs (a skip inside a fixture would come after Spark and training)
NO_BROWSER = ("no chromium on PATH (make setup installs it where apt-get is available)" if not CHROMIUM else
              "playwright not installed (make setup)" if importlib.util.find_spec("playwright") is None else None)


def project_copy(root: Path, model: Path | None) -> Path:
    """The shipped project.yml and sql/ in `root`, with `model` as its trained model."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "sql", root / "sql")
    raw = yaml.safe_load((REPO / "project.yml").read_text())
    raw["model"] = str(model) if model else "models/not_trained_yet"
    (root / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def site(spark, lr_model, tmp_path_factory):
    """The docs of a copy of the shipped project, built with Spark's analysis (the default)."""
    from runner.compile.compiler import compile_project
    from runner.compile.project import load_project
    from runner.tools import docs

    project = load_project(project_copy(tmp_path_factory.mktemp("docs") / "project", lr_model))
    result = docs.build(project, spark=spark, out_dir=REPO / "target" / "docs")
    manifest = compile_project(project, write=False)
    return project, manifest, result


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")
def test_docs_site_in_headless_chromium(browser, site, lr_model):
    project, manifest, result = site
    assert result.index == REPO / "target" / "docs" / "index.html" and result.with_spark and result.card

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(result.index.as_uri())
    page.wait_for_selector("body[data-dag=drawn]", timeout=30_000)   # docs.js sets it once dagre's layout is drawn
    assert not errors, errors
    assert requests and all(u.startswith("file://") for u in requests), [u for u in requests if not u.startswith("file://")]
    assert page.text_content("#dagre-version") == "3.1.3"

    # every model of the manifest: a node drawn in the DAG, at a position of its own, and a section
    names = [m.name for m in manifest.models]
    boxes = {}
    for name in names:
        node = page.locator(f'svg a.node[data-model="{name}"]')
        assert node.count() == 1, name
        boxes[name] = node.bounding_box()
        assert boxes[name]["width"] > 40, name
        assert page.locator(f'article.model[data-model="{name}"] h3').inner_text().startswith(name)
    assert len({(round(b["x"]), round(b["y"])) for b in boxes.values()}) == len(names)   # laid out, not stacked
    drawn = set(page.eval_on_selector_all("svg .edge", "es => es.map(e => e.dataset.from + ' -> ' + e.dataset.to)"))
    for m in manifest.models:
        for ref in m.refs:
            assert f"model:{ref} -> model:{m.name}" in drawn
            # dagre ranks left to right: a model is drawn right of what it reads
            assert boxes[ref]["x"] < boxes[m.name]["x"], (ref, m.name)
        for kind, name in m.sources:
            assert f"source:{kind}.{name} -> model:{m.name}" in drawn
    # every declared sink drawn (queries the runner adds on its own are drawn too, dashed)
    assert page.locator("svg a.node.sink:not(.internal)").count() == sum(len(m.config.sinks) for m in manifest.models)

    # the lineage of fraud_alerts.fraud_prob: the model's features, read from the Kafka value, not the label
    row = page.locator('tr[data-column="fraud_alerts.fraud_prob"]')
    sources = row.locator("[data-source-column]").evaluate_all("es => es.map(e => e.dataset.sourceColumn)")
    fields = {s.split(": ", 1)[1] for s in sources if ": " in s}
    assert fields == FEATURES, sorted(fields ^ FEATURES)
    assert all(s.startswith("kafka.transactions.value") for s in sources), sources
    assert row.locator("td.type").inner_text().startswith("double")          # Spark's type for it
    assert page.locator('tr[data-column="fraud_alerts.is_alert"] td.type').inner_text().startswith("boolean")

    # each sink's query, the query it runs in and its verdict as `runner plan` says them
    from runner.stream.apply import plan

    shown = page.eval_on_selector_all("tr[data-query]", """rows => rows.map(r => [r.dataset.query,
        r.cells[3].innerText, r.querySelector('.verdict').innerText, r.cells[5].innerText])""")
    planned = [[p.name, p.group, p.verdict.kind, "; ".join(p.verdict.reasons)] for p in plan(project, manifest)]
    assert sorted(shown) == sorted(planned)
    assert {v for _, _, v, _ in shown} == {"NEW"}     # a fresh project: no checkpoint yet

    # the vars with their types and values, and the model card with its threshold table and curve
    assert page.locator('tr[data-var="threshold"]').inner_text().split("\t")[:3] == ["threshold", "double", "0.9"]
    card = json.loads((lr_model / "model_card.json").read_text())
    assert page.text_content('[data-metric="pr_auc"]') == f"{card['metrics']['pr_auc']:.4f}"
    assert page.locator("table.thresholds tbody tr").count() == len(card["threshold_table"])
    assert page.locator("table.thresholds tr.current td").first.inner_text() == "0.90"
    assert page.eval_on_selector("#pr-curve", "img => img.complete && img.naturalWidth") > 300

    shot = result.index.with_name("screenshot.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def test_docs_cli_without_spark(runner_cmd, lr_model, tmp_path):
    """`runner docs --no-spark --var ...`: no JVM, columns from the SQL with unknown types, the var's
    override shown and its threshold row marked; without a model, the default (Spark) run says how
    to go on instead of failing inside Spark."""
    root = project_copy(tmp_path / "project", lr_model)
    r = subprocess.run([*runner_cmd, "--project", str(root), "docs", "--no-spark", "--var", "threshold=0.8"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    index = root / "target" / "docs" / "index.html"
    assert f"wrote {index}" in r.stdout and "column types unknown" in r.stdout
    html = index.read_text()
    assert html.count('<td class="type"><span class="muted">unknown</span>') > 20
    var_row = re.search(r'<tr id="var-threshold".*?</tr>', html, re.S).group(0)
    assert "<strong>0.8</strong>" in var_row and "--var" in var_row
    assert re.search(r'<tr class="current"[^>]*>\s*<td>0\.80</td>', html)
    assert (root / "target" / "docs" / "assets" / "dagre.min.js").is_file()

    # the site replaces its folder whole, so a folder holding anything else is refused
    mine = tmp_path / "my_notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    r = subprocess.run([*runner_cmd, "--project", str(root), "docs", "--no-spark", "--out", str(mine)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "did not write" in r.stderr and "--out" in r.stderr, r.stderr
    assert [f.name for f in mine.iterdir()] == ["todo.txt"]

    bare = project_copy(tmp_path / "untrained", None)
    r = subprocess.run([*runner_cmd, "--project", str(bare), "docs"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "without the trained model" in r.stderr and "runner docs --no-spark" in r.stderr
    assert not (bare / "target" / "docs").exists()
