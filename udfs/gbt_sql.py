"""A Spark GBTClassificationModel as nested CASE expressions over the raw features.

Spark's trees split continuous features as `x <= threshold` -> left child (so NaN goes
right, as in SQL, where NaN is larger than any number). The margin is
sum(tree_weight * leaf_prediction); GBTClassificationModel with logistic loss turns it
into probability(1) = 1 / (1 + exp(-2 * margin)) (LogLoss.computeProbability).

The trees are read from the saved PipelineModel (`<stage>/data` and `<stage>/treesMetadata`
parquet), Spark's own persisted form, so nothing has to be loaded into the JVM.
"""
from __future__ import annotations

import json
from pathlib import Path

from udfs.card import FEATURES
from udfs.sqlgen import col, lit


def _stage_dir(pipeline_dir: Path) -> Path:
    stages = sorted((pipeline_dir / "stages").glob("*_GBTClassifier_*"))
    if len(stages) != 1:
        raise ValueError(f"expected one GBTClassifier stage under {pipeline_dir / 'stages'}, found {len(stages)}")
    return stages[0]


def _assembler_inputs(pipeline_dir: Path) -> list[str]:
    stage = sorted((pipeline_dir / "stages").glob("*_VectorAssembler_*"))
    meta_file = next(p for p in sorted((stage[0] / "metadata").glob("part-*")))
    meta = json.loads(meta_file.read_text().splitlines()[0])
    return list(meta["paramMap"]["inputCols"])


def read_trees(pipeline_dir: str | Path) -> tuple[list[dict[int, dict]], list[float]]:
    """Trees (node id -> node) and their weights, from the saved pipeline."""
    import pyarrow.parquet as pq

    pipeline_dir = Path(pipeline_dir)
    inputs = _assembler_inputs(pipeline_dir)
    if inputs != FEATURES:
        raise ValueError(f"the pipeline assembles {inputs}, not {FEATURES}")
    stage = _stage_dir(pipeline_dir)
    meta = pq.read_table(stage / "treesMetadata").to_pylist()
    weights = {int(r["_1"]): float(r["_3"]) for r in meta}
    trees: dict[int, dict[int, dict]] = {t: {} for t in weights}
    for r in pq.read_table(stage / "data").to_pylist():
        node = r["nodeData"]
        trees[int(r["treeID"])][int(node["id"])] = node
    order = sorted(weights)
    return [trees[t] for t in order], [weights[t] for t in order]


def _tree_sql(nodes: dict[int, dict], node_id: int, depth: int) -> str:
    node = nodes[node_id]
    if node["leftChild"] < 0:  # a leaf (Spark writes -1 for both children)
        return lit(node["prediction"])
    split = node["split"]
    if split["numCategories"] != -1:
        raise ValueError("categorical splits are not supported: the features are continuous")
    feature = col(FEATURES[split["featureIndex"]])
    threshold = lit(split["leftCategoriesOrThreshold"][0])
    pad = "  " * (depth + 1)
    return (f"CASE WHEN {feature} <= {threshold}\n{pad}THEN {_tree_sql(nodes, node['leftChild'], depth + 1)}\n"
            f"{pad}ELSE {_tree_sql(nodes, node['rightChild'], depth + 1)} END")


def gbt_expression(pipeline_dir: str | Path) -> tuple[str, dict]:
    """The SQL expression and a summary (trees, nodes) of the model saved in pipeline_dir."""
    trees, weights = read_trees(pipeline_dir)
    if not trees:
        raise ValueError("the GBT model has no trees")
    parts = [f"{lit(w)} * ({_tree_sql(nodes, 0, 1)})" for nodes, w in zip(trees, weights)]
    margin = "\n  + ".join(parts)
    # A NULL feature must give NULL, not silently take the ELSE branch of a split.
    any_null = " OR ".join(f"{col(f)} IS NULL" for f in FEATURES)
    body = (f"CASE WHEN {any_null} THEN CAST(NULL AS DOUBLE) ELSE\n"
            f"1.0D / (1.0D + exp(-2.0D * (\n  {margin})))\nEND")
    return body, {"trees": len(trees), "nodes": sum(len(t) for t in trees)}
