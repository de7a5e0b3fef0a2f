#!/usr/bin/python3
"""Golden SHAP interaction values from libxgboost's pred_interactions.

Run with Debian's python3-xgboost (1.7) from this directory after gen.py:
    /usr/bin/python3 gen_interactions.py
For a few of ../golden/'s models it writes interactions.json beside
contribs.json: the first 8 input rows of contribs.json and
Booster.predict(pred_interactions=True) on them, float32 values written
in their shortest form (null: NaN).
"""
import json
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "golden")
CASES = ["reg_squarederror", "binary_logistic", "multi_softprob", "categorical", "dart_logistic"]
CAT_KW = {"feature_types": ["q", "c", "q", "q", "q"], "enable_categorical": True}


def f32list(a):
    vals = np.asarray(a, dtype=np.float32).ravel()
    return "[" + ",".join(
        "null" if np.isnan(v) else np.format_float_scientific(v, unique=True, trim="-") for v in vals) + "]"


for name in CASES:
    d = os.path.join(GOLDEN, name)
    with open(os.path.join(d, "contribs.json")) as f:
        g = json.load(f)
    rows = min(8, g["rows"])
    x = np.array([np.nan if v is None else v for v in g["input"]], dtype=np.float32).reshape(g["rows"], g["cols"])[:rows]
    b = xgb.Booster(model_file=os.path.join(d, "model.json"))
    kw = CAT_KW if name.startswith("categorical") else {}
    inter = b.predict(xgb.DMatrix(x, **kw), pred_interactions=True)
    with open(os.path.join(d, "interactions.json"), "w") as f:
        f.write('{"rows": %d, "cols": %d, "shape": %s, "input": %s, "interactions": %s}\n' % (
            rows, g["cols"], json.dumps(list(inter.shape)), f32list(x), f32list(inter)))
    print(name, inter.shape)
