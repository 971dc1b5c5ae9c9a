"""Sessions and counterfactuals read back as training material: whom the therapist answers, and how.

The DPO pairs (`corpus.pairs`) and the SFT export (`corpus.sft`) share these pieces, so both train the
same answer format the self-play therapist produces: the hidden thought in `<think>…</think>`, then the
words said (`tbn_train.prompts.format_therapist_turn`, the env's action format). A counterfactual
sample stores the turns before its divergence, not the client's words at it, so those come from the
session it was cut from (`session_ref`).

Branch labels are free text (the offline backend writes lands / partly lands / misses; Claude
writes its own, e.g. App. 28's HARMFUL and BETTER versions), so each is classed by keywords:
harmful first, then partial, then better; a label matching none stays unclassed and forms no pair.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from tbn_env.llm_prompts import transcript
from tbn_env.protocols import DialogueTurn
from tbn_train.prompts import format_therapist_turn

from .schema import Branch, CounterfactualSample, Session, Turn
from .writer import read_samples

HARMFUL_WORDS = ("harm", "miss", "fail", "impinge", "premature", "negation", "iatrogenic", "worse")
PARTIAL_WORDS = ("partly", "partial", "half")
BETTER_WORDS = ("better", "land", "affirm", "success", "repair", "attuned", "ideal")


def _records(directory: str | Path, model, prefix: str, what: str) -> list:
    """Every committed record of `directory` as `model`; a line of another kind is refused in one line."""
    out = []
    for shard, n, line in read_samples(directory, prefix=prefix):
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{Path(directory) / shard}:{n}: not a {what} ({'.'.join(map(str, first['loc']))}: "
                             f"{first['msg']}); pass a `tbn-corpus` directory of {what}s") from None
    return out


def load_sessions(directory: str | Path) -> dict[str, Session]:
    """Every committed session of a corpus directory, by id."""
    return {s.session_id: s for s in _records(directory, Session, "sessions", "session")}


def load_counterfactuals(directory: str | Path) -> list[CounterfactualSample]:
    """Every committed counterfactual sample of a `tbn-corpus counterfactuals` directory, in file order."""
    return _records(directory, CounterfactualSample, "counterfactuals", "counterfactual sample")


def divergence(sample: CounterfactualSample) -> int:
    """The turn index the sample diverges at: right after its context turns."""
    return sample.context_turns[-1].index + 1 if sample.context_turns else 0


def source_session(sample: CounterfactualSample, sessions: dict[str, Session]) -> Session:
    """The session a counterfactual was cut from; a missing one is bad input."""
    session = sessions.get(sample.session_ref)
    if session is None or divergence(sample) >= len(session.turns):
        raise ValueError(f"counterfactual {sample.sample_id!r} was cut from session {sample.session_ref!r}, which the "
                         "session corpus lacks; pass the --corpus its counterfactuals were cut from")
    return session


def branch_class(branch: Branch) -> str | None:
    """'harmful', 'partial', 'better' or None, from the branch label (see the module docstring)."""
    label = branch.label.lower()
    for name, words in (("harmful", HARMFUL_WORDS), ("partial", PARTIAL_WORDS), ("better", BETTER_WORDS)):
        if any(w in label for w in words):
            return name
    return None


def turn_answer(turn: Turn) -> str:
    """What the therapist answered in the session, thought included."""
    return format_therapist_turn(turn.therapist_thought.text, turn.therapist_utterance)


def branch_answer(branch: Branch) -> str:
    """A counterfactual branch as a therapist answer."""
    return format_therapist_turn(branch.therapist_thought, branch.therapist_utterance)


def situation(session: Session) -> str:
    """The session's frame: stage, session number and the client's profile summary."""
    return (f"Stage {session.context.stage}, session {session.context.session_number}. "
            f"Client: {session.client.summary()}.")


def therapist_prompt(session: Session, position: int) -> str:
    """The plain-dialogue prompt before the therapist's turn `position` (the self-play prompt's layout)."""
    history = [DialogueTurn(client=t.client_utterance, therapist=t.therapist_utterance)
               for t in session.turns[:position]]
    said = transcript(history, session.turns[position].client_utterance)
    return f"{situation(session)}\n\nSession so far:\n{said}\n\nYour turn."
