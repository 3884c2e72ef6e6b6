"""scipy.sparse on demand.

Importing scipy.sparse costs a third of a second or more of every `train` and `serve` start
(scipy's array-API layer clones numpy's namespace, which imports numpy.f2py and numpy.testing),
yet most channels are dense. So nothing here imports it at module level: :func:`issparse` answers
without importing (a matrix cannot be a scipy sparse matrix if scipy.sparse was never imported),
and :func:`sp` imports it the first time sparse data is really built.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def sp() -> ModuleType:
    """The ``scipy.sparse`` module, imported on first use."""
    import scipy.sparse

    return scipy.sparse


def issparse(x: Any) -> bool:
    """``scipy.sparse.issparse(x)`` without importing scipy.sparse when it is not loaded."""
    module = sys.modules.get("scipy.sparse")
    return module is not None and module.issparse(x)
