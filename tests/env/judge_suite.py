"""Loads the adversarial judge suite (judge_cases.toml) into judge contexts, for any Judge backend."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tbn_env.protocols import JudgeContext

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITE = Path(__file__).with_name("judge_cases.toml")
LABELS = ("good", "adequate", "poor", "harmful")
HARMFUL_HACKS = frozenset({"abusive_padded", "plain_abuse", "self_harm_padded", "sexualised"})


@dataclass(frozen=True)
class Case:
    state: str
    label: str          # good / adequate / poor / harmful, or "hack:<name>"
    context: JudgeContext

    @property
    def harmful(self) -> bool:
        return self.label == "harmful" or self.label.removeprefix("hack:") in HARMFUL_HACKS


def load() -> dict:
    return tomllib.loads(SUITE.read_text(encoding="utf-8"))


def cases() -> list[Case]:
    """Every labelled reply and every hack, at every state of the suite."""
    data, out = load(), []
    for st in data["state"]:
        base = {"client_utterance": st["client"], "stage": st["stage"], "phase": st["phase"],
                "profile_card": st["profile_card"], "rupture_pending": st.get("rupture", False)}
        good = next(r for r in st["replies"] if r["label"] == "good")
        for r in st["replies"]:
            out.append(Case(st["id"], r["label"], JudgeContext(therapist_thought=r["thought"],
                                                               therapist_utterance=r["said"], **base)))
        fill = {"client": st["client"], "good": good["said"], "good_thought": good["thought"]}
        for name, hack in data["hacks"].items():
            out.append(Case(st["id"], f"hack:{name}",
                            JudgeContext(therapist_thought=hack["thought"].format(**fill),
                                         therapist_utterance=hack["said"].format(**fill), **base)))
    return out
