"""Shared pieces of the generated SQL: exact double literals and the function header."""
from __future__ import annotations

import math

FUNCTION = "fraud_prob"


def lit(x: float) -> str:
    """An exact Spark SQL DOUBLE literal: repr() round-trips, the D suffix keeps it DOUBLE
    (a bare 0.1 would be a DECIMAL in Spark SQL)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite model parameter {x!r}")
    text = f"{repr(x)}D"
    return f"({text})" if x < 0 or text.startswith("-") else text


def col(name: str) -> str:
    return f"`{name}`"


def create_function(body: str, features: list[str], name: str = FUNCTION) -> str:
    """fraud_prob(<the model card's features, in its order> DOUBLE) RETURNS DOUBLE RETURN body."""
    params = ", ".join(f"{col(f)} DOUBLE" for f in features)
    return f"CREATE OR REPLACE TEMPORARY FUNCTION {name}({params}) RETURNS DOUBLE RETURN {body}"
