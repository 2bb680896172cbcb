"""Python that SQL can call by name: the model-backed fraud_prob.

`register(spark, model_dir)` reads the model card that `runner train` wrote and creates
the session's temporary SQL function

    fraud_prob(<the card's features, in its order> DOUBLE) RETURNS DOUBLE

(for the shipped model V1..V28 and Amount: `runner train` fits the DOUBLE fields of the source
schema in project.yml but Time, and the card records them)

compiled to a plain Spark SQL expression (Spark inlines SQL functions), so scoring runs
in the JVM with no Python worker:

- lr  (StandardScaler + LogisticRegression): 1 / (1 + exp(-(b + sum w_i (x_i - mu_i) / sd_i)))
  from the card's scaler and coefficients;
- gbt (GBTClassifier): the trees as nested CASE over the raw features, read from the
  saved pipeline, through Spark's logistic link 1 / (1 + exp(-2 * margin)); written so
  that its projection stays out of whole-stage codegen, whose one method a full-size GBT
  overflows (udfs/gbt_sql.py says how and why).
"""
from __future__ import annotations

from pathlib import Path

from udfs.card import PIPELINE_DIR, check_features, read_card
from udfs.errors import UserError
from udfs.sqlgen import FUNCTION, create_function

__all__ = ["FUNCTION", "register", "function_sql"]


def function_sql(model_dir: str | Path, card: dict | None = None) -> str:
    """The CREATE TEMPORARY FUNCTION statement for the model in model_dir."""
    model_dir = Path(model_dir)
    card = card or read_card(model_dir)
    features = list(card["features"])
    try:
        if card["kind"] == "lr":
            from udfs.lr_sql import lr_expression
            body = lr_expression(card["lr"], features)
        else:
            from udfs.gbt_sql import gbt_expression
            body, summary = gbt_expression(model_dir / PIPELINE_DIR)
            if summary["features"] != features:
                raise ValueError(f"its pipeline assembles {summary['features']}, its card lists {features}")
    except (ValueError, KeyError, IndexError, OSError) as e:
        raise UserError(f"cannot compile model {model_dir} to SQL: {e}",
                          hint="retrain it with `runner train`") from None
    return create_function(body, features)


def register(spark, model_dir: str | Path, source_schema: dict[str, str] | None = None) -> dict:
    """Create the temporary function fraud_prob(<the card's features>) for the model in model_dir.

    Refuses (UserError) a missing model folder, a card that is not ours, and a model
    whose features the source_schema (field -> Spark SQL type) lacks. Returns the card.
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    check_features(card, source_schema, model_dir)
    spark.sql(function_sql(model_dir, card))
    return card
