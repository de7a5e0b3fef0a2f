#!/usr/bin/python3
"""Generate golden p-values for internal/detect/stats from SciPy.

Run from the repository root with Debian's SciPy:

    /usr/bin/python3 internal/detect/stats/testdata/gen/gen.py

Samples are not stored: both sides rebuild them from a seed with splitmix64
and integer arithmetic only (sums of uniforms on a dyadic grid), so every
value is exactly representable and Go sees the same numbers as NumPy.
"""
import json
import os

import numpy as np
import scipy
from scipy import stats

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def sample(seed, n, shift, grid):
    """n values: (sum of four 20-bit uniforms - 2) + shift, optionally
    floored to multiples of 2^-grid to create ties."""
    state = seed
    out = []
    for _ in range(n):
        acc = 0
        for _ in range(4):
            state, z = splitmix64(state)
            acc += z >> 44  # 20 bits
        v = acc / float(1 << 20) - 2.0 + shift
        if grid > 0:
            v = np.floor(v * (1 << grid)) / float(1 << grid)
        out.append(v)
    return np.array(out, dtype=np.float64)


def ks_cases():
    specs = [
        # n1 == n2, exact
        (1, 5, 5, 0.0, 0), (2, 50, 50, 0.0, 0), (3, 50, 50, 0.4, 0),
        (4, 500, 500, 0.0, 0), (5, 500, 500, 0.1, 0), (6, 500, 500, 0.5, 3),
        # n1 != n2, exact
        (7, 37, 113, 0.0, 0), (8, 37, 113, 0.6, 0), (9, 1000, 500, 0.05, 0),
        (10, 1000, 500, 0.5, 0), (11, 2000, 300, 0.0, 2), (12, 10000, 500, 0.1, 0),
        (13, 3, 1, 0.0, 0), (14, 1, 1, 0.5, 0), (15, 800, 600, 0.02, 4),
        # asymptotic (max > 10000)
        (16, 12000, 500, 0.0, 0), (17, 12000, 500, 0.1, 0), (18, 12000, 500, 0.5, 0),
        (19, 20000, 60, 0.0, 0), (20, 20000, 60, 0.3, 0), (21, 15000, 15000, 0.0, 0),
        (22, 15000, 15000, 0.03, 0), (23, 11000, 4000, 0.02, 0), (24, 10001, 10, 1.0, 0),
        (25, 30000, 200, 0.0, 5),
    ]
    out = []
    for seed, n1, n2, shift, grid in specs:
        a = sample(seed * 1000 + 1, n1, 0.0, grid)
        b = sample(seed * 1000 + 2, n2, shift, grid)
        r = stats.ks_2samp(a, b)
        out.append({"seed": seed, "n1": n1, "n2": n2, "shift": shift, "grid": grid,
                    "d": float(r.statistic), "p": float(r.pvalue)})
    return out


def kstwo_cases():
    out = []
    for n in [1, 2, 5, 10, 50, 100, 140, 141, 500, 2000, 10000, 150000]:
        for x in [0.001, 0.01, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.5, 0.7, 0.95,
                  0.6 / n, 0.9 / n, 1.5 / n, 3.0 / n, 1 - 0.5 / n]:
            if x <= 0 or x >= 1:
                continue
            out.append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})
    return out


def chi2_cases():
    tables = [
        [[10, 20], [20, 10]],
        [[3, 1], [1, 3]],
        [[100, 0], [99, 1]],
        [[12, 30, 7, 51], [10, 28, 12, 50]],
        [[400, 300, 200, 100], [100, 200, 300, 400]],
        [[5, 5, 5], [5, 5, 5]],
        [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]],
        [[5000, 2500, 2500], [480, 270, 250]],
        [[7], [9]],
        [[7, 9]],
        [[2.5, 3.5], [1, 8]],
    ]
    # a wide table: 60 categories
    state = 77
    wide = [[], []]
    for _ in range(60):
        state, z = splitmix64(state)
        wide[0].append(int(z % 50) + 1)
        state, z = splitmix64(state)
        wide[1].append(int(z % 50) + 1)
    tables.append(wide)
    out = []
    for t in tables:
        r = stats.chi2_contingency(np.array(t, dtype=np.float64))
        out.append({"table": t, "stat": float(r[0]), "p": float(r[1]), "dof": int(r[2])})
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    golden = {
        "generator": "testdata/gen/gen.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "ks_2samp": ks_cases(),
        "kstwo_sf": kstwo_cases(),
        "chi2_contingency": chi2_cases(),
    }
    path = os.path.join(os.path.dirname(here), "golden.json")
    with open(path, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
