"""A Spark GBTClassificationModel as one SQL expression over the raw features.

Spark's trees split continuous features as `x <= threshold` -> left child (so NaN goes
right, as in SQL, where NaN is larger than any number). The margin is
sum(tree_weight * leaf_prediction); GBTClassificationModel with logistic loss turns it
into probability(1) = 1 / (1 + exp(-2 * margin)) (LogLoss.computeProbability).

The trees are read from the saved PipelineModel (`<stage>/data` and `<stage>/treesMetadata`
parquet), Spark's own persisted form, so nothing has to be loaded into the JVM.

Why the NULL guard is a higher-order function (issue 14; numbers in bench/results_udf.md).
A GBT the size `runner train --model gbt` makes (50 trees of depth 5, ~3,000 nodes) is one
expression of ~1,500 nested CASEs. Whole-stage codegen puts a projection's expressions into
one Java method and never splits them (CodegenContext.splitExpressionsWithCurrentInputs and
Expression.reduceCodeSize both skip whole-stage code), so that method grows past the JVM's
64 KB limit: Janino fails after seconds of work, on every execution (a failed compile is not
cached, so every micro-batch pays again), and Spark then reruns the projection without
whole-stage codegen, where every sub-expression longer than
spark.sql.codegen.methodSplitThreshold gets its own small method. The guard
`exists(array(features), x -> x IS NULL)` is evaluated without code generation
(CodegenFallback), which keeps the projection out of whole-stage codegen from the start
(CollapseCodegenStages.supportCodegen), in any session, with no session setting. Measured
side by side (1M rows, 2 cores): 593k rows/s against 256k for the old form (2.3x; the fixed
cost per execution halves, no failed compile), not the 10x over the old form the issue hoped.
The trees are written one line each because Spark parses a SQL function's body again every
time a query calls it.
"""
from __future__ import annotations

import json
from pathlib import Path

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


def read_trees(pipeline_dir: str | Path) -> tuple[list[dict[int, dict]], list[float], list[str]]:
    """Trees (node id -> node), their weights, and the features their splits index (the
    pipeline's VectorAssembler inputs, in order), from the saved pipeline."""
    import pyarrow.parquet as pq

    pipeline_dir = Path(pipeline_dir)
    inputs = _assembler_inputs(pipeline_dir)
    stage = _stage_dir(pipeline_dir)
    meta = pq.read_table(stage / "treesMetadata").to_pylist()
    weights = {int(r["_1"]): float(r["_3"]) for r in meta}
    trees: dict[int, dict[int, dict]] = {t: {} for t in weights}
    for r in pq.read_table(stage / "data").to_pylist():
        node = r["nodeData"]
        trees[int(r["treeID"])][int(node["id"])] = node
    order = sorted(weights)
    return [trees[t] for t in order], [weights[t] for t in order], inputs


def tree_sql(nodes: dict[int, dict], features: list[str], node_id: int = 0) -> str:
    """One tree as nested CASE on one line: `x <= threshold` goes left, as in Spark."""
    node = nodes[node_id]
    if node["leftChild"] < 0:  # a leaf (Spark writes -1 for both children)
        return lit(node["prediction"])
    split = node["split"]
    if split["numCategories"] != -1:
        raise ValueError("categorical splits are not supported: the features are continuous")
    feature = col(features[split["featureIndex"]])
    threshold = lit(split["leftCategoriesOrThreshold"][0])
    return (f"CASE WHEN {feature} <= {threshold} THEN {tree_sql(nodes, features, node['leftChild'])} "
            f"ELSE {tree_sql(nodes, features, node['rightChild'])} END")


def gbt_expression(pipeline_dir: str | Path) -> tuple[str, dict]:
    """The SQL expression and a summary (trees, nodes, features) of the model saved in pipeline_dir."""
    trees, weights, inputs = read_trees(pipeline_dir)
    if not trees:
        raise ValueError("the GBT model has no trees")
    margin = "\n  + ".join(f"{lit(w)} * ({tree_sql(nodes, inputs)})" for nodes, w in zip(trees, weights))
    # A NULL feature must give NULL, not silently take the ELSE branch of a split. Written as a
    # higher-order function on purpose: see the module docstring (it keeps the trees out of
    # whole-stage codegen, whose single method they would overflow).
    features = ", ".join(col(f) for f in inputs)
    body = (f"CASE WHEN exists(array({features}), x -> x IS NULL) THEN CAST(NULL AS DOUBLE) ELSE\n"
            f"1.0D / (1.0D + exp(-2.0D * (\n  {margin})))\nEND")
    return body, {"trees": len(trees), "nodes": sum(len(t) for t in trees), "features": inputs}
