"""From second moments to principal components, in SageMaker's artifact order.

Regular mode takes the exact eigen-decomposition of the d × d scatter matrix (what
scikit-learn's ``covariance_eigh`` solver does for tall data). Randomized mode runs the randomized
range finder with power iterations (Halko, Martinsson & Tropp, 2011; scikit-learn's
``randomized_svd``) on that matrix while it is affordable; for wider data it never forms it: the
single-pass Nyström approximation (Tropp, Yurtsever, Udell & Cevher, 2017) recovers the top
eigenpairs from the sketch ``Y = M2·Ω`` alone, so it streams, merges across hosts and works for
wide sparse data (accurate when the spectrum decays past ``num_components + extra_components``).

Singular values are those of the (centred) data matrix, ``s = sqrt(eigenvalue)``, as
``sklearn.decomposition.PCA.singular_values_``. Components are returned in ascending order of
``s`` (the top component last), as SageMaker's ``model_algo-1`` stores them, with scikit-learn's
sign convention (the largest-magnitude entry of every component positive).
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits


@functools.lru_cache(maxsize=1)
def _syevr():
    """(dsyevr, dsyevr_lwork): scipy's own f2py wrappers of LAPACK's MRRR eigensolver, the
    driver ``scipy.linalg.eigh(driver="evr")`` calls. Importing scipy.linalg costs 0.25-0.45 s
    (its package pulls in the array-API compatibility layer and the rest of scipy.linalg),
    more than the whole eigensolve; the extension module holding the wrappers needs only
    numpy and loads in 0.015 s, so it is loaded by itself from scipy's linalg folder. If scipy
    lays its files out otherwise, scipy.linalg.lapack is imported as usual."""
    module = sys.modules.get("scipy.linalg._flapack")
    if module is None:
        try:
            import scipy

            folder = Path(scipy.__file__).parent / "linalg"
            [path] = [folder / f"_flapack{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES
                      if (folder / f"_flapack{suffix}").is_file()][:1]
            spec = importlib.util.spec_from_file_location("scipy.linalg._flapack", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - any layout surprise: the ordinary import
            from scipy.linalg import lapack as module
    return module.dsyevr, module.dsyevr_lwork


def regular(scatter: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(s ascending, v d × k) of a symmetric PSD scatter matrix: only the top k eigenpairs are
    computed (LAPACK's MRRR driver, dsyevr), several times faster than the full decomposition.
    The call is the one ``scipy.linalg.eigh(scatter, subset_by_index=[d - k, d - 1],
    driver="evr")`` makes (lower triangle, the optimal workspace), without its import."""
    syevr, syevr_lwork = _syevr()
    scatter = np.asarray(scatter, np.float64)
    if not np.isfinite(scatter).all():
        raise ValueError("the scatter matrix holds infinite or NaN values")
    d = scatter.shape[0]
    work, iwork, info = syevr_lwork(d, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dsyevr's workspace query failed ({info})")
    # One BLAS thread: LAPACK's tridiagonal reduction of a d × d matrix (d in the hundreds or
    # low thousands) works on small blocks, where OpenBLAS threads mostly wait on each other;
    # on the busy 2-core bench machine 784 × 784 took 0.6-1.6 s threaded, 0.07-0.11 s not.
    with threadpool_limits(limits=1, user_api="blas"):
        eigenvalues, eigenvectors, found, _, info = syevr(scatter, compute_v=1, range="I", lower=1, il=d - k + 1,
                                                          iu=d, lwork=int(work), liwork=int(iwork))
    if info != 0:
        raise np.linalg.LinAlgError(f"dsyevr did not converge ({info})")
    return _finish(eigenvalues[:found], eigenvectors[:, :found])


def randomized_dense(scatter: np.ndarray, k: int, width: int, seed: int, power_iterations: int = 7):
    """(s ascending, v d × k) of a PSD scatter matrix by a randomized range finder of `width`."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(scatter @ rng.standard_normal((scatter.shape[0], width)))[0]
    for _ in range(power_iterations):
        basis = np.linalg.qr(scatter @ basis)[0]
    values, vectors = np.linalg.eigh(basis.T @ scatter @ basis)
    return _finish(values[-k:], basis @ vectors[:, -k:])


def randomized(sketch: np.ndarray, omega: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(s ascending, v d × k) from ``sketch = A·Ω`` of a PSD matrix A (Nyström, stabilised)."""
    shift = np.finfo(np.float64).eps * max(np.linalg.norm(sketch), 1e-300) * np.sqrt(sketch.shape[0])
    shifted = sketch + shift * omega
    core = omega.T @ shifted
    values, vectors = np.linalg.eigh((core + core.T) / 2)
    keep = values > values.max() * 1e-12 if values.max() > 0 else np.zeros_like(values, bool)
    factor = shifted @ (vectors[:, keep] / np.sqrt(values[keep]))
    u, sigma, _ = np.linalg.svd(factor, full_matrices=False)
    eigenvalues = np.maximum(sigma**2 - shift, 0.0)
    u, eigenvalues = _pad(u, eigenvalues, sketch.shape[0], k)
    return _finish(eigenvalues[:k][::-1], u[:, :k][:, ::-1])


def _pad(u: np.ndarray, eigenvalues: np.ndarray, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-deficient data: complete with orthonormal directions of zero variance."""
    if u.shape[1] >= k:
        return u, eigenvalues
    filler = np.random.default_rng(0).standard_normal((d, k - u.shape[1]))
    rest = np.linalg.qr(np.concatenate([u, filler], axis=1))[0][:, u.shape[1]:]
    return np.concatenate([u, rest], axis=1), np.concatenate([eigenvalues, np.zeros(k - u.shape[1])])


def _finish(eigenvalues: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.sqrt(np.maximum(eigenvalues, 0.0))
    biggest = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[biggest, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return s, vectors * signs
