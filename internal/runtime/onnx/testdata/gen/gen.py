#!/usr/bin/python3
"""Generates the ONNX runtime's golden models and their reference outputs.

Run with Debian's Python (python3-torch 1.13, python3-onnx 1.12,
python3-sklearn 1.2):

    /usr/bin/python3 internal/runtime/onnx/testdata/gen/gen.py

For every case it writes testdata/golden/<case>.onnx and <case>.json; the
JSON holds the inputs fed to the model and the outputs the reference
library (torch, or sklearn for the ai.onnx.ml graphs) computed for them.
No skl2onnx exists in Debian, so the ai.onnx.ml graphs are built here with
onnx.helper from the fitted sklearn arrays.
"""
import json
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from sklearn import datasets
from sklearn.ensemble import (GradientBoostingClassifier,
                              GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.tree import DecisionTreeRegressor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
RNG = np.random.RandomState(7)


def tensor_json(a):
    a = np.asarray(a)
    if a.dtype.kind in "US":
        dtype, data = "string", [str(x) for x in a.ravel()]
    elif a.dtype.kind in "iu":
        dtype, data = "int64", [int(x) for x in a.ravel()]
    elif a.dtype == np.float64:
        dtype, data = "float64", [float(x) for x in a.ravel()]
    else:
        dtype, data = "float32", [float(x) for x in a.astype(np.float32).ravel()]
    return {"shape": list(a.shape), "dtype": dtype, "data": data}


def save(name, model_bytes, inputs, outputs, tol):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    doc = {
        "tolerance": tol,
        "inputs": {k: tensor_json(v) for k, v in inputs.items()},
        "outputs": {k: tensor_json(v) for k, v in outputs.items()},
    }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


# ---- torch ----

class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(8, 32)
        self.l2 = torch.nn.Linear(32, 16)
        self.l3 = torch.nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        h = torch.tanh(self.l2(h))
        h = torch.sigmoid(h) * 2 - 1
        return torch.softmax(self.l3(h), dim=1)


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.pool1 = torch.nn.MaxPool2d(2)
        self.bn = torch.nn.BatchNorm2d(4)
        self.c2 = torch.nn.Conv2d(4, 8, 3, stride=1)
        self.pool2 = torch.nn.AvgPool2d(2)
        self.flat = torch.nn.Flatten()
        self.fc = torch.nn.Linear(32, 5)

    def forward(self, x):
        h = self.pool1(torch.relu(self.c1(x)))
        h = self.bn(h)
        h = self.pool2(torch.relu(self.c2(h)))
        return self.fc(self.flat(h))


def export(module, example, name, opset):
    import io
    module.eval()
    buf = io.BytesIO()
    torch.onnx.export(module, example, buf, opset_version=opset,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return buf.getvalue()


def torch_cases():
    torch.manual_seed(3)
    mlp = MLP()
    x = torch.randn(6, 8)
    for opset in (11, 13):
        b = export(mlp, x, "mlp", opset)
        with torch.no_grad():
            y = mlp(x).numpy()
        save("torch_mlp_opset%d" % opset, b, {"input": x.numpy()}, {"output": y}, 1e-5)

    cnn = CNN()
    # give BatchNorm non-trivial statistics
    with torch.no_grad():
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
        cnn.bn.weight.uniform_(0.5, 1.5)
        cnn.bn.bias.uniform_(-0.2, 0.2)
    x = torch.randn(3, 1, 12, 12)
    b = export(cnn, x, "cnn", 13)
    with torch.no_grad():
        y = cnn.eval()(x).numpy()
    save("torch_cnn", b, {"input": x.numpy()}, {"output": y}, 1e-4)


# ---- ai.onnx.ml graphs built from sklearn ----

ML_OPSETS = [helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)]


def ml_model(nodes, inputs, outputs, name):
    g = helper.make_graph(nodes, name, inputs, outputs)
    m = helper.make_model(g, opset_imports=ML_OPSETS, producer_name="ferry-gen")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


def float_input(n_features):
    return helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n_features])


def tree_attrs(trees, weight_fn, prefix):
    """Flattens sklearn trees into TreeEnsemble attributes.

    weight_fn(tree, node) returns [(target_or_class_id, weight), ...] for a leaf.
    """
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                         "nodes_values", "nodes_truenodeids", "nodes_falsenodeids",
                         "nodes_missing_value_tracks_true",
                         prefix + "_treeids", prefix + "_nodeids", prefix + "_ids", prefix + "_weights"]}
    for t, tree in enumerate(trees):
        tr = tree.tree_
        for i in range(tr.node_count):
            leaf = tr.children_left[i] == -1
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            a["nodes_featureids"].append(0 if leaf else int(tr.feature[i]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_values"].append(0.0 if leaf else float(tr.threshold[i]))
            a["nodes_truenodeids"].append(0 if leaf else int(tr.children_left[i]))
            a["nodes_falsenodeids"].append(0 if leaf else int(tr.children_right[i]))
            a["nodes_missing_value_tracks_true"].append(0)
            if leaf:
                for cid, w in weight_fn(tree, i):
                    a[prefix + "_treeids"].append(t)
                    a[prefix + "_nodeids"].append(i)
                    a[prefix + "_ids"].append(cid)
                    a[prefix + "_weights"].append(float(w))
    return a


def regression_data(n_features=5, n=200):
    X = RNG.uniform(-2, 2, size=(n, n_features)).astype(np.float32)
    y = X[:, 0] * 2 - X[:, 1] ** 2 + np.sin(3 * X[:, 2]) + 0.1 * RNG.randn(n)
    return X, y


def sklearn_cases():
    X, y = regression_data()
    Xt = RNG.uniform(-2, 2, size=(20, 5)).astype(np.float32)

    # GradientBoostingRegressor: SUM of lr-scaled leaves plus the mean.
    gbr = GradientBoostingRegressor(n_estimators=15, max_depth=3, learning_rate=0.2, random_state=0).fit(X, y)
    trees = [e[0] for e in gbr.estimators_]
    attrs = tree_attrs(trees, lambda tr, i: [(0, gbr.learning_rate * tr.tree_.value[i][0][0])], "target")
    base = float(gbr.init_.constant_[0][0])
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml",
                            n_targets=1, base_values=[base], aggregate_function="SUM", **attrs)
    b = ml_model([node], [float_input(5)], [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])], "gbr")
    save("sklearn_gbr", b, {"input": Xt}, {"variable": gbr.predict(Xt).reshape(-1, 1)}, 1e-5)

    # RandomForestRegressor: AVERAGE over trees.
    rfr = RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0).fit(X, y)
    attrs = tree_attrs(rfr.estimators_, lambda tr, i: [(0, tr.tree_.value[i][0][0])], "target")
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml",
                            n_targets=1, aggregate_function="AVERAGE", **attrs)
    b = ml_model([node], [float_input(5)], [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])], "rfr")
    save("sklearn_rfr", b, {"input": Xt}, {"variable": rfr.predict(Xt).reshape(-1, 1)}, 1e-5)

    # Multi-output DecisionTreeRegressor: two targets.
    y2 = np.stack([y, X[:, 3] - X[:, 4]], axis=1)
    dtr = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y2)
    attrs = tree_attrs([dtr], lambda tr, i: [(k, tr.tree_.value[i][k][0]) for k in range(2)], "target")
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml",
                            n_targets=2, **attrs)
    b = ml_model([node], [float_input(5)], [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2])], "dtr2")
    save("sklearn_dtr_2targets", b, {"input": Xt}, {"variable": dtr.predict(Xt)}, 1e-5)

    iris = datasets.load_iris()
    Xi, yi = iris.data.astype(np.float32), iris.target
    Xit = (Xi[::10] + RNG.uniform(-0.05, 0.05, size=Xi[::10].shape)).astype(np.float32)

    # RandomForestClassifier: per-leaf class proportions / n_trees, SUM; ZipMap output.
    rfc = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(Xi, yi)
    n = len(rfc.estimators_)

    def rf_weights(tr, i):
        v = tr.tree_.value[i][0]
        return [(k, v[k] / v.sum() / n) for k in range(len(v))]
    attrs = tree_attrs(rfc.estimators_, rf_weights, "class")
    tree = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
                            classlabels_int64s=[0, 1, 2], **attrs)
    zm = helper.make_node("ZipMap", ["probabilities"], ["output_probability"], domain="ai.onnx.ml",
                          classlabels_int64s=[0, 1, 2])
    seqmap = onnx.TypeProto()  # onnx 1.12's helper has no make_map_type_proto
    seqmap.sequence_type.elem_type.map_type.key_type = TensorProto.INT64
    seqmap.sequence_type.elem_type.map_type.value_type.tensor_type.elem_type = TensorProto.FLOAT
    b = ml_model([tree, zm], [float_input(4)],
                 [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                  helper.make_value_info("output_probability", seqmap)], "rfc")
    save("sklearn_rfc_zipmap", b, {"input": Xit},
         {"label": rfc.predict(Xit).astype(np.int64), "output_probability": rfc.predict_proba(Xit)}, 1e-5)

    # Binary GradientBoostingClassifier: one score column, LOGISTIC, string labels.
    yb = np.where(yi == 2, "virginica", "other")
    gbc = GradientBoostingClassifier(n_estimators=10, max_depth=2, learning_rate=0.3, random_state=0).fit(Xi, yb)
    trees = [e[0] for e in gbc.estimators_]
    attrs = tree_attrs(trees, lambda tr, i: [(0, gbc.learning_rate * tr.tree_.value[i][0][0])], "class")
    base = float(gbc._raw_predict_init(Xi[:1])[0][0])
    node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
                            classlabels_strings=list(gbc.classes_), base_values=[base],
                            post_transform="LOGISTIC", **attrs)
    b = ml_model([node], [float_input(4)],
                 [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
                  helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])], "gbc")
    save("sklearn_gbc_binary", b, {"input": Xit},
         {"label": gbc.predict(Xit), "probabilities": gbc.predict_proba(Xit)}, 1e-5)

    # Multinomial LogisticRegression behind a Scaler (StandardScaler).
    sc = StandardScaler().fit(Xi)
    Xs = sc.transform(Xi)
    lr = LogisticRegression(max_iter=500).fit(Xs, yi)
    scaler = helper.make_node("Scaler", ["input"], ["scaled"], domain="ai.onnx.ml",
                              offset=[float(v) for v in sc.mean_], scale=[float(1 / v) for v in sc.scale_])
    lin = helper.make_node("LinearClassifier", ["scaled"], ["label", "probabilities"], domain="ai.onnx.ml",
                           coefficients=[float(v) for v in lr.coef_.ravel()], intercepts=[float(v) for v in lr.intercept_],
                           classlabels_strings=["setosa", "versicolor", "virginica"], post_transform="SOFTMAX")
    b = ml_model([scaler, lin], [float_input(4)],
                 [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
                  helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])], "logreg")
    names = np.array(["setosa", "versicolor", "virginica"])
    save("sklearn_logreg_scaler", b, {"input": Xit},
         {"label": names[lr.predict(sc.transform(Xit))], "probabilities": lr.predict_proba(sc.transform(Xit))}, 1e-5)

    # Binary LogisticRegression: one coefficient row, LOGISTIC.
    yb01 = (yi == 1).astype(np.int64)
    lrb = LogisticRegression(max_iter=500).fit(Xi, yb01)
    lin = helper.make_node("LinearClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
                           coefficients=[float(v) for v in lrb.coef_.ravel()], intercepts=[float(v) for v in lrb.intercept_],
                           classlabels_ints=[0, 1], post_transform="LOGISTIC")
    b = ml_model([lin], [float_input(4)],
                 [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                  helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])], "logreg_bin")
    save("sklearn_logreg_binary", b, {"input": Xit},
         {"label": lrb.predict(Xit).astype(np.int64), "probabilities": lrb.predict_proba(Xit)}, 1e-5)

    # Two-target Ridge after an L2 Normalizer.
    nm = Normalizer(norm="l2").fit(X)
    rd = Ridge(alpha=0.5).fit(nm.transform(X), y2)
    norm = helper.make_node("Normalizer", ["input"], ["normed"], domain="ai.onnx.ml", norm="L2")
    lin = helper.make_node("LinearRegressor", ["normed"], ["variable"], domain="ai.onnx.ml", targets=2,
                           coefficients=[float(v) for v in rd.coef_.ravel()], intercepts=[float(v) for v in rd.intercept_])
    b = ml_model([norm, lin], [float_input(5)], [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2])], "ridge")
    save("sklearn_ridge_normalizer", b, {"input": Xt}, {"variable": rd.predict(nm.transform(Xt))}, 1e-5)




# ---- ai.onnx.ml edge cases whose reference is ONNX Runtime itself ----
#
# No Debian library evaluates these operator options, so gen.py writes the
# models and inputs only (outputs empty) to testdata/ortgolden; the Go test
# TestRecordORTGolden (build tag onnxruntime, flag -record-ort) fills in
# ONNX Runtime's outputs, and the Go engine is then checked against them.

ORT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ortgolden")


def save_ort(name, model_bytes, inputs):
    os.makedirs(ORT_OUT, exist_ok=True)
    with open(os.path.join(ORT_OUT, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    doc = {"tolerance": 1e-5, "inputs": {k: tensor_json_nan(v) for k, v in inputs.items()}, "outputs": {}}
    with open(os.path.join(ORT_OUT, name + ".json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def tensor_json_nan(a):
    t = tensor_json(a)
    if t["dtype"].startswith("float"):
        t["data"] = ["NaN" if x != x else x for x in t["data"]]
    return t


def hand_tree(modes, prefix, leaf_weights, **extra):
    """One tree per entry of modes: a root split on feature i % 3 at 0.5 with
    two leaves; leaf_weights(t) gives [(id, w) for the true leaf, ...] and
    [(id, w) for the false leaf]."""
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                         "nodes_values", "nodes_truenodeids", "nodes_falsenodeids",
                         "nodes_missing_value_tracks_true",
                         prefix + "_treeids", prefix + "_nodeids", prefix + "_ids", prefix + "_weights"]}
    for t, mode in enumerate(modes):
        for nid, (m, feat, val, tr, fa, miss) in enumerate([(mode, t % 3, 0.5, 1, 2, t % 2), ("LEAF", 0, 0, 0, 0, 0), ("LEAF", 0, 0, 0, 0, 0)]):
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(nid)
            a["nodes_featureids"].append(feat)
            a["nodes_modes"].append(m)
            a["nodes_values"].append(val)
            a["nodes_truenodeids"].append(tr)
            a["nodes_falsenodeids"].append(fa)
            a["nodes_missing_value_tracks_true"].append(miss)
        yes, no = leaf_weights(t)
        for nid, ws in ((1, yes), (2, no)):
            for cid, w in ws:
                a[prefix + "_treeids"].append(t)
                a[prefix + "_nodeids"].append(nid)
                a[prefix + "_ids"].append(cid)
                a[prefix + "_weights"].append(w)
    a.update(extra)
    return a


def ort_cases():
    modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
    x = np.array([[0.5, 0.5, 0.5], [0.2, 0.9, 0.5], [0.9, 0.1, 0.7], [np.nan, 0.5, np.nan],
                  [np.nan, np.nan, np.nan], [1.0, 0.0, -1.0]], dtype=np.float32)
    out2 = helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2])
    for agg in ("SUM", "AVERAGE", "MIN", "MAX"):
        attrs = hand_tree(modes, "target", lambda t: ([(0, 1.0 + t), (1, -0.5 * t)], [(0, -2.0 + t), (1, 0.25 * t)]),
                          n_targets=2, aggregate_function=agg, base_values=[0.1, -0.2])
        node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml", **attrs)
        save_ort("tree_regressor_modes_" + agg.lower(), ml_model([node], [float_input(3)], [out2], "modes"), {"input": x})

    # DOUBLE input.
    attrs = hand_tree(modes[:2], "target", lambda t: ([(0, 1.5)], [(0, -1.0)]), n_targets=1)
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml", **attrs)
    save_ort("tree_regressor_double_input",
             ml_model([node], [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, 3])],
                      [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])], "dbl"),
             {"input": x.astype(np.float64)})

    lab = helper.make_tensor_value_info("label", TensorProto.INT64, [None])
    for name, post, weights, base in [
        ("binary_positive_none", "NONE", lambda t: ([(1, 0.3)], [(1, 0.1)]), []),
        ("binary_positive_logistic", "LOGISTIC", lambda t: ([(1, 0.3)], [(1, 0.1)]), []),
        ("binary_mixed_none", "NONE", lambda t: ([(1, 0.3)], [(1, -0.4)]), []),
        ("binary_id0_positive_none", "NONE", lambda t: ([(0, 0.3)], [(0, 0.1)]), []),
        ("binary_id0_positive_logistic", "LOGISTIC", lambda t: ([(0, 0.3)], [(0, 0.1)]), []),
        ("binary_id0_mixed_none", "NONE", lambda t: ([(0, 0.3)], [(0, -0.4)]), []),
        ("binary_id0_mixed_base1", "NONE", lambda t: ([(0, 0.3)], [(0, -0.4)]), [0.2]),
        ("binary_id1_mixed_base1", "LOGISTIC", lambda t: ([(1, 0.3)], [(1, -0.4)]), [0.2]),
        ("binary_id1_positive_base2", "NONE", lambda t: ([(1, 0.3)], [(1, 0.1)]), [0.2, 0.1]),
        ("two_columns_none", "NONE", lambda t: ([(0, 0.3), (1, 0.1)], [(0, 0.05), (1, 0.4)]), []),
        ("two_columns_base2", "NONE", lambda t: ([(0, 0.3), (1, 0.1)], [(0, 0.05), (1, 0.4)]), [0.2, -0.1]),
        ("two_columns_softmax", "SOFTMAX", lambda t: ([(0, 0.3), (1, 0.1)], [(0, 0.05), (1, 0.4)]), []),
    ]:
        extra = {"base_values": base} if base else {}
        attrs = hand_tree(modes[:3], "class", weights, classlabels_int64s=[3, 7], post_transform=post, **extra)
        node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml", **attrs)
        save_ort("tree_classifier_" + name,
                 ml_model([node], [float_input(3)], [lab, helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])], name),
                 {"input": x})
    for name, post in [("softmax", "SOFTMAX"), ("softmax_zero", "SOFTMAX_ZERO"), ("logistic", "LOGISTIC")]:
        attrs = hand_tree(modes, "class", lambda t: ([(t % 3, 0.4 + 0.1 * t)], [((t + 1) % 3, 0.3)]),
                          classlabels_strings=["a", "b", "c"], post_transform=post, base_values=[0.0, 0.1, 0.0])
        node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml", **attrs)
        save_ort("tree_classifier_" + name,
                 ml_model([node], [float_input(3)],
                          [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
                           helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])], name),
                 {"input": x})

    xl = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 0.0, 0.1]], dtype=np.float32)
    for name, post, coef, icpt, labels in [
        ("binary_none", "NONE", [0.5, -1.0, 0.25], [0.1], [0, 1]),
        ("binary_logistic", "LOGISTIC", [0.5, -1.0, 0.25], [0.1], [0, 1]),
        ("multi_logistic", "LOGISTIC", [0.5, -1.0, 0.25, 1, 1, 1, -0.5, 0, 2], [0.1, 0, -0.3], [4, 5, 6]),
        ("multi_none", "NONE", [0.5, -1.0, 0.25, 1, 1, 1, -0.5, 0, 2], [0.1, 0, -0.3], [4, 5, 6]),
    ]:
        node = helper.make_node("LinearClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
                                coefficients=coef, intercepts=icpt, classlabels_ints=labels, post_transform=post)
        save_ort("linear_classifier_" + name,
                 ml_model([node], [float_input(3)], [lab, helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(labels)])], name),
                 {"input": xl})
    for norm in ("MAX", "L1", "L2"):
        node = helper.make_node("Normalizer", ["input"], ["y"], domain="ai.onnx.ml", norm=norm)
        save_ort("normalizer_" + norm.lower(),
                 ml_model([node], [float_input(3)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], norm),
                 {"input": xl})
    node = helper.make_node("Scaler", ["input"], ["y"], domain="ai.onnx.ml", offset=[0.5], scale=[2.0])
    save_ort("scaler_broadcast", ml_model([node], [float_input(3)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], "sc"),
             {"input": xl})
    node = helper.make_node("LinearRegressor", ["input"], ["y"], domain="ai.onnx.ml", coefficients=[0.5, -1.0, 0.25],
                            intercepts=[0.1], post_transform="NONE")
    save_ort("linear_regressor", ml_model([node], [float_input(3)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], "lr"),
             {"input": xl})


if __name__ == "__main__":
    import sys
    # gen.py [torch] [sklearn] [ort]: regenerate only the named groups.
    groups = sys.argv[1:] or ["torch", "sklearn", "ort"]
    for g in groups:
        {"torch": torch_cases, "sklearn": sklearn_cases, "ort": ort_cases}[g]()
