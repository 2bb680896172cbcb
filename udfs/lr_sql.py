"""StandardScaler + LogisticRegression as one SQL expression.

Mirrors Spark ML exactly: StandardScalerModel computes (x - mean) * (1 / std), with the
factor 0.0 where std == 0 (so that feature drops out); LogisticRegressionModel's
probability of class 1 is 1 / (1 + exp(-(intercept + coefficients . scaled))).
"""
from __future__ import annotations

from udfs.sqlgen import col, lit


def lr_expression(params: dict, features: list[str]) -> str:
    """The model over `features` (the card's, in its order: the parameters' order)."""
    mean, std = params["scaler_mean"], params["scaler_std"]
    coef, intercept = params["coefficients"], params["intercept"]
    if not (len(mean) == len(std) == len(coef) == len(features)):
        raise ValueError(f"lr parameters have lengths {len(mean)}, {len(std)}, {len(coef)}; "
                         f"the card lists {len(features)} features")
    terms = [lit(intercept)]
    for name, m, s, w in zip(features, mean, std, coef):
        if float(s) == 0.0:
            continue  # Spark's scaler maps a constant feature to 0.0: its term is 0
        factor = 1.0 / float(s)
        terms.append(f"{lit(w)} * (({col(name)} - {lit(m)}) * {lit(factor)})")
    margin = "\n    + ".join(terms)
    return f"1.0D / (1.0D + exp(-(\n    {margin})))"
