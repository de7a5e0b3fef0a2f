#!/usr/bin/python3
"""Golden SHAP values for scikit-learn gradient boosting and tree pipelines.

Run from internal/explain/treeshap/testdata/gen with Debian's python3 and
python3-sklearn (1.2):  /usr/bin/python3 gen_sklearn_boosting.py
It rewrites ../sklearn_boosting/.

The reference is not the Go code's: exact path-dependent Shapley values of
the model's raw margin, computed here by enumerating every feature subset
(gen_lgb_sklearn.shapley) over trees this script reads from the fitted
estimator itself:

- GradientBoostingClassifier/Regressor: every estimators_[stage, class]
  tree_ scaled by learning_rate, weighted_n_node_samples as covers (shap's
  TreeExplainer convention), the init estimator's raw prediction
  (_raw_predict_init) as the base; splits compare float32(x) <= threshold.
- HistGradientBoostingClassifier/Regressor: every _predictors[iter][class]
  node array, the nodes' count as covers (as shap reads them),
  _baseline_prediction as the base; x <= num_threshold, NaN takes
  missing_go_to_left.
- A Pipeline of per-feature steps before such trees: a split on tree
  feature j is evaluated on input feature j through the fitted steps
  (pipeline[:-1].transform), so the values are the whole pipeline's.

The margin is decision_function for classifiers and predict for the
(identity-link) regressors; the script checks that its own tree walk
reproduces it within 1e-12 and that every row's values add up to it within
1e-9. shap.json per case holds: model (a path relative to the treeshap
package), output (the runtime output that is the margin), rows (NaN as
null), shap (row, margin, features then expected value), expected_value,
margin.

The runtime's golden GB/HGB models are used as they are; a few more are
trained here (subsampled multiclass GB, HGB with NaN and early stopping,
a multiclass HGB with NaN, an imputer+scaler+GB pipeline) and saved next
to their shap.json. pipe_pca_dtr (PCA ahead of a tree) is saved without
values: TreeSHAP must refuse it.
"""
import json
import math
import os
import shutil
import sys

import joblib
import numpy as np
import sklearn
from sklearn import ensemble, tree
from sklearn.datasets import make_classification, make_regression
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_lgb_sklearn import Node, shapley, walk  # noqa: E402

TD = os.path.dirname(HERE)
OUT = os.path.join(TD, "sklearn_boosting")
RT = os.path.join(TD, "..", "..", "..", "runtime", "sklearn", "testdata")
RUNTIME_CASES = ["gbr", "gbr_huber", "gbc_bin", "gbc_exp", "gbc_zero", "gbc_multi",
                 "hgbr", "hgbr_nan", "hgbc_bin", "hgbc_nan", "hgbc_multi"]


def identity(j, v):
    return v


def gb_trees(est, fmap):
    """[(root, class, learning_rate)] of a fitted GradientBoosting."""
    out = []
    stages, k = est.estimators_.shape
    for s in range(stages):
        for c in range(k):
            t = est.estimators_[s, c].tree_
            nodes = [None] * t.node_count

            def node(i, t=t, nodes=nodes):
                if nodes[i] is None:
                    cov = float(t.weighted_n_node_samples[i])
                    if t.children_left[i] < 0:
                        nodes[i] = Node(cov, value=float(t.value[i, 0, 0]))
                    else:
                        f, thr = int(t.feature[i]), float(t.threshold[i])
                        nodes[i] = Node(cov, feature=f,
                                        go=lambda v, f=f, thr=thr: float(np.float32(fmap(f, v))) <= thr,
                                        left=node(t.children_left[i]), right=node(t.children_right[i]))
                return nodes[i]
            out.append((node(0), c, float(est.learning_rate)))
    return out


def hgb_trees(est, fmap):
    """[(root, class, 1)] of a fitted HistGradientBoosting."""
    out = []
    for it in est._predictors:
        for c, p in enumerate(it):
            a = p.nodes
            nodes = [None] * len(a)

            def node(i, a=a, nodes=nodes):
                if nodes[i] is None:
                    cov = float(a["count"][i])
                    if a["is_leaf"][i]:
                        nodes[i] = Node(cov, value=float(a["value"][i]))
                    else:
                        assert not a["is_categorical"][i]
                        f, thr, ml = int(a["feature_idx"][i]), float(a["num_threshold"][i]), bool(a["missing_go_to_left"][i])

                        def go(v, f=f, thr=thr, ml=ml):
                            z = fmap(f, v)
                            return ml if math.isnan(z) else z <= thr
                        nodes[i] = Node(cov, feature=f, go=go, left=node(int(a["left"][i])), right=node(int(a["right"][i])))
                return nodes[i]
            out.append((node(0), c, 1.0))
    return out


def base_margin(est, x):
    if hasattr(est, "_predictors"):
        return [float(v) for v in np.ravel(est._baseline_prediction)]
    return [float(v) for v in est._raw_predict_init(np.asarray([x], dtype=np.float32))[0]]


def margins(model, rows):
    if hasattr(model, "decision_function"):
        return "decision_function", np.asarray(model.decision_function(rows)).reshape(len(rows), -1)
    return "predict", np.asarray(model.predict(rows)).reshape(len(rows), -1)


def threshold_rows(est, x):
    """x with one feature set on each of the first tree's thresholds."""
    out = []
    if hasattr(est, "_predictors"):
        a = est._predictors[0][0].nodes
        for i in range(len(a)):
            if not a["is_leaf"][i] and math.isfinite(a["num_threshold"][i]):
                r = list(x)
                r[int(a["feature_idx"][i])] = float(a["num_threshold"][i])
                out.append(r)
    else:
        t = est.estimators_[0, 0].tree_
        for i in range(t.node_count):
            if t.children_left[i] >= 0:
                r = list(x)
                r[int(t.feature[i])] = float(np.float32(t.threshold[i]))
                out.append(r)
    return out[:6]


def case(name, model, rows, model_path):
    rows = [list(map(float, r)) for r in rows]
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    nfeat = len(rows[0])
    fmap = identity
    if hasattr(model, "steps"):
        pre = model[:-1]
        cache = {}

        def fmap(j, v, row=None):
            # Tree feature j of the pipeline is a function of input feature
            # j alone; evaluate it on a row holding v there.
            key = (j, v if not math.isnan(v) else "nan")
            if key not in cache:
                r = np.zeros((1, nfeat))
                r[0, j] = v
                cache[key] = float(pre.transform(r)[0, j])
            return cache[key]
    trees = hgb_trees(est, fmap) if hasattr(est, "_predictors") else gb_trees(est, fmap)
    groups = 1 + max(g for _, g, _ in trees)
    output, want = margins(model, np.asarray(rows))
    base = base_margin(est, model[:-1].transform([rows[0]])[0] if hasattr(model, "steps") else rows[0])
    shap = []
    worst = 0.0
    for x, w in zip(rows, want.tolist()):
        m = list(base)
        for root, g, wt in trees:
            m[g] += wt * walk(root, x)
        assert all(abs(a - b) <= 1e-12 * max(1, abs(b)) for a, b in zip(m, w)), (name, m, w)
        phi = shapley(trees, groups, nfeat, x)
        for g in range(groups):
            phi[g][nfeat] += base[g]
            worst = max(worst, abs(sum(phi[g]) - w[g]))
            assert abs(sum(phi[g]) - w[g]) < 1e-9, (name, sum(phi[g]), w[g])
        shap.append(phi)
    dst = os.path.join(OUT, name)
    os.makedirs(dst, exist_ok=True)
    doc = {"sklearn": sklearn.__version__, "model": model_path, "output": output,
           "rows": [[None if math.isnan(v) else v for v in r] for r in rows],
           "shap": shap, "expected_value": [p[-1] for p in shap[0]], "margin": want.tolist()}
    with open(os.path.join(dst, "shap.json"), "w") as f:
        json.dump(doc, f)
    print(name, len(rows), "rows", len(trees), "trees", groups, "margins; worst |sum - margin|", worst)


def runtime_cases():
    for name in RUNTIME_CASES:
        model = joblib.load(os.path.join(RT, "models", name + ".joblib"))
        g = json.load(open(os.path.join(RT, "golden", name + ".json")))
        rows = [[float("nan") if v == "nan" else float(v) for v in r] for r in g["X"]][:12]
        rows += threshold_rows(model, rows[0])
        case(name, model, rows, "../../runtime/sklearn/testdata/models/" + name + ".joblib")


def with_nan(X, frac, seed):
    X = X.copy()
    rng = np.random.RandomState(seed)
    X[rng.rand(*X.shape) < frac] = np.nan
    return X


def trained_cases():
    Xm, ym = make_classification(n_samples=300, n_features=7, n_informative=4, n_classes=3,
                                 n_clusters_per_class=1, random_state=11)
    Xr, yr = make_regression(n_samples=400, n_features=7, noise=5.0, random_state=12)
    Xb, yb = make_classification(n_samples=300, n_features=6, n_informative=3, random_state=13)
    Xrn = with_nan(Xr, 0.1, 14)
    Xmn = with_nan(Xm, 0.1, 15)
    Xbn = with_nan(Xb, 0.1, 16)
    cases = {
        "gbc_sub_multi": (ensemble.GradientBoostingClassifier(n_estimators=6, max_depth=3, subsample=0.7,
                                                              learning_rate=0.3, random_state=0), Xm, ym),
        "hgbr_nan_es": (ensemble.HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=6, learning_rate=0.3,
                                                               early_stopping=True, n_iter_no_change=3,
                                                               random_state=0), Xrn, yr),
        "hgbc_multi_nan": (ensemble.HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=6, random_state=0), Xmn, ym),
        "pipe_impute_std_gbc": (make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                              ensemble.GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0)),
                                Xbn, yb),
    }
    for name, (model, X, y) in cases.items():
        model.fit(X[:240], y[:240])
        dst = os.path.join(OUT, name)
        os.makedirs(dst, exist_ok=True)
        joblib.dump(model, os.path.join(dst, "model.joblib"), compress=("zlib", 6))
        est = model.steps[-1][1] if hasattr(model, "steps") else model
        rows = X[240:256].tolist()
        if not hasattr(model, "steps"):
            rows += threshold_rows(est, rows[1])
        case(name, model, rows, "testdata/sklearn_boosting/" + name + "/model.joblib")
    refused = make_pipeline(PCA(n_components=3), tree.DecisionTreeRegressor(max_depth=2, random_state=0)).fit(Xr, yr)
    dst = os.path.join(OUT, "refused_pipe_pca_dtr")
    os.makedirs(dst, exist_ok=True)
    joblib.dump(refused, os.path.join(dst, "model.joblib"), compress=("zlib", 6))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    runtime_cases()
    trained_cases()
