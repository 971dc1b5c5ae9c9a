"""ADWC, the Alternating Direction Window Curriculum (§8.3, App. 29.2).

Each window opens with the session header and its `<FAC:…>` anchors (App. 29.3), then the direction
header. For every window length k (in turns), the windows sweep forward when k is odd (starts 0, 1, 2, ...,
turns oldest first, numbered [T+0], [T+1], ...) and backward when k is even (starts ..., 2, 1, 0,
turns newest first, [T-0] the latest). Window edges may cut into the first and last turn's text:
mid-utterance cuts are intended, so the model learns to pick up a thought already under way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corpus.schema import Session

from .dfr import check_targets
from .markers import FORWARD_HEADER, REVERSE_HEADER, Piece, session_header, turn_pieces

MAX_WINDOW = 8          # choice: longest window in turns: the sweep is quadratic in it (§8.3 combinatorics)
EDGE_CUT_SHARE = 0.5    # choice: share of windows whose first and last turn are cut mid-text


@dataclass(frozen=True)
class Window:
    k: int
    start: int
    forward: bool
    turns: tuple[int, ...]     # turn indices in the order they appear in the text
    pieces: tuple[Piece, ...]


def direction(k: int) -> bool:
    """True (forward) for odd window lengths, False (reverse) for even ones (App. 29.2)."""
    return k % 2 == 1


def _cut(pieces: list[Piece], rng: np.random.Generator, head: bool) -> list[Piece]:
    """Cut the text of the first (head) or last piece of a turn block part-way through."""
    i = 1 if head else len(pieces) - 1   # skip the turn label at the head
    text = pieces[i].text
    at = int(rng.integers(1, max(2, len(text))))
    cut = Piece(text[at:] if head else text[:at], pieces[i].trainable)
    return pieces[:i] + [cut] + pieces[i + 1:]


def windows(session: Session, targets: frozenset[str] | None = None, max_window: int = MAX_WINDOW,
            seed: int = 0) -> list[Window]:
    """Every ADWC window of length 1..max_window over `session`, in sweep order."""
    check_targets(targets)
    rng = np.random.default_rng(seed)
    n = len(session.turns)
    out = []
    for k in range(1, min(max_window, n) + 1):
        fwd = direction(k)
        starts = range(n - k + 1) if fwd else range(n - k, -1, -1)
        for s in starts:
            order = list(range(s, s + k)) if fwd else list(range(s + k - 1, s - 1, -1))
            blocks = [turn_pieces(session.turns[t], f"[T{'+' if fwd else '-'}{j}]", targets)
                      for j, t in enumerate(order)]
            if k > 1 and rng.random() < EDGE_CUT_SHARE:
                blocks[0] = _cut(blocks[0], rng, head=True)
                blocks[-1] = _cut(blocks[-1], rng, head=False)
            pieces = [Piece(session_header(session) + (FORWARD_HEADER if fwd else REVERSE_HEADER) + "\n", False)]
            for b in blocks:
                pieces += b
            out.append(Window(k, s, fwd, tuple(order), tuple(pieces)))
    return out


def expected_appearances(n: int, t: int, max_window: int = MAX_WINDOW) -> int:
    """How many windows contain turn t of an n-turn session: sum over k of the starts covering t."""
    return sum(min(t, n - k) - max(0, t - k + 1) + 1 for k in range(1, min(max_window, n) + 1))
