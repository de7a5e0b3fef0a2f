#!/usr/bin/python3
"""Generate the load-test model and request payloads for `make bench`.

Run with Debian's interpreter (python3-xgboost 1.7.4, python3-numpy):

    /usr/bin/python3 bench/gen_model.py

It writes bench/model/model.json (binary:logistic, 100 trees of depth 6 over
20 features, trained on synthetic data with a fixed seed) and, under
bench/payloads/, one request per protocol for batch 1 and batch 64:

    v1-b{1,64}.json    V1 REST  {"instances": [[...], ...]}
    v2-b{1,64}.json    V2 REST  {"inputs": [{"name": "input-0", "datatype": "FP32", ...}]}
    grpc-b{1,64}.json  V2 gRPC  ModelInferRequest in protobuf JSON, as ghz -D reads it
    expected-b{1,64}.json  the probabilities XGBoost predicts for those rows

Feature values are rounded to 6 decimals so every protocol carries exactly
the same numbers (and float32 parses them to the same value).
"""
import json
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = 20
TREES = 100
DEPTH = 6
MODEL_NAME = "bench"
SEED = 20261125


def main():
    rng = np.random.default_rng(SEED)
    n = 20000
    x = rng.normal(size=(n, FEATURES)).round(6).astype(np.float32)
    w = rng.normal(size=FEATURES)
    logit = x @ w + 0.5 * np.sin(3 * x[:, 0]) * x[:, 1] + rng.normal(scale=0.5, size=n)
    y = (logit > 0).astype(np.float32)

    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": DEPTH, "eta": 0.1,
         "tree_method": "exact", "seed": 1, "nthread": 1},
        xgb.DMatrix(x, label=y), num_boost_round=TREES)
    os.makedirs(os.path.join(HERE, "model"), exist_ok=True)
    booster.save_model(os.path.join(HERE, "model", "model.json"))

    out = os.path.join(HERE, "payloads")
    os.makedirs(out, exist_ok=True)
    for batch in (1, 64):
        rows = rng.normal(size=(batch, FEATURES)).round(6)
        vals = [[float(f"{v:.6f}") for v in r] for r in rows]
        flat = [v for r in vals for v in r]
        write(out, f"v1-b{batch}.json", {"instances": vals})
        write(out, f"v2-b{batch}.json", {"inputs": [{
            "name": "input-0", "datatype": "FP32", "shape": [batch, FEATURES], "data": flat}]})
        write(out, f"grpc-b{batch}.json", {
            "model_name": MODEL_NAME,
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [batch, FEATURES],
                        "contents": {"fp32_contents": flat}}]})
        pred = booster.predict(xgb.DMatrix(np.array(vals, dtype=np.float32)))
        write(out, f"expected-b{batch}.json", {"predictions": [float(p) for p in pred]})


def write(d, name, obj):
    with open(os.path.join(d, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
