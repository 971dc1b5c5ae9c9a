"""Sessions and counterfactuals as chat samples for SFT, in mlx-lm's data layout (§9.2, §27.4).

Each line is `{"messages": [...]}`, mlx-lm's chat format, so the same directory trains with
`tbn-train sft` and with plain `mlx_lm.lora --train --data DIR`. The system message is the self-play
therapist's instruction plus the session's frame (stage, session number, client profile summary);
the client speaks as the user and the therapist answers as the assistant, hidden thought in
`<think>…</think>` then the words said (`corpus.teaching`).

* A session gives one sample: every turn, in order.
* A counterfactual gives one sample: the turns before its moment, the client's words at it, and the
  first better branch as the answer ("what the therapist should have said", App. 28). A sample
  with no better branch gives none.

Whole sessions, with the counterfactuals cut from them, go to `valid.jsonl` (`corpus.heldout`);
the rest to `train.jsonl`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tbn_train.prompts import THERAPIST_SYSTEM

from .heldout import HELDOUT_SHARE, heldout_groups
from .schema import CounterfactualSample, Session, Turn
from .teaching import (
    branch_answer,
    branch_class,
    divergence,
    load_counterfactuals,
    load_sessions,
    situation,
    source_session,
    turn_answer,
)

TRAIN_FILE, VALID_FILE = "train.jsonl", "valid.jsonl"   # the names mlx_lm.lora reads from --data DIR

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SFTReport:
    """What `export_sft` wrote."""

    train: int
    valid: int
    sessions: int
    counterfactuals: int

    def summary(self) -> str:
        return (f"{self.train} training and {self.valid} held-out chat samples from {self.sessions} sessions "
                f"and {self.counterfactuals} counterfactuals")


def _opening(session: Session) -> Messages:
    return [{"role": "system", "content": f"{THERAPIST_SYSTEM}\n\n{situation(session)}"}]


def _exchange(turn: Turn) -> Messages:
    return [{"role": "user", "content": turn.client_utterance}, {"role": "assistant", "content": turn_answer(turn)}]


def session_messages(session: Session) -> Messages:
    """A whole session as one chat sample."""
    return _opening(session) + [m for t in session.turns for m in _exchange(t)]


def counterfactual_messages(sample: CounterfactualSample, session: Session) -> Messages | None:
    """The moment's context and its better branch as one chat sample; None without a better branch."""
    better = next((b for b in sample.branches if branch_class(b) == "better"), None)
    if better is None:
        return None
    position = divergence(sample)
    return (_opening(session) + [m for t in sample.context_turns for m in _exchange(t)]
            + [{"role": "user", "content": session.turns[position].client_utterance},
               {"role": "assistant", "content": branch_answer(better)}])


def export_sft(corpus: str | Path, out: str | Path, counterfactuals: str | Path | None = None,
               share: float = HELDOUT_SHARE) -> SFTReport:
    """Write OUT/train.jsonl and OUT/valid.jsonl; return the counts."""
    sessions = load_sessions(corpus)
    if not sessions:
        raise ValueError(f"{corpus} holds no sessions; run `tbn-corpus generate` first")
    samples = [(s.session_id, session_messages(s)) for s in sessions.values()]
    cfs = load_counterfactuals(counterfactuals) if counterfactuals is not None else []
    for cf in cfs:
        messages = counterfactual_messages(cf, source_session(cf, sessions))
        if messages is not None:
            samples.append((cf.session_ref, messages))
    held = heldout_groups(sessions, share)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, keep in ((VALID_FILE, True), (TRAIN_FILE, False)):
        lines = [json.dumps({"messages": m}, ensure_ascii=False) + "\n" for g, m in samples if (g in held) == keep]
        tmp = out / (name + ".tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        tmp.replace(out / name)
        counts[name] = len(lines)
    return SFTReport(counts[TRAIN_FILE], counts[VALID_FILE], len(sessions), len(cfs))
