#!/usr/bin/python3
"""Golden SHAP values for LightGBM and scikit-learn tree models.

Run from internal/explain/treeshap/testdata/gen with Debian's python3 and
python3-sklearn (1.2):  /usr/bin/python3 gen_lgb_sklearn.py
It rewrites ../lightgbm/ and ../sklearn/.

Neither reference is the Go code's: the values are exact path-dependent
Shapley values computed here by enumerating every feature subset, with a
model reader written in this script.

LightGBM (no LightGBM library is installed here, so predict_contrib itself
cannot be run): for every LightGBM runtime golden case that TreeSHAP
explains, this script parses model.txt itself, checks that its own tree
walk reproduces the CLI's raw scores (expected_raw.csv or expected.csv)
exactly, and writes contrib.csv in predict_contrib's layout: per row, for
each class, one value per feature then the bias. predict_contrib computes
the same quantity: Lundberg's path-dependent TreeSHAP with the trees'
internal_count/leaf_count as covers.

scikit-learn (which has no contribution API): trains small trees and
forests, saves model.joblib and writes shap.json: rows, exact Shapley
values over the tree_'s weighted_n_node_samples covers (shap's
TreeExplainer convention; classifiers in predict_proba space), the
expected values, and the model's own predict / predict_proba, which the
script checks the values add up to within 1e-9.
"""
import itertools
import json
import math
import os
import shutil

import joblib
import numpy as np
import sklearn
from sklearn import ensemble, tree
from sklearn.datasets import make_classification, make_regression

HERE = os.path.dirname(os.path.abspath(__file__))
TD = os.path.dirname(HERE)
LGB = os.path.join(TD, "..", "..", "..", "runtime", "lightgbm", "testdata")
LGB_CASES = ["binary_nan", "multiclass", "lambdarank", "regression_categorical", "regression_use_missing_false"]


# ---- exact path-dependent Shapley values by enumeration ----------------

class Node:
    """One node: leaf (value) or split (feature, go(x) -> True for left)."""

    def __init__(self, cover, value=None, feature=-1, go=None, left=None, right=None):
        self.cover, self.value, self.feature, self.go = cover, value, feature, go
        self.left, self.right = left, right


def cond_exp(node, x, s):
    """E[tree(x) | x_S] with unknown features averaged by cover."""
    if node.value is not None:
        return node.value
    if node.feature in s:
        return cond_exp(node.left if node.go(x[node.feature]) else node.right, x, s)
    return (cond_exp(node.left, x, s) * node.left.cover + cond_exp(node.right, x, s) * node.right.cover) / node.cover


def shapley(trees, groups, nfeat, x):
    """trees: [(root, group, weight)]. Returns phi[g][0..nfeat] (bias last)."""
    subsets = {}
    for k in range(nfeat + 1):
        for s in itertools.combinations(range(nfeat), k):
            subsets[frozenset(s)] = [0.0] * groups
    for s, v in subsets.items():
        for root, g, w in trees:
            v[g] += w * cond_exp(root, x, s)
    fact = math.factorial
    phi = [[0.0] * (nfeat + 1) for _ in range(groups)]
    for i in range(nfeat):
        for s, v in subsets.items():
            if i in s:
                continue
            wgt = fact(len(s)) * fact(nfeat - len(s) - 1) / fact(nfeat)
            vi = subsets[s | {i}]
            for g in range(groups):
                phi[g][i] += wgt * (vi[g] - v[g])
    for g in range(groups):
        phi[g][nfeat] = subsets[frozenset()][g]
    return phi


def walk(node, x):
    while node.value is None:
        node = node.left if node.go(x[node.feature]) else node.right
    return node.value


# ---- LightGBM model.txt, read independently ----------------------------

def lgb_trees(path):
    blocks, cur, header = [], None, {}
    for line in open(path):
        line = line.strip()
        if line == "end of trees":
            break
        if line.startswith("Tree="):
            cur = {}
            blocks.append(cur)
            continue
        if "=" in line:
            k, v = line.split("=", 1)
            (cur if cur is not None else header)[k] = v
    k = int(header.get("num_tree_per_iteration", "1"))
    nfeat = int(header["max_feature_idx"]) + 1
    out = []
    for ti, b in enumerate(blocks):
        nl = int(b["num_leaves"])
        leaf_val = [float(v) for v in b["leaf_value"].split()]
        if nl == 1:
            out.append((Node(1.0, value=leaf_val[0]), ti % k, 1.0))
            continue
        leaf_cnt = [float(v) for v in b["leaf_count"].split()]
        feat = [int(v) for v in b["split_feature"].split()]
        thr = [float(v) for v in b["threshold"].split()]
        dt = [int(v) for v in b["decision_type"].split()]
        lc = [int(v) for v in b["left_child"].split()]
        rc = [int(v) for v in b["right_child"].split()]
        cnt = [float(v) for v in b["internal_count"].split()]
        bounds = [int(v) for v in b.get("cat_boundaries", "").split()]
        bits = [int(v) for v in b.get("cat_threshold", "").split()]
        leaves = [Node(leaf_cnt[i], value=leaf_val[i]) for i in range(nl)]
        inner = [None] * len(feat)

        def make_go(i):
            t, d = thr[i], dt[i]
            default_left = bool(d & 2)
            missing = (d >> 2) & 3
            if d & 1:
                c = int(t)
                words = bits[bounds[c]:bounds[c + 1]]

                def go(v):
                    if math.isnan(v) or int(v) < 0:
                        return False
                    iv = int(v)
                    return iv // 32 < len(words) and (words[iv // 32] >> (iv % 32)) & 1 == 1
                return go

            def go(v):
                if missing != 2 and math.isnan(v):
                    v = 0.0
                if (missing == 1 and abs(v) <= 1e-35) or (missing == 2 and math.isnan(v)):
                    return default_left
                return v <= t
            return go

        def node(c):
            if c < 0:
                return leaves[~c]
            if inner[c] is None:
                inner[c] = Node(cnt[c], feature=feat[c], go=make_go(c), left=node(lc[c]), right=node(rc[c]))
            return inner[c]
        out.append((node(0), ti % k, 1.0))
    return out, k, nfeat


def read_csv(path):
    lines = open(path).read().split("\n")
    return [[float(v) for v in l.split(",")] for l in lines[1:] if l]


def lightgbm():
    for case in LGB_CASES:
        src = os.path.join(LGB, case)
        dst = os.path.join(TD, "lightgbm", case)
        os.makedirs(dst, exist_ok=True)
        for f in ("model.txt", "input.csv"):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
        trees, k, nfeat = lgb_trees(os.path.join(src, "model.txt"))
        rows = read_csv(os.path.join(src, "input.csv"))
        raw_path = os.path.join(src, "expected_raw.csv")
        raw = read_csv(raw_path if os.path.exists(raw_path) else os.path.join(src, "expected.csv"))
        out = []
        worst = 0.0
        for x, want in zip(rows, raw):
            margin = [0.0] * k
            for root, g, w in trees:
                margin[g] += w * walk(root, x)
            assert all(abs(a - b) <= 1e-12 * max(1, abs(b)) for a, b in zip(margin, want)), (case, margin, want)
            phi = shapley(trees, k, nfeat, x)
            for g in range(k):
                worst = max(worst, abs(sum(phi[g]) - margin[g]))
            out.append([v for g in range(k) for v in phi[g]])
        with open(os.path.join(dst, "contrib.csv"), "w") as f:
            for r in out:
                f.write(",".join(repr(v) for v in r) + "\n")
        print(case, len(rows), "rows", len(trees), "trees; worst |sum - margin|", worst)


# ---- scikit-learn -------------------------------------------------------

def sk_trees(est, groups):
    ests = est.estimators_ if hasattr(est, "estimators_") else [est]
    w = 1.0 / len(ests)
    out = []
    for e in ests:
        t = e.tree_
        val = t.value[:, 0, :]
        if groups > 1:
            val = val / val.sum(axis=1, keepdims=True)
        for g in range(groups):
            nodes = [None] * t.node_count

            def node(i, g=g, t=t, val=val):
                if nodes[i] is None:
                    cov = float(t.weighted_n_node_samples[i])
                    if t.children_left[i] < 0:
                        nodes[i] = Node(cov, value=float(val[i, g]))
                    else:
                        thr = float(t.threshold[i])
                        nodes[i] = Node(cov, feature=int(t.feature[i]),
                                        go=lambda v, thr=thr: float(np.float32(v)) <= thr,
                                        left=node(t.children_left[i]), right=node(t.children_right[i]))
                return nodes[i]
            out.append((node(0), g, w))
    return out


def sklearn_models():
    nf = 5
    Xr, yr = make_regression(n_samples=200, n_features=nf, noise=3.0, random_state=3)
    Xb, yb = make_classification(n_samples=200, n_features=nf, n_informative=3, random_state=4)
    Xm, ym = make_classification(n_samples=240, n_features=nf, n_informative=3, n_classes=3,
                                 n_clusters_per_class=1, random_state=5)
    cases = {
        "dtr": (tree.DecisionTreeRegressor(max_depth=5, random_state=0), Xr, yr),
        "rfr": (ensemble.RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0), Xr, yr),
        "etr": (ensemble.ExtraTreesRegressor(n_estimators=6, max_depth=4, random_state=0), Xr, yr),
        "dtc_bin": (tree.DecisionTreeClassifier(max_depth=4, random_state=0), Xb, yb),
        "rfc_multi": (ensemble.RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0), Xm, ym),
        "etc_bin": (ensemble.ExtraTreesClassifier(n_estimators=5, max_depth=4, random_state=0), Xb, yb),
    }
    for name, (est, X, y) in cases.items():
        est.fit(X[:160], y[:160])
        rows = X[160:180]
        # Rows on a threshold's float32 boundary: x exactly at the split.
        t0 = (est.estimators_[0] if hasattr(est, "estimators_") else est).tree_
        edge = rows[:3].copy()
        for j in range(3):
            f = int(t0.feature[j]) if t0.children_left[j] >= 0 else -1
            if f >= 0:
                edge[j, f] = float(np.float32(t0.threshold[j]))
        rows = np.vstack([rows, edge])
        groups = len(est.classes_) if hasattr(est, "classes_") else 1
        trees = sk_trees(est, groups)
        if groups > 1:
            want = est.predict_proba(rows)
        else:
            want = est.predict(rows).reshape(-1, 1)
        shap = []
        for x, w in zip(rows.tolist(), want.tolist()):
            phi = shapley(trees, groups, nf, x)
            for g in range(groups):
                assert abs(sum(phi[g]) - w[g]) < 1e-9, (name, sum(phi[g]), w[g])
            shap.append(phi)
        dst = os.path.join(TD, "sklearn", name)
        os.makedirs(dst, exist_ok=True)
        joblib.dump(est, os.path.join(dst, "model.joblib"))
        doc = {"sklearn": sklearn.__version__, "rows": rows.tolist(), "shap": shap,
               "expected_value": [p[-1] for p in shap[0]],
               "output": want.tolist()}
        with open(os.path.join(dst, "shap.json"), "w") as f:
            json.dump(doc, f)
        print(name, len(rows), "rows", len(trees), "trees", groups, "outputs")


if __name__ == "__main__":
    lightgbm()
    sklearn_models()
