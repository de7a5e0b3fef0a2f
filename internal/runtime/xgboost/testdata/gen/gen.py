#!/usr/bin/python3
"""Generate golden XGBoost models and Booster.predict outputs for the Go tests.

Run with Debian's python3-xgboost (1.7):  /usr/bin/python3 gen.py
from internal/runtime/xgboost/testdata/gen. It rewrites ../golden/.

Each case trains a small model (few trees, depth <= 4) on a few dozen rows with
NaNs, saves it as model.json, model.ubj and model.bst (the legacy binary format
1.7 writes for any other extension), and writes case.json with the input rows
(NaN as null) and the outputs of Booster.predict (transformed and
output_margin=True) computed by the library itself from each saved file.
"""
import json
import os
import shutil

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "golden")
ROWS, COLS = 48, 5
# XGBoost 1.7 refuses to save categorical splits in the legacy binary format.
CAT_FORMATS = ("json", "ubj")


def data(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, COLS)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    return rng, x


def test_input(x, rng, cat_col=None):
    # Training rows (so split values are hit exactly), fresh rows, all-NaN rows.
    extra = rng.normal(size=(12, COLS)).astype(np.float32)
    extra[rng.random(extra.shape) < 0.2] = np.nan
    nan_row = np.full((1, COLS), np.nan, dtype=np.float32)
    t = np.vstack([x[:20], extra, nan_row]).astype(np.float32)
    if cat_col is not None:
        # Seen and unseen categories, a negative one and a huge one.
        t[20:33, cat_col] = np.array([0, 1, 2, 3, 4, 5, 7, 9, 31, 33, -1, 2.0**25, np.nan], dtype=np.float32)
    return t


def f32list(a):
    """A JSON array of float32 values in their shortest float32 form (the Go
    test parses each with strconv.ParseFloat(s, 32)); NaN as null."""
    vals = np.asarray(a, dtype=np.float32).ravel()
    return "[" + ",".join(
        "null" if np.isnan(v) else np.format_float_scientific(v, unique=True, trim="-") for v in vals) + "]"


def case(name, params, rounds, label, x, t, dtrain_kw=None, dtest_kw=None, qid=None, formats=("json", "ubj", "bst"), info=None):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    dtrain = xgb.DMatrix(x, label=label, qid=qid, **(dtrain_kw or {}))
    for k, v in (info or {}).items():
        dtrain.set_float_info(k, v)
    params = dict(params, seed=7, nthread=1)
    b = xgb.train(params, dtrain, rounds)
    dtest = xgb.DMatrix(t, **(dtest_kw or {}))
    want = b.predict(dtest)
    want_margin = b.predict(dtest, output_margin=True)
    written = []
    for ext in formats:
        p = os.path.join(d, "model." + ext)
        b.save_model(p)
        # Predict from the saved file, and keep the format only if the library
        # itself reproduces the in-memory predictions from it.
        r = xgb.Booster(model_file=p)
        got = r.predict(dtest)
        if not np.array_equal(got, want, equal_nan=True):
            print(f"{name}: {ext} does not round-trip in libxgboost, left out")
            os.remove(p)
            continue
        written.append(ext)
    head = json.dumps({
        "objective": params.get("objective", "reg:squarederror"),
        "booster": params.get("booster", "gbtree"),
        "rows": int(t.shape[0]), "cols": int(t.shape[1]),
        "predict_shape": list(want.shape),
        "formats": written,
    })
    with open(os.path.join(d, "case.json"), "w") as f:
        f.write(head[:-1] + ', "input": ' + f32list(t) + ', "predict": ' + f32list(want) +
                ', "margin": ' + f32list(want_margin) + "}\n")
    print(name, "formats", written, "predict", want.shape)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    tree = {"max_depth": 3, "eta": 0.3, "tree_method": "hist"}

    rng, x = data(1)
    ybin = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) > 0).astype(np.float32)
    t = test_input(x, rng)
    case("binary_logistic", dict(tree, objective="binary:logistic", base_score=0.3), 4, ybin, x, t)
    case("binary_logitraw", dict(tree, objective="binary:logitraw"), 4, ybin, x, t)
    case("binary_hinge", dict(tree, objective="binary:hinge"), 3, ybin, x, t)
    case("dart_logistic", dict(tree, booster="dart", objective="binary:logistic", rate_drop=0.5, skip_drop=0.0), 5, ybin, x, t)

    rng, x = data(2)
    yreg = (2 * np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 2]) + 0.1 * rng.normal(size=ROWS)).astype(np.float32)
    t = test_input(x, rng)
    case("reg_squarederror", dict(tree, objective="reg:squarederror", base_score=0.7), 4, yreg, x, t)
    case("reg_pseudohubererror", dict(tree, objective="reg:pseudohubererror", base_score=0.2), 4, yreg, x, t)
    case("gblinear_squarederror", {"booster": "gblinear", "objective": "reg:squarederror", "eta": 0.5}, 4, yreg, x, t)
    yprob = (1 / (1 + np.exp(-yreg))).astype(np.float32)
    case("reg_logistic", dict(tree, objective="reg:logistic", base_score=0.4), 4, yprob, x, t)
    ycount = rng.poisson(np.exp(0.5 * np.nan_to_num(x[:, 1]))).astype(np.float32)
    case("count_poisson", dict(tree, objective="count:poisson", base_score=1.5), 4, ycount, x, t)
    ypos = np.exp(0.3 * yreg).astype(np.float32)
    case("reg_gamma", dict(tree, objective="reg:gamma"), 3, ypos, x, t)
    case("reg_tweedie", dict(tree, objective="reg:tweedie"), 3, ycount, x, t)
    ymulti = np.stack([yreg, -0.5 * yreg + np.nan_to_num(x[:, 3])], axis=1).astype(np.float32)
    case("multi_target", dict(tree, objective="reg:squarederror"), 3, ymulti, x, t)
    case("reg_squaredlogerror", dict(tree, objective="reg:squaredlogerror"), 3, ypos, x, t)
    case("reg_absoluteerror", dict(tree, objective="reg:absoluteerror"), 3, yreg, x, t)
    ysurv = np.where(rng.random(ROWS) < 0.8, ypos, -ypos).astype(np.float32)  # negative: censored
    case("survival_cox", dict(tree, objective="survival:cox"), 3, ysurv, x, t)
    case("survival_aft", dict(tree, objective="survival:aft", aft_loss_distribution="normal"), 3, None, x, t,
         info={"label_lower_bound": ypos, "label_upper_bound": np.where(ysurv > 0, ypos, np.inf).astype(np.float32)})

    rng, x = data(3)
    ycls = (np.digitize(np.nan_to_num(x[:, 0]), [-0.5, 0.5])).astype(np.float32)
    t = test_input(x, rng)
    case("multi_softprob", dict(tree, objective="multi:softprob", num_class=3), 3, ycls, x, t)
    case("multi_softmax", dict(tree, objective="multi:softmax", num_class=3), 3, ycls, x, t)
    case("multi_softprob_forest", dict(tree, objective="multi:softprob", num_class=3, num_parallel_tree=2, subsample=0.8, colsample_bynode=0.8), 2, ycls, x, t)
    case("gblinear_softprob", {"booster": "gblinear", "objective": "multi:softprob", "num_class": 3}, 3, ycls, x, t)

    rng, x = data(4)
    qid = np.repeat(np.arange(8), ROWS // 8)
    yrank = np.clip(np.round(np.nan_to_num(x[:, 0]) + 1), 0, 3).astype(np.float32)
    t = test_input(x, rng)
    case("rank_pairwise", dict(tree, objective="rank:pairwise"), 4, yrank, x, t, qid=qid)

    rng, x = data(5)
    x[:, 1] = rng.integers(0, 10, ROWS).astype(np.float32)
    x[rng.random(ROWS) < 0.1, 1] = np.nan
    effect = np.array([2, -1, 0.5, 3, -2, 1, 0, -3, 2.5, -0.5], dtype=np.float32)
    c = np.nan_to_num(x[:, 1], nan=0).astype(int)
    ycat = (effect[c] + 0.5 * np.nan_to_num(x[:, 0])).astype(np.float32)
    t = test_input(x, rng, cat_col=1)
    kw = {"feature_types": ["q", "c", "q", "q", "q"], "enable_categorical": True}
    case("categorical", dict(tree, objective="reg:squarederror", max_cat_to_onehot=1, max_depth=4), 4, ycat, x, t, dtrain_kw=kw, dtest_kw=kw, formats=CAT_FORMATS)
    case("categorical_onehot", dict(tree, objective="reg:squarederror", max_cat_to_onehot=16, max_depth=4), 4, ycat, x, t, dtrain_kw=kw, dtest_kw=kw, formats=CAT_FORMATS)


if __name__ == "__main__":
    main()
