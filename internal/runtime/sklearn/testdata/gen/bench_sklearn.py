"""Time scikit-learn's own predict on the benchmark forest (issue 15's
reference: Ferry's sklearn runtime must be >= 3x scikit-learn's predict).

Run with Debian's interpreter, one thread, beside the Go benchmark:
  OMP_NUM_THREADS=1 /usr/bin/python3 internal/runtime/sklearn/testdata/gen/bench_sklearn.py
  GOMAXPROCS=1 go test -run '^$' -bench RandomForest100 -cpu 1 ./internal/runtime/sklearn/
Reports CPU time per row (process_time), as the Go side's cpu-ns figures.
"""
import os
import time

import joblib
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
m = joblib.load(os.path.join(here, "..", "models", "bench_rf100.zlib.joblib"))
m.set_params(n_jobs=1)
rng = np.random.default_rng(1)
for batch, reps in ((1, 300), (10000, 3)):
    x = rng.standard_normal((batch, m.n_features_in_))
    for name in ("predict", "predict_proba"):
        f = getattr(m, name)
        f(x)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            f(x)
        wall = (time.perf_counter() - t0) / (reps * batch)
        cpu = (time.process_time() - c0) / (reps * batch)
        print(f"batch={batch} {name}: {cpu * 1e9:.0f} ns/row CPU ({wall * 1e9:.0f} ns/row wall)")
