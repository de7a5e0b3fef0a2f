#!/usr/bin/python3
"""Write the .npy fixtures for refdata's tests with NumPy itself.

    /usr/bin/python3 internal/detect/refdata/testdata/gen/gen.py
"""
import os

import numpy as np

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
a = np.array([[1.5, -2.0, 3.25], [4.0, 5.5, -6.75]])
np.save(os.path.join(here, "f8.npy"), a)
np.save(os.path.join(here, "f4_fortran.npy"), np.asfortranarray(a.astype(np.float32)))
np.save(os.path.join(here, "i8_1d.npy"), np.array([3, -1, 7], dtype=np.int64))
np.save(os.path.join(here, "bool.npy"), np.array([[True, False], [False, True]]))
