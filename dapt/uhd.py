"""UHD, Universal Hierarchical Direction (§8.1, App. 29.3): expanding prefixes with hierarchical markers.

Each prefix opens with the session header and the client profile summary (App. 29.3). For a
session of N turns, N samples: turn 1, turns 1-2, ..., turns 1-N. Every turn thus appears in
every temporal position from "just said" to "long ago". No sliding windows: they made the same
tokens recur at shifted positions and overfit (§8.1).
"""
from __future__ import annotations

from corpus.schema import Session

from .dfr import check_targets
from .markers import Piece, client_line, session_header, turn_pieces


def expand(session: Session, targets: frozenset[str] | None = None) -> list[list[Piece]]:
    """The N expanding prefixes of `session`, each a list of pieces."""
    check_targets(targets)
    header = Piece(session_header(session) + client_line(session), False)
    prefix: list[Piece] = [header]
    out = []
    for t in session.turns:
        prefix = prefix + turn_pieces(t, f"[TURN {t.index}]", targets)
        out.append(prefix)
    return out
