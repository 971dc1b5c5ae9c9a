"""Self-play on realistic shapes: a dense qwen3 and an 8-expert qwen3_moe, random weights, side by side in one run.

    .venv/bin/python bench/bench_families.py [--layers 28] [--hidden 1024] [--tokens 32]

For each model: the peak memory of the three roles (therapist + frozen client/judge slot on one
base, paper layout) against the base alone over the same inference workload; our generation
against ``mlx_lm.generate`` on the same model with the therapist adapter active; and one self-play
turn with the model's own client and judge, timed by part.
"""
from __future__ import annotations

import argparse
import tempfile

import tbn_train  # noqa: F401  (preloads OpenBLAS before mlx.core)

# isort: split
import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm import generate as mlx_lm_generate
from mlx_lm.sample_utils import make_sampler

from tbn_train.blas import openblas_active
from tbn_train.config import TrainConfig
from tbn_train.generation import GRPO_TEMPERATURES, generate, generate_candidates
from tbn_train.model import load_model
from tbn_train.policy import build_policy
from tbn_train.prompts import TherapistView, render, therapist_messages
from tbn_train.selfplay import SelfPlay, SelfPlayConfig
from tbn_train.tiny_model import make_tiny_model
from timing import timed  # bench/timing.py, beside this script

PARTS = ("generation", "client", "judging", "rlaif", "grpo", "switching", "env", "overhead", "total",
         "rlaif step (forced)", "grpo step (forced, K = 4)", "prompt tokens")


def measure(model_dir, tokens: int) -> dict:
    base, tok = load_model(model_dir)
    prompt = tok.apply_chat_template([{"role": "user", "content": "I keep replaying the conversation all night."}],
                                     add_generation_prompt=True)

    def workload(model, tokenizer):
        model(mx.array([prompt] * 4))
        generate_candidates(model, tokenizer, prompt, GRPO_TEMPERATURES, max_tokens=8)

    mx.reset_peak_memory()
    workload(base, tok)
    peak_base = mx.get_peak_memory()
    params = sum(v.size for _, v in tree_flatten(base.parameters()))
    del base
    mx.clear_cache()

    policy = build_policy(str(model_dir), TrainConfig())  # therapist r32/r16 + frozen client/judge slot, middle third
    model, tok = policy.model, policy.tokenizer
    mx.eval(model.parameters())
    policy.router.active = policy.therapist
    mx.reset_peak_memory()
    workload(model, tok)
    peak_roles = mx.get_peak_memory()
    tok.eos_token_ids = set()  # no early stop: both generators produce exactly `tokens` tokens
    ours = timed(lambda: generate(model, tok, prompt, temperature=0.7, max_tokens=tokens))
    theirs = timed(lambda: mlx_lm_generate(model, tok, prompt, max_tokens=tokens, sampler=make_sampler(temp=0.7)))
    return {"params": params, "peak_base": peak_base, "peak_roles": peak_roles, "ours": ours, "theirs": theirs}


def turn_parts(model_dir, out, tokens: int) -> dict[str, float]:
    """One turn's seconds by part, plus one RLAIF and one GRPO step forced on a therapist prompt.

    A random-weight judge writes no parsable verdict, so the turn itself skips both steps (judge
    fallback); the forced steps time them on the same model with full-length completions.
    """
    cfg = SelfPlayConfig(model=str(model_dir), sessions=1, max_turns=1, judge="model", client="model",
                         judge_max_tokens=tokens, client_max_tokens=tokens, train=TrainConfig(max_new_tokens=tokens))
    sp = SelfPlay(cfg, out)
    parts = sp.step()["timings"]
    p = sp.policy
    x = render(p.tokenizer, therapist_messages(TherapistView.from_env(sp.slots[0].base_env)))
    with p.router.use(p.therapist):
        cands = [(c.tokens + [5] * tokens)[:tokens] for c in generate_candidates(p.model, p.tokenizer, x, GRPO_TEMPERATURES,
                                                                                  max_tokens=tokens)]
    parts["rlaif step (forced)"] = timed(lambda: p.updater.rlaif(x, cands[0], cands[1]), repeats=1)
    parts["grpo step (forced, K = 4)"] = timed(lambda: p.updater.grpo(x, cands, [0.0, 1.0, 2.0, 3.0]), repeats=1)
    parts["prompt tokens"] = len(x)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=28, help="transformer blocks (default 28, as Qwen3-0.6B)")
    parser.add_argument("--hidden", type=int, default=1024, help="hidden size (default 1024, as Qwen3-0.6B)")
    parser.add_argument("--tokens", type=int, default=32, help="tokens per generation and generation cap (default 32)")
    args = parser.parse_args()
    mx.disable_compile()  # a cold g++ JIT would otherwise land in the first timing

    results, parts = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("qwen3", "qwen3_moe"):
            model_dir = make_tiny_model(f"{tmp}/{arch}", arch=arch, hidden=args.hidden, layers=args.layers)
            results[arch] = measure(model_dir, args.tokens)
            parts[arch] = turn_parts(model_dir, f"{tmp}/{arch}-run", args.tokens)

    print(f"models: {args.layers} layers, hidden {args.hidden}, random weights (float32); qwen3_moe: 8 experts, top-2; "
          f"{args.tokens} tokens per generation; OpenBLAS preloaded: {openblas_active()}\n")
    print("| measure | qwen3 | qwen3_moe | target |\n|---|---|---|---|")
    q, m = results["qwen3"], results["qwen3_moe"]
    print(f"| parameters | {q['params'] / 1e6:.0f} M | {m['params'] / 1e6:.0f} M | |")
    print(f"| our generate vs mlx_lm.generate (therapist active) | {args.tokens / q['ours']:.1f} vs {args.tokens / q['theirs']:.1f} tok/s "
          f"= **{q['theirs'] / q['ours']:.2f}×** | {args.tokens / m['ours']:.1f} vs {args.tokens / m['theirs']:.1f} tok/s "
          f"= **{m['theirs'] / m['ours']:.2f}×** | ≥ 0.9× |")
    print(f"| peak memory three roles vs base | {q['peak_roles'] / 2**20:.0f} vs {q['peak_base'] / 2**20:.0f} MiB "
          f"= **{q['peak_roles'] / q['peak_base']:.3f}×** | {m['peak_roles'] / 2**20:.0f} vs {m['peak_base'] / 2**20:.0f} MiB "
          f"= **{m['peak_roles'] / m['peak_base']:.3f}×** | ≤ 1.15× |")
    print("\nOne self-play turn, model client and judge (s):\n")
    print("| part | qwen3 | qwen3_moe |\n|---|---|---|")
    for part in PARTS:
        print(f"| {part} | {parts['qwen3'].get(part, 0.0):.2f} | {parts['qwen3_moe'].get(part, 0.0):.2f} |")


if __name__ == "__main__":
    main()
