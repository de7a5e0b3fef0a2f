#!/usr/bin/python3
"""Writes ../golden.json: generated predictions and truths with the values
sklearn.metrics gives for them. Run from this directory with Debian's
python3-sklearn:  /usr/bin/python3 gen.py
The Go tests read only the JSON; they never run Python."""
import json

import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn import metrics

rng = np.random.default_rng(20240517)


def noisy_labels(truth, labels, p_right):
    out = []
    for t in truth:
        out.append(t if rng.random() < p_right else labels[rng.integers(len(labels))])
    return out


def classification(name, truth, pred):
    labels = sorted(set(truth) | set(pred), key=lambda x: (float(x) if all(_isnum(l) for l in set(truth) | set(pred)) else x))
    p, r, f, s = metrics.precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    return {
        "name": name,
        "pred": [str(x) for x in pred],
        "truth": [str(x) for x in truth],
        "accuracy": metrics.accuracy_score(truth, pred),
        "precision_macro": metrics.precision_score(truth, pred, average="macro", zero_division=0),
        "recall_macro": metrics.recall_score(truth, pred, average="macro", zero_division=0),
        "f1_macro": metrics.f1_score(truth, pred, average="macro", zero_division=0),
        "labels": [str(x) for x in labels],
        "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist(),
        "confusion": metrics.confusion_matrix(truth, pred, labels=labels).tolist(),
    }


def _isnum(x):
    try:
        float(x)
        return True
    except ValueError:
        return False


def probabilistic(name, n, k, ties):
    probs = rng.dirichlet(np.ones(k) * 0.8, size=n)
    if ties:
        probs = np.round(probs, 1)
        probs[:, -1] = 1 - probs[:, :-1].sum(axis=1)
        probs = np.clip(probs, 0, 1)
        probs = probs / probs.sum(axis=1, keepdims=True)
    truth = [int(rng.choice(k, p=row)) if rng.random() < 0.8 else int(rng.integers(k)) for row in probs]
    for c in range(k):  # every class present, as multiclass AUC requires
        truth[c] = c
    pred = [int(np.argmax(row)) for row in probs]
    case = classification(name, truth, pred)
    case["probs"] = probs.tolist()
    case["log_loss"] = metrics.log_loss(truth, probs, labels=list(range(k)))
    if k == 2:
        case["roc_auc"] = metrics.roc_auc_score(truth, probs[:, 1])
    else:
        case["roc_auc"] = metrics.roc_auc_score(truth, probs, multi_class="ovr", average="macro", labels=list(range(k)))
    return case


def regression(name, truth, pred):
    return {
        "name": name, "value_pred": list(map(float, pred)), "value_truth": list(map(float, truth)),
        "mae": metrics.mean_absolute_error(truth, pred),
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth, pred))),
        "r2": metrics.r2_score(truth, pred),
    }


cases = []
t = [int(x) for x in rng.integers(0, 4, size=200)]
cases.append(classification("int-labels", t, noisy_labels(t, [0, 1, 2, 3], 0.7)))
names = ["setosa", "versicolor", "virginica"]
t = [names[i] for i in rng.integers(0, 3, size=150)]
cases.append(classification("string-labels", t, noisy_labels(t, names, 0.8)))
t = [int(x) for x in rng.integers(0, 3, size=40)]
p = noisy_labels(t, [0, 1, 2, 5], 0.5)  # a label only ever predicted
cases.append(classification("predicted-only-label", t, p))
cases.append(probabilistic("probs-3", 300, 3, False))
cases.append(probabilistic("probs-2-ties", 250, 2, True))
cases.append(probabilistic("probs-4-ties", 200, 4, True))
t = rng.normal(10, 3, size=250)
cases.append(regression("regression", t.tolist(), (t + rng.normal(0, 1, size=250)).tolist()))
cases.append(regression("regression-constant-truth", [2.5] * 20, (2.5 + rng.normal(0, 0.1, size=20)).tolist()))
cases.append(regression("regression-exact-constant", [4.0] * 5, [4.0] * 5))

with open("../golden.json", "w") as f:
    json.dump({"sklearn": sklearn_version, "cases": cases}, f)
    f.write("\n")
