"""The real `xgboost` library, imported once and checked.

This package is `algorithms.xgboost`; with absolute imports `import xgboost` finds the library,
not this package, unless a folder named `xgboost` sits on sys.path first (say, a job started
with its working directory inside `algorithms/`). The check turns that into a clear error
instead of an AttributeError deep in training.

XGBoost's import also imports scikit-learn when it is installed (for its scikit-learn wrappers,
which the algorithm never uses); that costs seconds per training job and endpoint start, so it is
hidden from that one import check and importable again right after.

OpenMP threads wait passively: training hosts and endpoints share this machine's cores with
each other and with smlocal, and spinning waiters make XGBoost many times slower when cores are
busy (set OMP_WAIT_POLICY yourself to override).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when the OpenMP runtime loads


def _import_xgboost():
    hide = "sklearn" not in sys.modules
    if hide:
        sys.modules["sklearn"] = None  # `import sklearn` raises ImportError: XGBoost skips its wrappers
    try:
        import xgboost
    finally:
        if hide:
            del sys.modules["sklearn"]
    return xgboost


xgb = _import_xgboost()

if not hasattr(xgb, "train") or not hasattr(xgb, "DMatrix"):  # pragma: no cover - a broken sys.path
    raise ImportError(f"`import xgboost` found {getattr(xgb, '__file__', xgb)!r}, not the XGBoost library; "
                      "remove the folder that shadows it from sys.path")

TrainingCallback = xgb.callback.TrainingCallback
XGBoostError = xgb.core.XGBoostError
