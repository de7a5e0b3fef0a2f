#!/usr/bin/python3
"""Golden data for Ferry's scikit-learn runtime.

Run with Debian's interpreter from the package directory:

    /usr/bin/python3 testdata/gen/gen.py

It trains each estimator on small synthetic data, saves it with joblib
(uncompressed and compressed) and pickle (protocols 2, 4, 5) under
testdata/models/, and records predict / predict_proba / decision_function on
held-out rows in testdata/golden/<name>.json. Floats are written with repr,
so they round-trip exactly.
"""
import json
import os
import pickle
import sys

import joblib
import numpy as np
import sklearn
from sklearn import (compose, ensemble, impute, linear_model, naive_bayes,
                     neighbors, pipeline, preprocessing, svm, tree,
                     decomposition)
from sklearn.datasets import make_classification, make_regression

HERE = os.path.dirname(os.path.abspath(__file__))
TD = os.path.dirname(HERE)
MODELS = os.path.join(TD, "models")
GOLDEN = os.path.join(TD, "golden")

NF = 5
Xr, yr = make_regression(n_samples=90, n_features=NF, noise=3.0, random_state=0)
Xb, yb = make_classification(n_samples=90, n_features=NF, n_informative=3,
                             random_state=1)
Xm, ym = make_classification(n_samples=120, n_features=NF, n_informative=3,
                             n_classes=3, n_clusters_per_class=1, random_state=2)
names = np.array(["cat", "dog", "fish"], dtype=object)
ym_str = names[ym]
TRAIN, TEST = slice(0, 70), slice(70, 86)


def fit(name, est, X, y):
    est.fit(X[TRAIN], y[TRAIN])
    return est


def record(name, est, X, formats=("joblib",)):
    x = np.array(X[TEST], dtype=np.float64)
    # JSON has no NaN: missing inputs are written as the string "nan".
    xs = [[("nan" if np.isnan(v) else v) for v in row] for row in x.tolist()]
    out = {"sklearn": sklearn.__version__, "X": xs}
    pred = est.predict(x)
    if pred.dtype.kind in "OUS":
        out["predict"] = [str(v) for v in pred]
        out["predict_kind"] = "str"
    elif pred.dtype.kind in "iu":
        out["predict"] = [int(v) for v in pred]
        out["predict_kind"] = "int"
    else:
        out["predict"] = [float(v) for v in pred]
        out["predict_kind"] = "float"
    for meth in ("predict_proba", "decision_function"):
        if hasattr(est, meth):
            try:
                v = getattr(est, meth)(x)
            except Exception:  # e.g. SVC without probability
                continue
            out[meth] = np.asarray(v, dtype=np.float64).tolist()
    with open(os.path.join(GOLDEN, name + ".json"), "w") as f:
        json.dump(out, f)
    for fm in formats:
        path = os.path.join(MODELS, name + "." + fm.split(":")[0])
        if fm == "joblib":
            joblib.dump(est, path)
        elif fm.startswith("joblib-"):
            comp = fm.split("-", 1)[1]
            joblib.dump(est, os.path.join(MODELS, name + "." + comp + ".joblib"),
                        compress=(comp, 3))
        elif fm.startswith("p"):
            proto = int(fm[1:])
            with open(os.path.join(MODELS, "%s.p%d.pkl" % (name, proto)), "wb") as f:
                pickle.dump(est, f, protocol=proto)


ALL_FORMATS = ("joblib", "joblib-zlib", "joblib-gzip", "joblib-bz2",
               "joblib-lzma", "joblib-xz", "p2", "p4", "p5")


def main():
    os.makedirs(MODELS, exist_ok=True)
    os.makedirs(GOLDEN, exist_ok=True)
    reg = {
        "linreg": linear_model.LinearRegression(),
        "ridge": linear_model.Ridge(alpha=0.5),
        "lasso": linear_model.Lasso(alpha=0.1),
        "enet": linear_model.ElasticNet(alpha=0.1, l1_ratio=0.3),
        "sgdreg": linear_model.SGDRegressor(random_state=0),
        "linsvr": svm.LinearSVR(random_state=0, max_iter=5000),
        "dtr": tree.DecisionTreeRegressor(max_depth=4, random_state=0),
        "rfr": ensemble.RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0),
        "etr": ensemble.ExtraTreesRegressor(n_estimators=8, max_depth=4, random_state=0),
        "gbr": ensemble.GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0),
        "svr_rbf": svm.SVR(kernel="rbf", C=10.0),
        "knnr": neighbors.KNeighborsRegressor(n_neighbors=3),
        "hgbr": ensemble.HistGradientBoostingRegressor(max_iter=10, random_state=0),
        "pipe_minmax_ridge": pipeline.make_pipeline(preprocessing.MinMaxScaler(), linear_model.Ridge()),
        "pipe_robust_linreg": pipeline.make_pipeline(preprocessing.RobustScaler(), linear_model.LinearRegression()),
        "pipe_maxabs_lasso": pipeline.make_pipeline(preprocessing.MaxAbsScaler(), linear_model.Lasso(alpha=0.1)),
        "pipe_poly_ridge": pipeline.make_pipeline(preprocessing.PolynomialFeatures(2), linear_model.Ridge()),
        "pipe_pca_linreg": pipeline.make_pipeline(decomposition.PCA(3), linear_model.LinearRegression()),
        "pipe_norm_linreg": pipeline.make_pipeline(preprocessing.Normalizer(), linear_model.LinearRegression()),
    }
    for n, e in reg.items():
        record(n, fit(n, e, Xr, yr), Xr)

    binary = {
        "logreg_bin": linear_model.LogisticRegression(),
        "sgdclf_bin": linear_model.SGDClassifier(random_state=0),
        "linsvc_bin": svm.LinearSVC(random_state=0, max_iter=5000),
        "dtc_bin": tree.DecisionTreeClassifier(max_depth=4, random_state=0),
        "gbc_bin": ensemble.GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0),
        "svc_linear": svm.SVC(kernel="linear"),
        "svc_poly": svm.SVC(kernel="poly", degree=3, gamma="scale"),
        "svc_sigmoid": svm.SVC(kernel="sigmoid", gamma=0.1),
        "gnb_bin": naive_bayes.GaussianNB(),
        "hgbc_bin": ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=0),
        "pipe_std_logreg": pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression()),
    }
    for n, e in binary.items():
        record(n, fit(n, e, Xb, yb), Xb)

    multi = {
        "logreg_ovr": linear_model.LogisticRegression(multi_class="ovr"),
        "sgdclf_multi": linear_model.SGDClassifier(random_state=0),
        "linsvc_multi": svm.LinearSVC(random_state=0, max_iter=5000),
        "dtc_multi": tree.DecisionTreeClassifier(max_depth=5, random_state=0),
        "etc": ensemble.ExtraTreesClassifier(n_estimators=8, max_depth=4, random_state=0),
        "gbc_multi": ensemble.GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0),
        "svc_rbf": svm.SVC(kernel="rbf", probability=False),
        "knnc": neighbors.KNeighborsClassifier(n_neighbors=5),
        "gnb_multi": naive_bayes.GaussianNB(),
        "hgbc_multi": ensemble.HistGradientBoostingClassifier(max_iter=8, random_state=0),
    }
    for n, e in multi.items():
        record(n, fit(n, e, Xm, ym), Xm)

    # The format matrix: one linear and one tree model in every layout.
    record("logreg_multi", fit("logreg_multi", linear_model.LogisticRegression(), Xm, ym), Xm, ALL_FORMATS)
    record("rfc_str", fit("rfc_str", ensemble.RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0), Xm, ym_str), Xm, ALL_FORMATS)
    record("logreg_str", fit("logreg_str", linear_model.LogisticRegression(), Xm, ym_str), Xm)
    record("rfc", fit("rfc", ensemble.RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0), Xm, ym), Xm)

    # Missing values through an imputer.
    Xn = Xb.copy()
    Xn[::7, 1] = np.nan
    Xn[3::11, 4] = np.nan
    record("pipe_impute_std_rfc", fit("pipe_impute_std_rfc", pipeline.make_pipeline(
        impute.SimpleImputer(strategy="median"), preprocessing.StandardScaler(),
        ensemble.RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)), Xn, yb), Xn)

    # Missing values routed by HistGradientBoosting's missing_go_to_left.
    record("hgbc_nan", fit("hgbc_nan", ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=0), Xn, yb), Xn)
    Xrn = Xr.copy()
    Xrn[::5, 2] = np.nan
    record("hgbr_nan", fit("hgbr_nan", ensemble.HistGradientBoostingRegressor(max_iter=10, random_state=0), Xrn, yr), Xrn)

    more = [
        ("knnc_dist", neighbors.KNeighborsClassifier(n_neighbors=4, weights="distance"), Xm, ym),
        ("knnr_dist", neighbors.KNeighborsRegressor(n_neighbors=4, weights="distance"), Xr, yr),
        ("knnc_manhattan", neighbors.KNeighborsClassifier(n_neighbors=3, p=1), Xm, ym),
        ("gbc_zero", ensemble.GradientBoostingClassifier(n_estimators=6, max_depth=2, init="zero", random_state=0), Xb, yb),
        ("gbc_exp", ensemble.GradientBoostingClassifier(n_estimators=6, max_depth=2, loss="exponential", random_state=0), Xb, yb),
        ("gbr_huber", ensemble.GradientBoostingRegressor(n_estimators=6, max_depth=2, loss="huber", random_state=0), Xr, yr),
        ("logreg_liblinear", linear_model.LogisticRegression(solver="liblinear"), Xm, ym),
        ("logreg_multinomial_bin", linear_model.LogisticRegression(multi_class="multinomial"), Xb, yb),
        ("sgdclf_log", linear_model.SGDClassifier(loss="log_loss", random_state=0), Xm, ym),
        ("pipe_poly_interaction", pipeline.make_pipeline(preprocessing.PolynomialFeatures(3, interaction_only=True, include_bias=False), linear_model.LinearRegression()), Xr, yr),
        ("pipe_pca_whiten_svr", pipeline.make_pipeline(decomposition.PCA(4, whiten=True), svm.SVR(kernel="poly", degree=2)), Xr, yr),
        ("pipe_minmax_clip_gnb", pipeline.make_pipeline(preprocessing.MinMaxScaler(clip=True), naive_bayes.GaussianNB()), Xm, ym),
        ("pipe_std_nomean_knnr", pipeline.make_pipeline(preprocessing.StandardScaler(with_mean=False), neighbors.KNeighborsRegressor(3)), Xr, yr),
        ("svc_ovo", svm.SVC(kernel="rbf", decision_function_shape="ovo"), Xm, ym),
        ("svc_proba_bin", svm.SVC(kernel="rbf", probability=True, random_state=0), Xb, yb),
        ("svc_proba_multi", svm.SVC(kernel="poly", degree=2, probability=True, random_state=0), Xm, ym),
    ]
    for n, e, X, y in more:
        record(n, fit(n, e, X, y), X)

    # One-hot encoding of a small-integer column inside a ColumnTransformer.
    Xc = Xb.copy()
    Xc[:, 0] = np.floor(np.abs(Xc[:, 0]) * 2) % 4
    ct = compose.ColumnTransformer([
        ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), [0]),
        ("num", preprocessing.StandardScaler(), [1, 2, 3]),
    ], remainder="drop")
    record("pipe_ct_onehot_logreg", fit("pipe_ct_onehot_logreg",
           pipeline.make_pipeline(ct, linear_model.LogisticRegression()), Xc, yb), Xc)
    ct2 = compose.ColumnTransformer([
        ("cat", preprocessing.OneHotEncoder(drop="first"), [0]),
        ("num", pipeline.make_pipeline(preprocessing.RobustScaler(), preprocessing.PolynomialFeatures(2)), [2, 3]),
    ], remainder="passthrough")
    record("pipe_ct_drop_ridge", fit("pipe_ct_drop_ridge",
           pipeline.make_pipeline(ct2, linear_model.Ridge()), Xc, Xc[:, 1] * 3 + Xc[:, 0]), Xc)

    # feature_names_in_ as a DataFrame fit would set it (no pandas in Debian's
    # python3 here, so it is assigned after fitting a numpy array).
    named = fit("ridge_named", linear_model.Ridge(alpha=0.5), Xr, yr)
    named.feature_names_in_ = np.array(["age", "height", "weight", "income", "score"], dtype=object)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record("ridge_named", named, Xr)

    # The benchmark forest: 100 trees, shipped zlib-compressed.
    Xbig, ybig = make_classification(n_samples=400, n_features=10, n_informative=5, random_state=3)
    rf = ensemble.RandomForestClassifier(n_estimators=100, max_depth=5, random_state=0).fit(Xbig, ybig)
    joblib.dump(rf, os.path.join(MODELS, "bench_rf100.zlib.joblib"), compress=("zlib", 9))

    # Things that must be refused.
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/ferry-pwned",))
    with open(os.path.join(MODELS, "evil_os_system.pkl"), "wb") as f:
        pickle.dump(Evil(), f, protocol=2)
    joblib.dump(neighbors.NearestCentroid().fit(Xb[TRAIN], yb[TRAIN]),
                os.path.join(MODELS, "unsupported_nearest_centroid.joblib"))


if __name__ == "__main__":
    sys.exit(main())
