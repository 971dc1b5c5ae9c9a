"""Generated text → (thought, utterance), and the hard checks a turn must pass.

Parsing uses the env's own parser (``tbn_env.turn_format``) so the trainer and the env agree on
what was thought and what was said; the hard checks are ``tbn_env.validators`` (Appendix 31
failures) plus "nothing was said".
"""

from __future__ import annotations

from tbn_env.spaces import MAX_ACTION_CHARS, printable
from tbn_env.turn_format import parse_therapist_turn
from tbn_env.validators import validate_utterance

# The env refuses an empty utterance; a generation that says nothing is committed as a silence
# (attentive silence is itself a therapeutic move), and counted in the metrics.
SILENCE = "…"
EMPTY = "empty_utterance"  # failure name when a turn says nothing


def split_turn(text: str) -> tuple[str, str]:
    """(thought, utterance) of a generated turn, fitted to the env's text space: control characters
    dropped (the env refuses them), stripped, clipped to the action limit."""
    turn = parse_therapist_turn(printable(text, None))
    thought, utterance = turn.thought.strip(), turn.utterance.strip()
    utterance = utterance[:MAX_ACTION_CHARS]
    return thought[: MAX_ACTION_CHARS - len(utterance)], utterance


def hard_failures(thought: str, utterance: str) -> list[str]:
    """Names of the hard failures of a turn (empty list = passes)."""
    if not utterance:
        return [EMPTY]
    return list(validate_utterance(utterance, thought=thought))
