"""TMoG, the therapist's model of the client graph (§9.3.14.1).

A noisy copy of the true levels made at reset. Each turn it closes part of the gap to the truth at a
rate set by the judge's attunement score, and a misattuned turn (< 3.5) deepens the misreading: every
node's estimate takes a random-sized step away from the truth.
Its accuracy, 1 - mean |TMoG - actual| on levels normalised to [0, 1], stays in [0, 1].
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .dimensions import DIM_INDEX
from .graph import LEVEL_MAX, LEVEL_MIN
from .params import LOW_THRESHOLD, Params


def convergence_rate(attunement: float | np.ndarray, params: Params) -> float | np.ndarray:
    """eta(a) = clip(0.05 + 0.15 (a - 5)/5, 0, 0.2): better attunement, faster convergence."""
    eta = params.tmog_eta_base + params.tmog_eta_slope * (np.asarray(attunement) - 5.0) / 5.0
    return np.minimum(np.maximum(eta, 0.0), params.tmog_eta_max)


def misreading(estimate: np.ndarray, actual: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """A misattuned turn's step: |noise| x sigma away from the truth (the noise's sign where the two agree)."""
    away = np.sign(estimate - actual)
    return sigma * np.abs(noise) * np.where(away != 0, away, np.sign(noise))


def accuracy(estimate: np.ndarray, actual: np.ndarray) -> float | np.ndarray:
    """1 - mean |estimate - actual| / 10, in [0, 1] (§9.3.14.1 with normalised levels)."""
    return 1.0 - np.mean(np.abs(estimate - actual), axis=-1) / LEVEL_MAX


class TMoG:
    """Reference TMoG for one client."""

    def __init__(self, estimate: np.ndarray, params: Params | None = None) -> None:
        self.params = params or Params()
        self.estimate = np.array(estimate, dtype=np.float64)

    def update(self, actual: np.ndarray, scores: np.ndarray, noise: np.ndarray) -> None:
        """Converge toward `actual` by eta(attunement); misread further when attunement < 3.5."""
        a = scores[DIM_INDEX["attunement"]]
        eta = float(convergence_rate(a, self.params))
        for i in range(len(self.estimate)):
            value = self.estimate[i] + eta * (actual[i] - self.estimate[i])
            if a < LOW_THRESHOLD:
                value += float(misreading(value, actual[i], noise[i], self.params.tmog_noise_sigma))
            self.estimate[i] = min(LEVEL_MAX, max(LEVEL_MIN, value))

    def worst_misread(self, actual: np.ndarray, nodes: tuple[str, ...]) -> list[tuple[str, float]]:
        """The k nodes where the estimate is furthest from the truth, with the signed error."""
        return worst_misreads(self.estimate[None], actual[None], nodes, self.params.tmog_worst_k)[0]


def worst_misreads(estimate: np.ndarray, actual: np.ndarray, nodes: tuple[str, ...],
                   k: int) -> list[list[tuple[str, float]]]:
    """Per client ([B, N] estimates and truths), the k nodes misread most, with the signed error
    (the largest |error| first; of equal errors, the earlier node)."""
    err = np.ascontiguousarray(estimate - actual)
    order = largest_first(err, min(k, err.shape[1]))
    picked = err[np.arange(len(err))[:, None], order]
    return [[(nodes[j], e) for j, e in zip(o, p)] for o, p in zip(order.tolist(), picked.tolist())]


@njit(cache=True)
def largest_first(err, k):
    """Per row of `err` ([B, N]), the indices of the k largest |err| in decreasing order, ties to the lower
    index (a stable argsort's order): one pass over the row keeping the k best in order, not a sort."""
    b, n = err.shape
    out = np.empty((b, k), dtype=np.int64)
    best = np.empty(k)
    for i in range(b):
        kept = 0
        for j in range(n):
            a = abs(err[i, j])
            if kept == k and a <= best[k - 1]:
                continue   # not above the k-th: an equal error keeps the earlier node
            r = min(kept, k - 1)
            while r > 0 and a > best[r - 1]:   # shift the smaller ones down one place
                best[r], out[i, r] = best[r - 1], out[i, r - 1]
                r -= 1
            best[r], out[i, r] = a, j
            kept = min(kept + 1, k)
    return out
