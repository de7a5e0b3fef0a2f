#!/usr/bin/python3
"""Time Debian's libxgboost on the batch Ferry's Go benchmarks use.

    /usr/bin/python3 bench_libxgboost.py [--write] [--threads N] [--rows R]
        [--min-time S] [--once]

--write trains the ~100-tree benchmark model (binary:logistic, depth 5, 20
features) and saves it to ../bench/model.ubj.gz (gzip keeps the repository
small; the Go benchmarks unzip it); without it the saved model is loaded. The 100 000-row batch comes from the same generator as
benchInput in bench_test.go (a 64-bit LCG, about 2% NaN), and the script
prints ns/row for Booster.inplace_predict at batch 1 and 100k rows with N
threads (default 1; Go's benchmark uses GOMAXPROCS goroutines). --once
predicts the --rows batch once, untimed, for callgrind (bench/xgbref/run.sh).
bench/xgbref prints the same lines for Ferry.
"""
import argparse
import gzip
import os
import sys
import tempfile
import time

import numpy as np

if "--once" in sys.argv:
    # Under valgrind scipy's boost ufuncs fail to initialise; xgboost
    # imports scikit-learn (and so scipy) only for its sklearn wrappers.
    sys.modules["sklearn"] = None
import xgboost as xgb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "bench")
FEATURES = 20
MASK = (1 << 64) - 1


def bench_input(rows, cols):
    """Mirror of benchInput in bench_test.go."""
    out = np.empty(rows * cols, dtype=np.float32)
    s = 1
    for i in range(rows * cols):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        top = s >> 40
        out[i] = np.nan if top % 50 == 0 else np.float32(top / float(1 << 24) * 4 - 2)
    return out.reshape(rows, cols)


def train():
    rng = np.random.default_rng(42)
    x = rng.uniform(-2, 2, size=(4000, FEATURES)).astype(np.float32)
    x[rng.random(x.shape) < 0.02] = np.nan
    z = np.nan_to_num(x)
    y = (z[:, 0] * z[:, 1] + np.sin(3 * z[:, 2]) - z[:, 3] + 0.3 * rng.normal(size=len(z)) > 0).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 5, "eta": 0.1, "tree_method": "hist", "seed": 1}
    b = xgb.train(params, xgb.DMatrix(x, label=y), 100)
    os.makedirs(BENCH, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "model.ubj")
        b.save_model(p)
        with open(p, "rb") as f, gzip.GzipFile(os.path.join(BENCH, "model.ubj.gz"), "wb", 9, mtime=0) as g:
            g.write(f.read())
    return b


def load():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "model.ubj")
        with gzip.open(os.path.join(BENCH, "model.ubj.gz"), "rb") as g, open(p, "wb") as f:
            f.write(g.read())
        return xgb.Booster(model_file=p)


def per_row(fn, rows, min_time=2.0):
    """Wall and process CPU ns per row (CPU time is steadier on a busy
    machine; with several threads it sums over them)."""
    fn()  # warm up
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - start
        if el >= min_time:
            return el / n / rows * 1e9, (time.process_time() - cpu) / n / rows * 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--once", action="store_true")
    a = ap.parse_args()
    b = train() if a.write else load()
    b.set_param({"nthread": a.threads})
    x = bench_input(a.rows, FEATURES)
    print(f"libxgboost {xgb.__version__}, {a.threads} thread(s), {len(b.get_dump())} trees")
    if a.once:
        b.inplace_predict(x)
        return
    for batch in (x[:1], x):
        wall, cpu = per_row(lambda: b.inplace_predict(batch), len(batch), a.min_time)
        print(f"inplace_predict batch {len(batch):>6}: {wall:10.0f} ns/row wall, {cpu:10.0f} ns/row CPU")
    print(f"first predictions: {b.inplace_predict(x[:3])}")


if __name__ == "__main__":
    main()
