"""The rgb_array rendering of Therapy-v0: buckets, coiling, phase and stage over the episode."""
from __future__ import annotations

import numpy as np

FIGSIZE = (6.4, 4.0)  # inches; at 100 dpi a 640 x 400 frame
DPI = 100


def plot_trace(trace: list[dict[str, float]]) -> np.ndarray:
    """Draw the per-turn trace with matplotlib (Agg) and return an RGB uint8 array [H, W, 3]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    turns = np.arange(1, len(trace) + 1)
    series = {k: [t[k] for t in trace] for k in ("maladaptive", "adaptive", "coiling", "phase", "stage")}
    top.plot(turns, series["maladaptive"], color="tab:red", label="maladaptive buckets")
    top.plot(turns, series["adaptive"], color="tab:green", label="adaptive buckets")
    top.plot(turns, series["coiling"], color="tab:purple", label="coiling")
    top.set_ylim(0, 1)
    top.legend(loc="upper right", fontsize=7)
    bottom.step(turns, series["phase"], where="post", color="tab:blue", label="phase (A-D)")
    bottom.step(turns, [s - 1 for s in series["stage"]], where="post", color="tab:orange", label="stage (1-4)")
    bottom.set_yticks(range(4), ["A / 1", "B / 2", "C / 3", "D / 4"])
    bottom.set_ylim(-0.2, 3.2)
    bottom.set_xlabel("turn")
    bottom.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
