"""Per-turn time of self-play on the tiny model, broken down by part, as a markdown table.

    .venv/bin/python bench/bench_selfplay.py [--turns 6] [--tokens 24] [--hidden 128] [--judge rubric|model]

Runs one warm-up turn, then ``--turns`` timed turns of ``SelfPlay`` (rubric judge and template
client unless told otherwise) and prints the median seconds of each part per turn and its share
of the median turn: therapist generation (first draft, correction, K=4 candidates), client,
judging, RLAIF fwd/bwd + Adam, GRPO reference + fwd/bwd + Adam, adapter switching, env kernel,
and the rest (prompt building, parsing, logging) as overhead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import tbn_train  # noqa: F401  (preloads OpenBLAS before mlx.core)
import mlx.core as mx

from tbn_train.blas import openblas_active
from tbn_train.config import TrainConfig
from tbn_train.selfplay import SelfPlay, SelfPlayConfig
from tbn_train.tiny_model import make_tiny_model

PARTS = {  # timing key → row label
    "generation": "therapist generation (draft, correction, K=4 batch)",
    "client": "client turn",
    "judging": "judging (env + kind + harsh + 4 candidates)",
    "rlaif": "RLAIF fwd/bwd + Adam",
    "grpo": "GRPO ref + fwd/bwd + Adam",
    "switching": "adapter switching",
    "env": "env step (kernel)",
    "overhead": "overhead (prompts, parsing, bookkeeping)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=6, help="timed turns after one warm-up (default 6)")
    parser.add_argument("--tokens", type=int, default=24, help="max new therapist tokens per generation (default 24)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden size of the tiny model (default 128)")
    parser.add_argument("--judge", choices=("rubric", "model"), default="rubric", help="judge backend (default rubric)")
    args = parser.parse_args()
    mx.disable_compile()  # a cold g++ JIT would otherwise land in the first timing

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_tiny_model(Path(tmp) / "model", hidden=args.hidden)
        cfg = SelfPlayConfig(model=str(model_dir), sessions=1, max_turns=args.turns + 1, judge=args.judge,
                             judge_max_tokens=args.tokens, train=TrainConfig(max_new_tokens=args.tokens))
        sp = SelfPlay(cfg, Path(tmp) / "run")
        sp.step()  # warm-up
        rows = [sp.step()["timings"] for _ in range(args.turns)]

    total = statistics.median(r["total"] for r in rows)
    print(f"Self-play turn on a tiny llama (h{args.hidden}, 8 layers), {args.tokens} new tokens, judge={args.judge}, "
          f"OpenBLAS {'on' if openblas_active() else 'off'}; median of {args.turns} turns\n")
    print("| part | s / turn | share |\n|---|---|---|")
    for key, label in PARTS.items():
        seconds = statistics.median(r.get(key, 0.0) for r in rows)
        print(f"| {label} | {seconds:.4f} | {100 * seconds / total:.1f}% |")
    print(f"| **turn** | **{total:.3f}** | 100% |")
    print("\nMedians per part need not add up exactly to the median turn.")


if __name__ == "__main__":
    main()
