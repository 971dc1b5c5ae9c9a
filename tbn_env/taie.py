"""The three-axis TAIE assessor (§9.3.4): boundaries -> X, validation -> Y, attunement -> Z.

X runs from rigid (-10) to porous (+10) with health at the flexible midpoint 0; Y (self-esteem) and
Z (cherishment) are healthy at +10. The transformation score follows the paper's formula but, as
decided for this project, measures each axis's distance to its *healthy* pole so it rises as the
client heals (`taie_target="literal_zero"` restores the formula as printed).

Only the lightweight (judge-score) mode runs here; the full mode (`tbn_env.taie_full`) blends a judge's
explicit assessment into it through `SessionCore.blend_taie`.
"""
from __future__ import annotations

import numpy as np

from .dimensions import DIM_INDEX
from .params import Params

AXES: tuple[str, ...] = ("x", "y", "z")
AXIS_MIN, AXIS_MAX = -10.0, 10.0           # §9.3.4
HEALTHY_POLE = np.array([0.0, 10.0, 10.0])  # X flexible midpoint, Y robust self-worth, Z cherished (§9.3.4)
AXIS_SPAN = np.array([10.0, 20.0, 20.0])    # largest possible distance to the healthy pole, per axis
AXIS_DIMENSION = ("boundaries", "validation", "attunement")  # §9.3.4
DIRECTIONS: tuple[str, ...] = ("toward_zero", "stable", "away_from_zero")  # §9.3.4
DEGENERATE_DISTANCE = 1e-6  # an initial distance this small means there is nothing left to transform


def distance(axes: np.ndarray, target: str) -> np.ndarray:
    """Distance from health: normalised to [0, 3] (healthy_pole) or sum of |axis| (literal_zero)."""
    axes = np.asarray(axes, dtype=np.float64)
    if target == "literal_zero":
        return np.abs(axes).sum(axis=-1)
    return (np.abs(axes - HEALTHY_POLE) / AXIS_SPAN).sum(axis=-1)


def axis_signal(scores: np.ndarray) -> np.ndarray:
    """The three judge scores behind the axes, centred to [-1, 1]."""
    return np.array([(scores[DIM_INDEX[d]] - 5.0) / 5.0 for d in AXIS_DIMENSION])


class TaieAssessor:
    """Reference TAIE dynamics for one client: axis positions and their full history."""

    def __init__(self, axes: np.ndarray, x_pole: float, params: Params | None = None) -> None:
        self.params = params or Params()
        self.axes = np.array(axes, dtype=np.float64)
        self.x_pole = 1.0 if x_pole >= 0 else -1.0  # the client's pathological side of X (porous +1 / rigid -1)
        self.history: list[np.ndarray] = [self.axes.copy()]
        self.transformation = self._transformation()

    def assess(self, scores: np.ndarray) -> None:
        """Lightweight assessment from one turn's scores (§9.3.4), appended to the history."""
        kappa = self.params.taie_rate
        b, v, a = axis_signal(scores)
        x, y, z = self.axes
        if b >= 0:  # good boundaries pull X toward the midpoint without overshooting it
            x -= np.sign(x) * min(abs(x), kappa * b)
        else:       # poor ones push it further out, to the side it is already on
            x += (np.sign(x) if x != 0 else self.x_pole) * kappa * -b
        y += kappa * v
        z += kappa * a
        self.axes = np.clip(np.array([x, y, z]), AXIS_MIN, AXIS_MAX)
        self.history.append(self.axes.copy())
        self.transformation = self._transformation()

    def _transformation(self) -> float:
        w, target = self.params.taie_bar_window, self.params.taie_target
        d_init = float(distance(np.mean(self.history[:w], axis=0), target))
        d_cur = float(distance(np.mean(self.history[-w:], axis=0), target))
        if d_init < DEGENERATE_DISTANCE:
            return 1.0
        return min(1.0, max(0.0, 1.0 - d_cur / d_init))  # §9.3.4

    def direction(self) -> str:
        """toward_zero / away_from_zero / stable across the last 3 assessments (§9.3.4)."""
        window = self.history[-self.params.taie_bar_window:]
        if len(window) < 2:
            return "stable"
        target = self.params.taie_target
        change = float(distance(window[-1], target) - distance(window[0], target))
        eps = self.params.taie_stable_eps_literal if target == "literal_zero" else self.params.taie_stable_eps
        if abs(change) < eps:
            return "stable"
        return "toward_zero" if change < 0 else "away_from_zero"
