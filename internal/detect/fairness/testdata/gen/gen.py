#!/usr/bin/python3
"""Writes ../golden.json: fairness metrics computed independently of the Go
code, with numpy and scikit-learn's NearestNeighbors, from the definitions in
AIF360's documentation (BinaryLabelDatasetMetric, ClassificationMetric).

Run from this directory: /usr/bin/python3 gen.py
Needs python3-numpy and python3-sklearn; the Go tests only read the output.
"""
import json

import numpy as np
from sklearn.neighbors import NearestNeighbors


def mask(X, names, groups):
    """AIF360's conditioning: OR over group dicts, AND within one."""
    out = np.zeros(len(X), dtype=bool)
    for g in groups:
        m = np.ones(len(X), dtype=bool)
        for attr, val in g.items():
            m &= X[:, names.index(attr)] == val
        out |= m
    return out


def dataset_metrics(X, y, names, priv, unpriv, fav, unfav, k=5):
    p, u = mask(X, names, priv), mask(X, names, unpriv)
    assert not np.any(p & u)

    def rate(m):
        return float(np.sum(y[m] == fav)) / float(np.sum(m))

    nn = NearestNeighbors(n_neighbors=k, algorithm="ball_tree").fit(X)
    _, idx = nn.kneighbors(X)
    cons = 1.0 - float(np.mean(np.abs(y - y[idx].mean(axis=1))))
    return {
        "num_instances": float(len(y)),
        "num_positives": float(np.sum(y == fav)),
        "num_negatives": float(np.sum(y == unfav)),
        "base_rate": float(np.mean(y == fav)),
        "base_rate_privileged": rate(p),
        "base_rate_unprivileged": rate(u),
        "statistical_parity_difference": rate(u) - rate(p),
        "disparate_impact": rate(u) / rate(p),
        "consistency": cons,
    }


def classification_metrics(X, truth, pred, names, priv, unpriv, fav):
    def conf(m):
        t, q = truth[m] == fav, pred[m] == fav
        tp, fn = np.sum(t & q), np.sum(t & ~q)
        fp, tn = np.sum(~t & q), np.sum(~t & ~q)
        return float(tp), float(fp), float(tn), float(fn)

    def acc(m):
        tp, fp, tn, fn = conf(m)
        return (tp + tn) / (tp + fp + tn + fn)

    def tpr(m):
        tp, fp, tn, fn = conf(m)
        return tp / (tp + fn)

    def fpr(m):
        tp, fp, tn, fn = conf(m)
        return fp / (fp + tn)

    p, u = mask(X, names, priv), mask(X, names, unpriv)
    allm = np.ones(len(X), dtype=bool)
    return {
        "accuracy": acc(allm),
        "accuracy_privileged": acc(p),
        "accuracy_unprivileged": acc(u),
        "equal_opportunity_difference": tpr(u) - tpr(p),
        "average_odds_difference": 0.5 * ((fpr(u) - fpr(p)) + (tpr(u) - tpr(p))),
    }


def case(name, rng, n, names, priv, unpriv, fav, unfav):
    age = rng.integers(0, 2, n).astype(float)
    sex = rng.integers(0, 2, n).astype(float)
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(0, 2, n)
    X = np.column_stack([age, sex, x1, x2])
    # Truth depends on the features, predictions are biased towards age 1.
    score = x1 + 0.5 * x2 + rng.normal(0, 0.5, n)
    truth = np.where(score > 0, fav, unfav).astype(float)
    pred = np.where(score + 0.8 * age - 0.3 > 0, fav, unfav).astype(float)
    return {
        "name": name,
        "feature_names": names,
        "privileged_groups": priv,
        "unprivileged_groups": unpriv,
        "favorable_label": fav,
        "unfavorable_label": unfav,
        "instances": X.tolist(),
        "outputs": pred.tolist(),
        "labels": truth.tolist(),
        "dataset": dataset_metrics(X, pred, names, priv, unpriv, fav, unfav),
        "classification": classification_metrics(X, truth, pred, names, priv, unpriv, fav),
    }


def main():
    rng = np.random.default_rng(13)
    names = ["age", "sex", "x1", "x2"]
    cases = [
        case("age", rng, 120, names, [{"age": 1}], [{"age": 0}], 1.0, 0.0),
        # AIF360's DatasetMetric docstring example: several groups, two attributes.
        case("intersectional", rng, 150, names,
             [{"sex": 1, "age": 0}], [{"sex": 1, "age": 1}, {"sex": 0}], 1.0, 0.0),
        # German credit's raw labels: 1 good (favourable), 2 bad.
        case("labels-1-2", rng, 90, names, [{"sex": 1}], [{"sex": 0}], 1.0, 2.0),
    ]
    with open("../golden.json", "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
