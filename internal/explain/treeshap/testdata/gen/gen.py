#!/usr/bin/python3
"""Golden SHAP values for the TreeSHAP tests, from libxgboost's pred_contribs.

Run with Debian's python3-xgboost (1.7):  /usr/bin/python3 gen.py [--time]
from internal/explain/treeshap/testdata/gen. It rewrites ../golden/.

For every tree model among the XGBoost runtime's golden cases
(internal/runtime/xgboost/testdata/golden/*/model.json) it copies the model
and writes contribs.json: the case's input rows (NaN as null), the
library's pred_contribs=True output and its margins. It also trains the
benchmark model (100 trees of depth 6 on 20 features) into ../golden/deep.
--time prints libxgboost's pred_contribs time per row on one thread for the
deep model (the number docs/explain.md compares with Go's benchmark).
"""
import gzip
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "golden")
XGB = os.path.join(HERE, "..", "..", "..", "..", "runtime", "xgboost", "testdata", "golden")
CAT_KW = {"feature_types": ["q", "c", "q", "q", "q"], "enable_categorical": True}


def f32list(a):
    vals = np.asarray(a, dtype=np.float32).ravel()
    return "[" + ",".join(
        "null" if np.isnan(v) else np.format_float_scientific(v, unique=True, trim="-") for v in vals) + "]"


def write(d, x, dm, b):
    contribs = b.predict(dm, pred_contribs=True)
    margin = b.predict(dm, output_margin=True)
    head = json.dumps({"rows": int(x.shape[0]), "cols": int(x.shape[1]), "contribs_shape": list(contribs.shape)})
    with open(os.path.join(d, "contribs.json"), "w") as f:
        f.write(head[:-1] + ', "input": ' + f32list(x) + ', "contribs": ' + f32list(contribs) +
                ', "margin": ' + f32list(margin) + "}\n")
    print(os.path.basename(d), contribs.shape)


def from_runtime_cases():
    for name in sorted(os.listdir(XGB)):
        src = os.path.join(XGB, name)
        with open(os.path.join(src, "case.json")) as f:
            case = json.load(f)
        if case["booster"] == "gblinear" or "json" not in case["formats"]:
            continue
        x = np.array([np.nan if v is None else v for v in case["input"]], dtype=np.float32)
        x = x.reshape(case["rows"], case["cols"])
        d = os.path.join(OUT, name)
        os.makedirs(d)
        shutil.copy(os.path.join(src, "model.json"), os.path.join(d, "model.json"))
        b = xgb.Booster(model_file=os.path.join(d, "model.json"))
        kw = CAT_KW if name.startswith("categorical") else {}
        write(d, x, xgb.DMatrix(x, **kw), b)


def deep():
    rng = np.random.default_rng(11)
    x = rng.uniform(-2, 2, size=(4000, 20)).astype(np.float32)
    x[rng.random(x.shape) < 0.02] = np.nan
    z = np.nan_to_num(x)
    y = (z[:, 0] * z[:, 1] + np.sin(3 * z[:, 2]) - z[:, 3] + 0.3 * rng.normal(size=len(z)) > 0).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "tree_method": "hist", "seed": 1, "nthread": 1}
    b = xgb.train(params, xgb.DMatrix(x, label=y), 100)
    d = os.path.join(OUT, "deep")
    os.makedirs(d)
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "model.ubj")
        b.save_model(p)
        with open(p, "rb") as f, gzip.GzipFile(os.path.join(d, "model.ubj.gz"), "wb", 9, mtime=0) as g:
            g.write(f.read())
    t = rng.uniform(-2, 2, size=(64, 20)).astype(np.float32)
    t[rng.random(t.shape) < 0.05] = np.nan
    write(d, t, xgb.DMatrix(t), b)
    return b


def timing(b):
    b.set_param({"nthread": 1})
    rng = np.random.default_rng(5)
    t = rng.uniform(-2, 2, size=(2000, 20)).astype(np.float32)
    dm = xgb.DMatrix(t, nthread=1)
    b.predict(dm, pred_contribs=True)
    start, cpu = time.perf_counter(), time.process_time()
    reps = 5
    for _ in range(reps):
        b.predict(dm, pred_contribs=True)
    per = (time.perf_counter() - start) / reps / len(t)
    per_cpu = (time.process_time() - cpu) / reps / len(t)
    print(f"libxgboost {xgb.__version__} pred_contribs, 1 thread: {per * 1e6:.1f} us/row wall, {per_cpu * 1e6:.1f} us/row cpu")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    from_runtime_cases()
    b = deep()
    if "--time" in sys.argv:
        timing(b)


if __name__ == "__main__":
    main()
