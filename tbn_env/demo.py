"""A scripted therapist in one text-mode session: the offline judge and client, start to finish.

`tbn-env-demo` (or `python -m tbn_env.demo`) prints every turn, the judge's scores and the
§9.3.14.2 session summary. The therapist here is a fixed, stage- and stance-aware script, useful as
a readable baseline and a smoke test of the whole text pipeline; it is not a trained policy.
"""
from __future__ import annotations

import argparse
import re

import gymnasium as gym

import tbn_env  # noqa: F401  (registers Therapy-v0)

ECHO_WORDS = 8  # how much of the client's last sentence a reflection gives back

OPENINGS = {
    "rapport_building": ("It sounds like {echo}. I'm glad you told me; we can take this at whatever pace feels right.",
                         "I hear that {echo}. There's no rush here, and nothing you need to get right."),
    "personhood_assemblage": ("When you say {echo}, I notice how much care you put into keeping it together. "
                              "What is that like for you right now?",
                              "Part of you says {echo}. I'm curious what the part underneath might be feeling."),
    "intervention": ("Let's stay with {echo} for a moment, slowly. Where do you notice it in your body as we talk?",
                     "It makes sense that {echo}, given what you've carried. What would you want that younger you "
                     "to hear now?"),
}
REPAIR = "I think I missed you just now, and I'm sorry. You said {echo}; can you help me understand it better?"
THOUGHTS = {
    "rapport_building": "Stay with the surface, reflect, keep it safe; no interpretation yet.",
    "personhood_assemblage": "Notice the protective part; invite curiosity without pushing.",
    "intervention": "There is room to deepen now; keep pacing, stay with the feeling.",
}


def echo(text: str) -> str:
    """The last sentence of the client's words, shortened and turned to the second person."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    words = (sentences[-1] if sentences else text).rstrip(".!?").split()[:ECHO_WORDS]
    swap = {"i": "you", "i'm": "you're", "my": "your", "me": "you", "am": "are", "myself": "yourself"}
    said = " ".join(swap.get(w.lower(), w) for w in words) or "that"
    return said[0].lower() + said[1:]


class ScriptedTherapist:
    """Chooses a reflection by stance, and repairs after a rupture."""

    def __init__(self) -> None:
        self.turn = 0

    def __call__(self, observation: dict, info: dict) -> str:
        self.turn += 1
        said = echo(observation["client_utterance"])
        stance = info["stance"]
        if observation["rupture"]:
            return f"<think>I lost her; repair first, own my part.</think>{REPAIR.format(echo=said)}"
        line = OPENINGS[stance][self.turn % len(OPENINGS[stance])]
        return f"<think>{THOUGHTS[stance]}</think>{line.format(echo=said)}"


def run(seed: int = 0, max_turns: int = 12, profile: str | None = "maya_grief") -> dict:
    """One session; prints the dialogue and returns the session summary."""
    env = gym.make("Therapy-v0", max_turns=max_turns, profile=profile, info_mode="debug")  # shows the hidden state
    therapist = ScriptedTherapist()
    obs, info = env.reset(seed=seed)
    print(f"client profile: {env.unwrapped.profile.card()}\n")
    print(f"client: {obs['client_utterance']}")
    done = False
    while not done:
        action = therapist(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        said = action.split("</think>", 1)[-1]
        scores = " ".join(f"{k[:4]} {v:.1f}" for k, v in info["scores"].items())
        print(f"therapist: {said}\n  [{scores}]\n  reward {reward:+.2f}  phase {info['phase']}  "
              f"stance {info['stance']}  events {[e['type'] for e in info['events']]}")
        if not done:
            print(f"client: {obs['client_utterance']}")
    summary = info["session_summary"]
    print("\nsession summary (§9.3.14.2):")
    for key in ("coiling", "tmog_attunement", "maladaptive_mean", "adaptive_mean", "phase_reached", "stage",
                "total_turns"):
        print(f"  {key}: {summary[key]}")
    print(f"  taie: {summary['taie']}\n  loa: {summary['loa']}\n  worst misread: {summary['worst_misread']}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-turns", type=int, default=12)
    parser.add_argument("--profile", default="maya_grief", help="a preset name, or 'random'")
    args = parser.parse_args()
    run(args.seed, args.max_turns, None if args.profile == "random" else args.profile)


if __name__ == "__main__":
    main()
