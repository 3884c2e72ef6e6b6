"""The optimizers Linear Learner offers (adam, sgd with momentum, rmsprop), updating all models'
parameters in one set of numpy operations.

Parameters are (rows, models * outputs) matrices; every column belongs to one model, so each
model's learning rate, L2 weight decay (`wd`, added to the gradient as MXNet does) and L1 penalty
(a proximal soft-threshold after the step) are per-column vectors. The learning-rate scheduler
multiplies every rate by `lr_scheduler_factor` each `lr_scheduler_step` updates, never below
`lr_scheduler_minimum_lr`.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-8


class Optimizer:
    def __init__(self, settings, learning_rates: np.ndarray, wds: np.ndarray, l1s: np.ndarray, steps_per_epoch: int):
        self.kind = settings.optimizer
        self.beta_1, self.beta_2, self.momentum = settings.beta_1, settings.beta_2, settings.momentum
        self.rates, self.wds, self.l1s = learning_rates, wds, l1s
        self.scheduled = settings.use_lr_scheduler
        self.every = steps_per_epoch if settings.lr_step == "auto" else settings.lr_step
        self.factor, self.minimum = settings.lr_factor, settings.lr_minimum
        self.t = 0
        self._state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # Per-step work that only changes when the schedule does (a step is a few microseconds
        # of arithmetic on a small matrix, so each avoided numpy call counts): the scheduled
        # rates per period, each parameter's weight decay and step rates, whether L1 is on.
        self._period: tuple[int, np.ndarray] | None = None
        self._decay: dict[str, np.ndarray | None] = {}
        self._step_rates: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._l1 = bool(np.any(l1s))

    def tick(self) -> np.ndarray:
        """Advance one update; the learning rates (per column) for it."""
        self.t += 1
        if not self.scheduled:
            return self.rates
        period = (self.t - 1) // self.every
        if self._period is None or self._period[0] != period:
            decay = self.factor ** period
            self._period = (period, np.maximum(self.rates * decay, np.minimum(self.rates, self.minimum)))
        return self._period[1]

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, rates: np.ndarray,
               wd_mult=1.0, lr_mult=1.0, l1_rows: int | None = None) -> None:
        """One in-place step of ``param`` (rows, columns) given its gradient. ``wd_mult`` and
        ``lr_mult`` are scalars or per-row column vectors (rows, 1), so that the weights and the
        bias (a last row with its own multipliers) take one step together; the L1 step applies
        to the first ``l1_rows`` rows (None: all)."""
        if name not in self._state:  # not setdefault: it would allocate two zero arrays every step
            self._state[name] = (np.zeros_like(param), np.zeros_like(param))
            self._decay[name] = self.wds * wd_mult if np.any(wd_mult) else None  # the same per name
        if self._decay[name] is not None:
            grad = grad + self._decay[name] * param
        cached = self._step_rates.get(name)
        if cached is None or cached[0] is not rates:
            cached = self._step_rates[name] = (rates, rates * lr_mult)
        step_rates = cached[1]
        first, second = self._state[name]
        if self.kind == "adam":
            first *= self.beta_1
            first += (1 - self.beta_1) * grad
            second *= self.beta_2
            second += (1 - self.beta_2) * grad * grad
            correction = np.sqrt(1 - self.beta_2 ** self.t) / (1 - self.beta_1 ** self.t)
            param -= (step_rates * correction) * first / (np.sqrt(second) + EPSILON)
        elif self.kind == "rmsprop":
            second *= 0.9
            second += 0.1 * grad * grad
            param -= step_rates * grad / (np.sqrt(second) + EPSILON)
        else:  # sgd with momentum
            first *= self.momentum
            first -= step_rates * grad
            param += first
        if self._l1 and l1_rows != 0:
            rows = slice(None) if l1_rows is None else slice(0, l1_rows)
            shrink = (step_rates if np.ndim(step_rates) < 2 else step_rates[rows]) * self.l1s
            np.copyto(param[rows], np.sign(param[rows]) * np.maximum(np.abs(param[rows]) - shrink, 0.0))
