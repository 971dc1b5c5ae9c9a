"""`tbn-dapt`: turn a corpus into DAPT curriculum samples (DFR, UHD, ADWC), inspect them, and train on them (RRA)."""
from __future__ import annotations

import argparse
import json
import sys

from tbn_train.distributed_flags import add_distributed_arguments

from .markers import COMPONENTS

# `tbn-dapt train` flag → DAPTConfig field; unset flags keep the config's defaults.
TRAIN_FLAGS = ("epochs", "max_steps", "samples_per_step", "window_tokens", "window_jitter", "compressor_slots", "recap_max_tokens",
               "recap_temperature", "layers", "rank", "learning_rate", "seed", "checkpoint_every")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tbn-dapt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("preprocess", help="stream corpus sessions into JSONL samples")
    pre.add_argument("--corpus", required=True, help="a tbn-corpus output directory")
    pre.add_argument("--out", required=True, help="output directory")
    pre.add_argument("--strategies", default="dfr,uhd,adwc", help="comma-separated subset of dfr,uhd,adwc")
    pre.add_argument("--tokenizer", help="model directory whose tokenizer.json counts tokens (default: words)")
    pre.add_argument("--targets", help=f"components the loss trains on, comma-separated from {','.join(COMPONENTS)}")
    pre.add_argument("--seed", type=int, default=0, help="seed of the ADWC edge cuts")
    pre.add_argument("--resume", action="store_true", help="continue an interrupted run")
    pre.add_argument("--counterfactuals", help="a `tbn-corpus counterfactuals` directory: its samples join DFR (§7)")
    st = sub.add_parser("stats", help="samples by strategy and length cluster")
    st.add_argument("directory")
    tr = sub.add_parser("train", help="Rolling Recap training (§8.2) into an mlx-lm adapter")
    tr.add_argument("--model", required=True, help="mlx-lm model directory or Hugging Face repository id")
    tr.add_argument("--data", required=True, help="a `tbn-dapt preprocess` output directory")
    tr.add_argument("--out", required=True, help="run directory: run.json, log.jsonl, checkpoints/, adapter/")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tr.add_argument("--strategies", help="train only on samples of these strategies (comma-separated)")
    tr.add_argument("--epochs", type=int, help="passes over the curriculum (default 1)")
    tr.add_argument("--max-steps", type=int, help="stop after this many samples")
    tr.add_argument("--samples-per-step", type=int,
                    help="samples pooled into one optimizer step, split over the ranks (default: one per rank)")
    tr.add_argument("--window-tokens", type=int, help="content tokens per RRA window (default 2048)")
    tr.add_argument("--window-jitter", type=float, help="draw each window size from size·(1 ± jitter) (default 0)")
    tr.add_argument("--compressor-slots", type=int, help="compressed KV positions per layer (default 64)")
    tr.add_argument("--recap-max-tokens", type=int, help="recap length cap (default 128)")
    tr.add_argument("--recap-temperature", type=float, help="recap sampling temperature (default 0.7)")
    tr.add_argument("--no-recap-gating", dest="recap_gating", action="store_false", default=None,
                    help="weight every window 1.0 instead of by recap quality")
    tr.add_argument("--layers", choices=("middle", "latter"), help="LoRA on the middle (default) or latter third")
    tr.add_argument("--rank", type=int, help="LoRA rank on all seven modules (default 32)")
    tr.add_argument("--lora-keys", nargs="+", help="module paths inside a block to adapt instead of the seven roles "
                    "(e.g. self_attn.qkv_proj mlp.down_proj)")
    tr.add_argument("--learning-rate", type=float, help="LoRA Adam lr; the compressor runs at 0.1× (default 1e-5)")
    tr.add_argument("--seed", type=int, help="seed of adapter init, compressor init, windows and recaps")
    tr.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (default 1)")
    add_distributed_arguments(tr, "trains its own samples of every step")
    return parser


def _train(args: argparse.Namespace) -> None:
    from tbn_train.distributed import World

    from .train import DAPTConfig, train

    values = {name: getattr(args, name) for name in (*TRAIN_FLAGS, "recap_gating") if getattr(args, name) is not None}
    if args.lora_keys:
        values["lora_keys"] = tuple(args.lora_keys)
    if args.strategies:
        values["strategies"] = tuple(s for s in args.strategies.split(",") if s)
    world = World.from_flags(args.distributed, args.distributed_timeout, "tbn-dapt")
    values.setdefault("samples_per_step", world.size)
    cfg = DAPTConfig(model=args.model, data=args.data, ranks=world.size, **values)
    out = train(cfg, args.out, resume=args.resume, progress=True, world=world)
    if out is not None:  # None on a rank other than 0: rank 0 wrote the adapter
        print(f"adapter (mlx-lm format) written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tbn_train.cli_errors import USER_ERRORS, report
    from tbn_train.distributed import STOPPED_EXIT, QuietStop, RankLost
    try:
        if args.command == "preprocess":
            from .preprocess import preprocess
            targets = frozenset(args.targets.split(",")) if args.targets else None
            n = preprocess(args.corpus, args.out, tuple(s for s in args.strategies.split(",") if s), args.tokenizer,
                           targets, args.seed, args.resume, progress=True, counterfactuals_dir=args.counterfactuals)
            print(f"wrote {n} samples to {args.out}")
        elif args.command == "stats":
            from .preprocess import stats
            print(json.dumps(stats(args.directory), indent=2))
        else:
            _train(args)
    except QuietStop:  # rank 0 prints the error another rank hit
        return 2
    except USER_ERRORS as exc:
        return report("tbn-dapt", exc)
    except RankLost as exc:
        report("tbn-dapt", exc)
        return STOPPED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
