"""A text-mode session loop with a scripted therapist: the shape of an LLM therapist's loop.

Each step sends `<think>hidden thought</think>` + the words said; the offline rubric judge scores the
turn and the template client answers. Swap `reply` for a model call to drive Therapy-v0 with an LLM.
"""
import gymnasium as gym

import tbn_env  # noqa: F401


def reply(client_words: str, info: dict) -> str:
    """A deliberately simple policy: slow down after a rupture, reflect otherwise."""
    if info.get("stance") == "rapport_building" and "not listening" in client_words:
        return "<think>Rupture: own it, repair first.</think>I'm sorry, I missed you there. Tell me again?"
    return (f"<think>Stage {info['stage']}, phase {info['phase']}: {info['guidance']}</think>"
            "It sounds like there's a lot in that. We can take it slowly, whatever feels right.")


def main() -> None:
    env = gym.make("Therapy-v0", max_turns=8, render_mode="ansi")
    obs, info = env.reset(seed=1)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(reply(obs["client_utterance"], info))
        print(info["render"], end="\n\n")
        done = terminated or truncated
    print("phase reached:", info["session_summary"]["phase_reached"])


if __name__ == "__main__":
    main()
