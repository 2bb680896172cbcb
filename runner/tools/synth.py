"""Creditcard-shaped synthetic data: the embedded default when no creditcard.csv is given.

Same columns and dtypes as the Kaggle `creditcard.csv`: Time (float seconds from the first
row, non-decreasing, about 1.65 rows per second), V1..V28 (zero-mean, PCA-like: spreads
falling from about 2 to 0.3, as in the real data), Amount (positive, right-skewed, cents),
Class (int, 1 = fraud, about 0.17%).

Frauds are shifted along a few V columns (V14, V12, V10, V17, V4, V11, V3, as in the real
data), each fraud with its own intensity, so some frauds look normal: a logistic regression
learns the signal well but not perfectly. Vectorized numpy; deterministic for a seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# The creditcard.csv layout: Time, the PCA components V1..V28 (one per V_STD entry below),
# Amount, Class. A layout of data, not the model's features: `runner train` fits the columns
# the project's source schema declares (runner/compile/features.py) and its card records them.
V_COLS = [f"V{i}" for i in range(1, 29)]
COLUMNS = ["Time", *V_COLS, "Amount", "Class"]

FRAUD_RATE = 0.00172          # 492 / 284,807 in the real data
ROWS_PER_SECOND = 1.65        # 284,807 rows over 172,792 s in the real data

# Standard deviations of V1..V28 in the real data (PCA components: falling variance).
V_STD = np.array([
    1.959, 1.651, 1.516, 1.416, 1.380, 1.332, 1.237, 1.194, 1.099, 1.089,
    1.021, 0.999, 0.995, 0.959, 0.915, 0.876, 0.849, 0.838, 0.814, 0.771,
    0.735, 0.726, 0.624, 0.606, 0.521, 0.482, 0.404, 0.330,
])
assert len(V_STD) == len(V_COLS), "one standard deviation per V column"

# Fraud shift per column, in units of that column's standard deviation.
FRAUD_SHIFT = {"V14": -2.2, "V12": -1.8, "V10": -1.6, "V17": -2.0, "V4": 1.6, "V11": 1.4, "V3": -1.3}


def generate(n: int, seed: int = 42) -> pd.DataFrame:
    """`n` creditcard-shaped rows; the same `seed` gives the same rows."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)

    # Event times: Poisson arrivals at ~1.65/s, whole seconds like the real file.
    gaps = rng.exponential(1.0 / ROWS_PER_SECOND, size=n)
    time = np.floor(np.cumsum(gaps) - (gaps[0] if n else 0.0))

    # V1..V28: normal with a heavier tail for a few rows (a t-like scale mixture).
    z = rng.standard_normal((n, len(V_COLS)))
    scale = np.where(rng.random(n) < 0.05, 2.5, 1.0)[:, None]
    v = z * scale * V_STD

    cls = (rng.random(n) < FRAUD_RATE).astype(np.int64)
    fraud = np.flatnonzero(cls)
    if fraud.size:
        # Intensity 0.6..3.2: the weak end hides among the normals, the strong end stands out.
        intensity = rng.uniform(0.6, 3.2, size=fraud.size)
        shift = np.zeros(len(V_COLS))
        for col, s in FRAUD_SHIFT.items():
            shift[V_COLS.index(col)] = s
        v[fraud] = v[fraud] * 1.3 + np.outer(intensity, shift * V_STD)

    # Amount: log-normal (median ~22, long tail); frauds have a wider spread.
    mu = np.where(cls == 1, 2.5, 3.1)
    sigma = np.where(cls == 1, 1.8, 1.4)
    amount = np.round(np.exp(mu + sigma * rng.standard_normal(n)), 2)
    amount = np.clip(amount, 0.01, 25_000.0)

    data = {"Time": time.astype(np.float64)}
    data.update({c: v[:, i] for i, c in enumerate(V_COLS)})
    data["Amount"] = amount.astype(np.float64)
    data["Class"] = cls
    return pd.DataFrame(data, columns=COLUMNS)


def write_csv(n: int, path: str | Path, seed: int = 42) -> Path:
    """Write `generate(n, seed)` as a creditcard.csv-layout file (header, no index)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(n, seed).to_csv(path, index=False)
    return path
