"""``tbn-train`` command line.

Subcommands:
  make-tiny-model DIR   build an offline tiny mlx-lm model (tests, demo, bench)
  show-config           print the resolved trainer settings as JSON (file + flag overrides)
  selfplay              RLAIF + GRPO self-play over Therapy-v0 (§9.3.9–§9.3.14), resumable
  dpo                   DPO from preference pairs, Methods A/B (§9.3.11), resumable
  sft                   SFT on chat samples, loss on the assistant's tokens (§9.2), resumable
  plan                  where the adapters go on a model and the estimated peak memory (no training)

Bad input (a missing model directory, an unknown config key, a resume that does not match its
run) ends with one ``tbn-train: error: …`` line naming the problem and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from tbn_train.cli_errors import USER_ERRORS, report
from tbn_train.tiny_model import ARCHITECTURES, TINY_HIDDEN, TINY_LAYERS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tbn-train", description="TBN trainer on MLX (§9.3.9–§9.3.13)")
    sub = parser.add_subparsers(dest="command", required=True)

    tiny = sub.add_parser("make-tiny-model", help="build a tiny offline mlx-lm model directory")
    tiny.add_argument("dir", help="output directory")
    tiny.add_argument("--arch", choices=ARCHITECTURES, default="llama", help="mlx-lm architecture (default: llama)")
    tiny.add_argument("--seed", type=int, default=0, help="weight-init seed (default: 0)")
    tiny.add_argument("--hidden", type=int, default=TINY_HIDDEN, help=f"hidden size (default: {TINY_HIDDEN})")
    tiny.add_argument("--layers", type=int, default=TINY_LAYERS, help=f"transformer blocks (default: {TINY_LAYERS})")

    from tbn_train.config import add_config_arguments  # noqa: PLC0415 (pulls in mlx_lm)

    show = sub.add_parser("show-config", help="print the resolved trainer settings as JSON")
    add_config_arguments(show)

    selfplay = sub.add_parser("selfplay", help="RLAIF + GRPO self-play over Therapy-v0 (§9.3.14)")
    _run_arguments(selfplay)
    selfplay.add_argument("--sessions", type=int, required=True, help="sessions to play")
    selfplay.add_argument("--max-turns", type=int, required=True, help="therapist turns per session")
    selfplay.add_argument("--judge", choices=("rubric", "model"), default="rubric",
                          help="judge backend: offline rubric judge, or the model's frozen judge adapter "
                               "(default: rubric)")
    selfplay.add_argument("--client", choices=("template", "model"), default="template",
                          help="client backend: offline template client, or the model's frozen client adapter "
                               "(default: template)")
    selfplay.add_argument("--judge-max-tokens", type=int, default=None,
                          help="generation cap of the model judge (default: 1024)")
    selfplay.add_argument("--client-max-tokens", type=int, default=None,
                          help="generation cap of the model client (default: 256)")
    add_config_arguments(selfplay)

    dpo = sub.add_parser("dpo", help="DPO from preference pairs, Methods A/B (§9.3.11)")
    _run_arguments(dpo)
    dpo.add_argument("--pairs", required=True, help="JSONL of {prompt, chosen, rejected} preference pairs")
    dpo.add_argument("--epochs", type=int, default=None, help="passes over the pairs (default: 1)")
    dpo.add_argument("--batch-size", type=int, default=None, help="pairs per optimizer step (default: 1)")
    dpo.add_argument("--heldout", default=None,
                     help="held-out pairs JSONL: the chosen-minus-rejected margin before and after")
    add_config_arguments(dpo)

    sft = sub.add_parser("sft", help="SFT on chat samples, loss on the assistant's tokens only (§9.2)")
    _run_arguments(sft)
    sft.add_argument("--data", required=True,
                     help="chat JSONL {messages}, or an mlx-lm data directory (train.jsonl, valid.jsonl)")
    sft.add_argument("--valid", default=None,
                     help="held-out chat JSONL (default: DATA/valid.jsonl if --data is a directory)")
    sft.add_argument("--epochs", type=int, default=None, help="passes over the samples (default: 1)")
    sft.add_argument("--batch-size", type=int, default=None, help="samples per optimizer step (default: 1)")
    sft.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    add_config_arguments(sft)
    plan = sub.add_parser("plan",
                          help="adapter placement, trainable parameters and peak memory of a model (no training)")
    plan.add_argument("--model", required=True,
                      help="mlx-lm model directory (config.json is enough) or Hugging Face repository id")
    plan.add_argument("--prompt-tokens", type=int, default=None,
                      help="therapist prompt length the estimate assumes (default: 2048)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON (sizes in bytes)")
    add_config_arguments(plan)
    return parser


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the training subcommands."""
    parser.add_argument("--model", required=True,
                        help="mlx-lm model directory or Hugging Face repository id (e.g. mlx-community/Qwen3-8B-4bit)")
    parser.add_argument("--out", required=True, help="run directory: run.json, log.jsonl, checkpoints/, therapist/")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--init-adapter", default=None,
                        help="mlx-lm adapter: the therapist's start, the frozen client/judge adapter and the reference")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="checkpoint every N turns/steps (default: 1)")


def _run_settings(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The run-level settings given on the command line (unset flags keep the model defaults)."""
    from tbn_train.config import config_from_args  # noqa: PLC0415

    values = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return {**values, "model": args.model, "init_adapter": args.init_adapter, "train": config_from_args(args)}


def _train(args: argparse.Namespace) -> None:
    if args.command == "plan":
        from tbn_train.config import config_from_args
        from tbn_train.plan import PROMPT_TOKENS, format_plan, make_plan, plan_json

        if args.prompt_tokens is not None and args.prompt_tokens < 1:
            raise ValueError(f"--prompt-tokens must be ≥ 1, got {args.prompt_tokens}")
        plan = make_plan(args.model, config_from_args(args), args.prompt_tokens or PROMPT_TOKENS)
        print(plan_json(plan) if args.json else format_plan(plan))
        return
    if args.command == "selfplay":
        from tbn_train.selfplay import SelfPlay, SelfPlayConfig  # noqa: PLC0415

        names = ("sessions", "max_turns", "judge", "client", "checkpoint_every", "judge_max_tokens",
                 "client_max_tokens")
        cfg = SelfPlayConfig(**_run_settings(args, names))
        out = SelfPlay(cfg, args.out, resume=args.resume).run_all()
    elif args.command == "sft":
        from tbn_train.sft import SFTConfig, data_files, run_sft  # noqa: PLC0415

        args.data, args.valid = data_files(args.data, args.valid)
        names = ("data", "valid", "epochs", "batch_size", "max_steps", "checkpoint_every")
        cfg = SFTConfig(**_run_settings(args, names))
        out = run_sft(cfg, args.out, resume=args.resume)
    else:
        from tbn_train.dpo import DPOConfig, run_dpo  # noqa: PLC0415

        cfg = DPOConfig(**_run_settings(args, ("pairs", "heldout", "epochs", "batch_size", "checkpoint_every")))
        out = run_dpo(cfg, args.out, resume=args.resume)
    print(f"therapist adapter (mlx-lm format) written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except USER_ERRORS as exc:
        return report("tbn-train", exc)
    return 0


def _run(args: argparse.Namespace) -> None:
    if args.command == "make-tiny-model":
        from tbn_train.tiny_model import make_tiny_model  # noqa: PLC0415

        out = make_tiny_model(args.dir, arch=args.arch, seed=args.seed, hidden=args.hidden, layers=args.layers)
        print(f"wrote tiny {args.arch} model to {out}")
    elif args.command == "show-config":
        from tbn_train.config import config_from_args  # noqa: PLC0415

        print(json.dumps(config_from_args(args).model_dump(mode="json"), indent=2))
    else:
        _train(args)


if __name__ == "__main__":
    sys.exit(main())
