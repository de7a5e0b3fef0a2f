#!/usr/bin/python3
"""Golden data for the scikit-learn runtime's text pipelines.

Run with Debian's interpreter from the package directory:

    /usr/bin/python3 testdata/gen/gen_text.py

It fits text pipelines (CountVectorizer, TfidfVectorizer, TfidfTransformer
feeding linear models, as KServe's moviesentiment sample) on a small
synthetic corpus of film reviews made here with a fixed seed, saves each
with joblib under testdata/text/<name>.joblib and writes
testdata/text/<name>.json: the documents and the pipeline's predict
(and predict_proba or decision_function) on them. The documents include
edge cases: empty text, punctuation only, upper case, accents and other
Unicode letters, digits, underscores, tabs and newlines, unknown words.
Floats are written with repr, so they round-trip exactly.
"""
import json
import os
import random

import joblib
import numpy as np
import sklearn
from sklearn import linear_model, pipeline, svm
from sklearn.feature_extraction.text import (CountVectorizer, TfidfTransformer,
                                             TfidfVectorizer)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "text")

GOOD = ["great", "wonderful", "moving", "brilliant", "superb", "charming", "delightful", "gripping",
        "funny", "beautiful", "masterpiece", "clever", "touching", "fresh", "enjoyable"]
BAD = ["boring", "dull", "awful", "terrible", "clumsy", "tedious", "bland", "messy", "weak",
       "predictable", "annoying", "lifeless", "pointless", "worst", "flat"]
NEUTRAL = ["the", "film", "movie", "plot", "acting", "story", "director", "cast", "scenes", "a", "is",
           "was", "and", "but", "with", "of", "it", "this", "very", "quite", "at", "times", "ending",
           "music", "camera", "café", "naïve", "Über", "2019", "sci_fi", "don't", "x"]


def review(rng, label):
    words = []
    for _ in range(rng.randint(4, 14)):
        r = rng.random()
        if r < 0.35:
            pool = GOOD if label == 1 else BAD
        elif r < 0.45:
            pool = BAD if label == 1 else GOOD
        else:
            pool = NEUTRAL
        w = rng.choice(pool)
        if rng.random() < 0.1:
            w = w.upper()
        words.append(w)
    sep = rng.choice([" ", " ", " ", ", ", ". ", "! "])
    return sep.join(words)


def corpus(seed, n):
    rng = random.Random(seed)
    y = [rng.randint(0, 1) for _ in range(n)]
    return [review(rng, l) for l in y], y


EDGE = [
    "", "!!! ... ???", "GREAT Great great", "a film of the worst kind",
    "Café naïve Über caf\u00e9 cafe\u0301 ÜBER", "2019 sci_fi don't won't x y z",
    "tabs\tand\nnewlines   great\t\tfilm", "brilliant! superb!! masterpiece!!!",
    "boring dull awful boring dull awful", "completely unseen words here",
    "the the the the", "Ǆemal ǅemal ǆemal ΣΊΣΥΦΟΣ ß İstanbul",
    "movie-plot acting/story (director) [cast] {scenes}", "great but boring, moving yet tedious",
    "a b c d e f", "héros épique déçu", "worst\u00a0movie\u2003ever great",
]


def fit(name, steps, docs, y, test):
    p = pipeline.Pipeline(steps)
    p.fit(docs, y)
    os.makedirs(OUT, exist_ok=True)
    joblib.dump(p, os.path.join(OUT, name + ".joblib"))
    out = {"sklearn": sklearn.__version__, "X": test}
    pred = p.predict(test)
    if pred.dtype.kind in "OUS":
        out["predict"] = [str(v) for v in pred]
        out["predict_kind"] = "str"
    elif pred.dtype.kind in "iu":
        out["predict"] = [int(v) for v in pred]
        out["predict_kind"] = "int"
    else:
        out["predict"] = [float(v) for v in pred]
        out["predict_kind"] = "float"
    if hasattr(p, "predict_proba"):
        try:
            out["predict_proba"] = p.predict_proba(test).tolist()
        except AttributeError:
            pass
    if hasattr(p, "decision_function"):
        out["decision_function"] = np.asarray(p.decision_function(test)).tolist()
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(out, f, ensure_ascii=False)
    print(name, len(p.steps[0][1].vocabulary_), "terms")
    return p


def main():
    docs, y = corpus(1, 400)
    test, _ = corpus(2, 30)
    test = EDGE + test
    ys = np.array(["neg", "pos", "mixed"])[[(l if i % 7 else 2) for i, l in enumerate(y)]]
    yr = np.array(y, dtype=float) * 2 - 1 + np.array([len(d) for d in docs]) / 100.0

    # KServe's moviesentiment sample: CountVectorizer + LogisticRegression.
    fit("count_logreg", [("vec", CountVectorizer(min_df=1)),
                         ("clf", linear_model.LogisticRegression(solver="liblinear"))], docs, y, test)
    fit("tfidfvec_bigram_logreg", [("vec", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
                                   ("clf", linear_model.LogisticRegression(max_iter=500))], docs, ys, test)
    fit("count_tfidf_linsvc", [("vec", CountVectorizer(binary=True, stop_words=["the", "a", "of", "and"],
                                                       ngram_range=(1, 3), max_features=300)),
                               ("tfidf", TfidfTransformer(norm="l1", smooth_idf=False)),
                               ("clf", svm.LinearSVC(random_state=0))], docs, y, test)
    fit("tfidf_char_wb_ridge", [("vec", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), use_idf=False)),
                                ("reg", linear_model.Ridge(alpha=1.0))], docs, yr, test)
    fit("count_char_sgd", [("vec", CountVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False)),
                           ("tfidf", TfidfTransformer(sublinear_tf=True)),
                           ("clf", linear_model.SGDClassifier(loss="log_loss", random_state=0))], docs, y, test)
    fit("count_english_unigram", [("vec", CountVectorizer(stop_words="english", token_pattern=r"(?u)\b\w+\b",
                                                          strip_accents="unicode")),
                                  ("clf", linear_model.LogisticRegression(solver="liblinear"))], docs, y, test)
    fit("tfidf_ascii_max_df", [("vec", TfidfVectorizer(strip_accents="ascii", max_df=0.5, norm=None)),
                               ("clf", linear_model.LogisticRegression(solver="liblinear"))], docs, y, test)


if __name__ == "__main__":
    main()
