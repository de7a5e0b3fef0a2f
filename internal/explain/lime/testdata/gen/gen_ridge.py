#!/usr/bin/python3
"""Golden weighted ridge fits for lime's local model.

lime fits its explanations with scikit-learn's Ridge(alpha=1,
fit_intercept=True).fit(X, y, sample_weight=w) and reports
.score(X, y, sample_weight=w); its highest_weights selection fits
Ridge(alpha=0.01). This writes ../ridge.json: for a few seeded problems
(LIME-like: scaled normal samples, kernel weights, a non-linear target),
X, y, w, alpha and scikit-learn 1.2's coef_, intercept_ and score.
Run with Debian's python3-sklearn from this directory:
    /usr/bin/python3 gen_ridge.py
"""
import json
import os

import numpy as np
from sklearn.linear_model import Ridge

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []
for seed, (n, p, alpha) in enumerate([(80, 4, 1.0), (120, 6, 0.01), (40, 3, 1.0), (60, 5, 10.0)]):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[0] = rng.normal(size=p)  # the instance
    d = np.sqrt(((X - X[0]) ** 2).sum(axis=1))
    width = 0.75 * np.sqrt(p)
    w = np.sqrt(np.exp(-(d ** 2) / width ** 2))
    y = np.tanh(X @ rng.normal(size=p)) + 0.3 * X[:, 0] * X[:, 1 % p] + 0.05 * rng.normal(size=n)
    r = Ridge(alpha=alpha, fit_intercept=True).fit(X, y, sample_weight=w)
    cases.append({"x": X.tolist(), "y": y.tolist(), "w": w.tolist(), "alpha": alpha,
                  "coef": r.coef_.tolist(), "intercept": float(r.intercept_),
                  "score": float(r.score(X, y, sample_weight=w))})
with open(os.path.join(HERE, "..", "ridge.json"), "w") as f:
    json.dump({"sklearn": __import__("sklearn").__version__, "cases": cases}, f)
print(len(cases), "cases")
