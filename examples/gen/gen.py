#!/usr/bin/python3
"""Writes the example models under examples/models/ (run with Debian's python3:
apt-get install python3-xgboost python3-sklearn). The outputs are committed,
so nothing here runs in CI.

    /usr/bin/python3 examples/gen/gen.py
"""
import json
import os

import joblib
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "models")

X, y = load_iris(return_X_y=True)

# XGBoost: iris, multi:softprob, saved as JSON.
d = os.path.join(OUT, "xgboost-iris")
os.makedirs(d, exist_ok=True)
booster = xgb.train(
    {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3, "seed": 1},
    xgb.DMatrix(X, label=y),
    num_boost_round=20,
)
booster.save_model(os.path.join(d, "model.json"))

# scikit-learn: iris, StandardScaler + LogisticRegression, saved with joblib.
d = os.path.join(OUT, "sklearn-iris")
os.makedirs(d, exist_ok=True)
pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
joblib.dump(pipe, os.path.join(d, "model.joblib"))

# The requests the demo sends and what the reference libraries answer.
rows = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
expected = {
    "xgboost-iris": booster.predict(xgb.DMatrix(np.array(rows))).tolist(),
    "sklearn-iris": pipe.predict(np.array(rows)).tolist(),
}
with open(os.path.join(HERE, "..", "requests", "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
