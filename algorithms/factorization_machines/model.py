"""A 2-way factorization machine in numpy, trained with Adam by mini-batch, sparse-aware.

    ŷ(x) = w0 + Σ_i w_i x_i + ½ Σ_f [ (Σ_i v_if x_i)² − Σ_i v_if² x_i² ]

(Rendle 2010, the O(k·nnz) form). Each parameter group (bias, linear, factors) has its own
learning rate and weight decay, as SageMaker's hyperparameters give them. On a sparse batch
only the rows of `w` and `V` for features present in it are read and updated ("lazy" Adam, as
MXNet's sparse optimizers do), so a step costs O(nnz·k) however large `feature_dim` is; weight
decay is applied to the rows a batch touches. Adam is our choice: SageMaker documents `eps`
and `clip_gradient` for its optimizer but not which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.io.sparse import CSR, issparse

EPSILON = 1e-8
BETA_1, BETA_2 = 0.9, 0.999


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) without overflow, and exact in the tails (tiny scores keep their digits)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


GROUPS = ("bias", "linear", "factors")


@dataclass
class FMParams:
    w0: np.ndarray  # (1,)
    w: np.ndarray  # (d,)
    v: np.ndarray  # (d, k)
    table: np.ndarray | None = None  # see stacked()

    @classmethod
    def stacked(cls, w0: np.ndarray, w: np.ndarray, v: np.ndarray) -> "FMParams":
        """The parameters as views of one (d + 1, k + 1) float32 `table`: row i < d is
        [w_i, V_i], row d is [w0, 0, …, 0]. The dense step then multiplies a batch by the table
        and takes one optimizer step on it, instead of copying [w V] together and stepping
        three groups (the zeros get zero gradients and never move)."""
        d, k = v.shape
        table = np.zeros((d + 1, k + 1), np.float32)
        table[:d, 0], table[:d, 1:], table[d, 0] = w, v, w0[0]
        return cls(table[d, :1], table[:d, 0], table[:d, 1:], table)

    def compact(self) -> "FMParams":
        """Contiguous copies of w0, w and V, without the table."""
        return FMParams(self.w0.copy(), np.ascontiguousarray(self.w), np.ascontiguousarray(self.v))

    def predict_raw(self, features) -> np.ndarray:
        """ŷ for a batch (ndarray or CSR), chunked to bound memory."""
        out = []
        for start in range(0, features.shape[0], 50_000):
            x = features[start:start + 50_000]
            if isinstance(x, CSR):
                out.append(_plain_forward(x, self.w0, self.w, self.v))
            else:
                out.append(_forward(x, _squared(x), self.w0, self.w, self.v)[0])
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def _squared(x):
    return x.multiply(x).tocsr() if issparse(x) else x * x


def _forward(x, x2, w0, w, v):
    xv = np.asarray(x @ v)
    # Σ_f Σ_i v_if² x_i² = x² · (Σ_f v_if²): one matrix-vector product, not k of them
    squares = np.asarray(x2 @ np.einsum("ij,ij->i", v, v)).ravel()
    interactions = 0.5 * (np.einsum("ij,ij->i", xv, xv) - squares)
    return (w0[0] + np.asarray(x @ w).ravel() + interactions).astype(np.float32), xv


def _plain_forward(x: CSR, w0, w, v) -> np.ndarray:
    """:func:`_forward` on a plain CSR, in per-record segment sums (no scipy)."""
    first, last = x.indptr[0], x.indptr[-1]
    data, cols = x.data[first:last], x.indices[first:last]
    indptr, counts = x.indptr - first, np.diff(x.indptr)
    xv = _per_record(data[:, None] * np.take(v, cols, axis=0), indptr, counts)
    linear = _per_record(data * np.take(w, cols), indptr, counts)
    squares = _per_record(data * data * np.take(np.einsum("ij,ij->i", v, v), cols), indptr, counts)
    return (w0[0] + linear + 0.5 * (np.einsum("ij,ij->i", xv, xv) - squares)).astype(np.float32)


def initial(shape, method: str, hp: dict, group: str, rng) -> np.ndarray:
    if method == "constant":
        return np.full(shape, hp[f"{group}_init_value"] or 0.0, np.float32)
    if method == "uniform":
        scale = hp[f"{group}_init_scale"] if hp[f"{group}_init_scale"] is not None else hp[f"{group}_init_sigma"]
        return rng.uniform(-scale, scale, shape).astype(np.float32)
    return rng.normal(0.0, hp[f"{group}_init_sigma"], shape).astype(np.float32)


class Adam:
    """Adam moments per parameter group; `rows` limits an update to some rows (lazy update).
    Updates run in place on the gathered rows (or the whole group): a step over a few thousand
    rows is memory traffic, and every temporary is another pass over it."""

    def __init__(self, params: FMParams, hp: dict):
        self.hp, self.t = hp, 0
        self.eps = hp["eps"] or EPSILON
        self.moments = {name: (np.zeros_like(a), np.zeros_like(a)) for name, a in
                        (("bias", params.w0), ("linear", params.w), ("factors", params.v))}
        if params.table is not None:  # per entry of the table: its group (0 bias, 1 linear, 2 factors)
            group = np.full(params.table.shape, 2, np.intp)
            group[:, 0], group[-1] = 1, 0
            self.table_group = group
            self.table_wd = np.array([np.float32(hp[f"{g}_wd"]) for g in GROUPS], np.float32)[group]
            self.moments["table"] = (np.zeros_like(params.table), np.zeros_like(params.table))

    def step(self, group: str, param: np.ndarray, grad: np.ndarray, rows=None) -> None:
        """``grad`` (float32, owned by the caller, overwritten) for ``param`` or its ``rows``."""
        hp = self.hp
        current = _rows(param, rows)
        grad += np.float32(hp[f"{group}_wd"]) * current
        if hp["clip_gradient"]:
            np.clip(grad, -hp["clip_gradient"], hp["clip_gradient"], out=grad)
        first, second = self.moments[group]
        m, s = _rows(first, rows), _rows(second, rows)
        m *= np.float32(BETA_1)
        m += np.float32(1 - BETA_1) * grad
        s *= np.float32(BETA_2)
        grad *= grad
        s += np.float32(1 - BETA_2) * grad
        rate = hp[f"{group}_lr"] * np.sqrt(1 - BETA_2 ** self.t) / (1 - BETA_1 ** self.t)
        step = np.sqrt(s)
        step += np.float32(self.eps)
        np.divide(m, step, out=step)
        step *= np.float32(rate)
        current -= step
        if rows is not None:  # gathered copies: write them back
            first[rows], second[rows], param[rows] = m, s, current

    def step_table(self, table: np.ndarray, grad: np.ndarray) -> None:
        """:meth:`step` for every group at once on a stacked table (see FMParams.stacked): the
        same float32 operations per entry, with each entry's group's weight decay and rate."""
        hp = self.hp
        grad += self.table_wd * table
        if hp["clip_gradient"]:
            np.clip(grad, -hp["clip_gradient"], hp["clip_gradient"], out=grad)
        m, s = self.moments["table"]
        m *= np.float32(BETA_1)
        m += np.float32(1 - BETA_1) * grad
        s *= np.float32(BETA_2)
        grad *= grad
        s += np.float32(1 - BETA_2) * grad
        rates = np.array([hp[f"{g}_lr"] * np.sqrt(1 - BETA_2 ** self.t) / (1 - BETA_1 ** self.t) for g in GROUPS],
                         np.float32)  # each as step() computes it
        step = np.sqrt(s)
        step += np.float32(self.eps)
        np.divide(m, step, out=step)
        step *= rates[self.table_group]
        table -= step


def _rows(array: np.ndarray, rows) -> np.ndarray:
    """``array[rows]`` (all of it for None); np.take gathers rows several times faster."""
    return array if rows is None else np.take(array, rows, axis=0)


def _loss_gradient(raw: np.ndarray, y: np.ndarray, binary: bool, hp: dict) -> np.ndarray:
    """d loss / d ŷ per record, scaled as MXNet's rescale_grad (default 1 / batch size)."""
    g = (sigmoid(raw) if binary else raw) - y
    g = g * hp["rescale_grad"] if hp["rescale_grad"] else g / len(y)
    return g.astype(np.float32)


def dense_step(params: FMParams, adam: Adam, x: np.ndarray, y: np.ndarray, binary: bool) -> np.ndarray:
    """The dense step on a stacked table (FMParams.stacked) in two matrix products: x·[w V]
    forward and [g, g⊙xV]ᵀ·x backward (plus two matrix-vector products for the squared terms),
    and one optimizer step for all three groups."""
    table, d = params.table, params.v.shape[0]
    if table is None:
        raise ValueError("dense_step needs the parameters as FMParams.stacked")
    forward = x @ table[:d]
    xv = forward[:, 1:]
    x2 = x * x
    squares = x2 @ np.einsum("ij,ij->i", params.v, params.v)
    raw = (params.w0[0] + forward[:, 0] + 0.5 * (np.einsum("ij,ij->i", xv, xv) - squares)).astype(np.float32)
    g = _loss_gradient(raw, y, binary, adam.hp)
    back = forward  # not needed any more: becomes [g, g⊙xV] in place
    np.multiply(g[:, None], xv, out=back[:, 1:])
    back[:, 0] = g
    grads = np.empty_like(table)
    grads[:d] = (back.T @ x).T  # (d, k + 1): ∂/∂w and the first term of ∂/∂V (the faster BLAS layout of xᵀ·back)
    grads[:d, 1:] -= params.v * (x2.T @ g)[:, None]
    grads[d] = 0.0
    grads[d, 0] = g.sum()
    adam.t += 1
    adam.step_table(table, grads)
    return raw


def sparse_step(params: FMParams, adam: Adam, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                y: np.ndarray, binary: bool) -> np.ndarray:
    """The sparse step on a CSR batch's arrays, in numpy segment sums: per record (rows are
    contiguous in CSR order) and per feature (after one sort of the batch's column indices).
    Only the rows of w and V for the features present are read and updated. Building scipy
    matrices per mini-batch cost more than the arithmetic (index-dtype checks, constructors)."""
    n, nnz = len(indptr) - 1, len(indices)
    counts = np.diff(indptr)
    record = np.repeat(np.arange(n), counts)
    by_column = np.argsort(indices, kind="stable")
    ordered = indices[by_column]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1]))) if nnz else np.zeros(0, np.intp)
    columns = ordered[starts]
    local = np.empty(nnz, np.intp)
    local[by_column] = np.repeat(np.arange(len(columns)), np.diff(np.append(starts, nnz)))
    w, v = np.take(params.w, columns), np.take(params.v, columns, axis=0)
    x_v = data[:, None] * np.take(v, local, axis=0)  # (nnz, k): x_i v_if per non-zero
    xv = _per_record(x_v, indptr, counts)
    linear = _per_record(data * np.take(w, local), indptr, counts)
    squares = _per_record(data * data * np.take(np.einsum("ij,ij->i", v, v), local), indptr, counts)
    raw = (params.w0[0] + linear + 0.5 * (np.einsum("ij,ij->i", xv, xv) - squares)).astype(np.float32)
    g = _loss_gradient(raw, y, binary, adam.hp)
    g_x = data * np.take(g, record)
    terms = np.empty((nnz, v.shape[1] + 2), np.float32)  # per non-zero: g·x, g·x², g·x·xV
    terms[:, 0], terms[:, 1] = g_x, g_x * data
    np.multiply(g_x[:, None], np.take(xv, record, axis=0), out=terms[:, 2:])
    sums = np.add.reduceat(terms[by_column], starts, axis=0) if nnz else terms[:0]
    adam.t += 1
    adam.step("bias", params.w0, np.array([g.sum()], np.float32))
    adam.step("linear", params.w, np.ascontiguousarray(sums[:, 0]), columns)
    adam.step("factors", params.v, sums[:, 2:] - v * sums[:, 1:2], columns)
    return raw


def _per_record(values: np.ndarray, indptr: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (one entry or row per non-zero, in CSR order) per record."""
    out = np.zeros((len(counts),) + values.shape[1:], np.float32)
    filled = counts > 0
    if filled.any():
        out[filled] = np.add.reduceat(values, indptr[:-1][filled], axis=0)
    return out
