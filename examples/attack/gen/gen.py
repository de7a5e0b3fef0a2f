#!/usr/bin/python3
"""Writes the attack example's image model and requests (run with Debian's
python3: apt-get install python3-sklearn python3-onnx). Outputs are
committed; nothing here runs in CI.

    /usr/bin/python3 examples/attack/gen/gen.py

models/onnx-digits/model.onnx: scikit-learn's 8x8 digits (pixels scaled to
[0, 1]), a one-hidden-layer MLP (64 ReLU units) trained with scikit-learn
and written with onnx.helper as Flatten -> Gemm -> Relu -> Gemm -> Softmax.
Input "input" FP32 [N, 8, 8], output "probabilities" FP32 [N, 10].

digits-test.json: held-out images the classifier gets right, with labels
({"images": [[8x8], ...], "labels": [...]}), for the success-rate test.
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")

X, y = load_digits(return_X_y=True)
X = X / 16.0
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=1)
mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=1).fit(Xtr, ytr)
print("test accuracy", mlp.score(Xte, yte))

W1, W2 = mlp.coefs_
b1, b2 = mlp.intercepts_
inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
         [(W1, "W1"), (b1, "b1"), (W2, "W2"), (b2, "b2")]]
nodes = [
    helper.make_node("Flatten", ["input"], ["flat"], axis=1),
    helper.make_node("Gemm", ["flat", "W1", "b1"], ["h"]),
    helper.make_node("Relu", ["h"], ["hr"]),
    helper.make_node("Gemm", ["hr", "W2", "b2"], ["logits"]),
    helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
]
graph = helper.make_graph(
    nodes, "digits",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 8, 8])],
    [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
    initializer=inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ferry-examples")
onnx.checker.check_model(model)
d = os.path.join(ROOT, "models", "onnx-digits")
os.makedirs(d, exist_ok=True)
onnx.save(model, os.path.join(d, "model.onnx"))

right = np.nonzero(mlp.predict(Xte) == yte)[0][:50]
imgs = [np.round(Xte[i].reshape(8, 8), 4).tolist() for i in right]
with open(os.path.join(ROOT, "digits-test.json"), "w") as f:
    json.dump({"images": imgs, "labels": [int(yte[i]) for i in right]}, f)
    f.write("\n")
# One request in KFServing's art-explainer form: [image, [label]].
with open(os.path.join(ROOT, "digits-request.json"), "w") as f:
    json.dump({"instances": [imgs[0], [int(yte[right[0]])]]}, f)
    f.write("\n")
