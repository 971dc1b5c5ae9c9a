"""``tbn-train`` command line.

Subcommands:
  make-tiny-model DIR   build an offline tiny mlx-lm model (tests, demo, bench)
  show-config           print the resolved trainer settings as JSON (file + flag overrides)
  selfplay              RLAIF + GRPO self-play over Therapy-v0 (§9.3.9–§9.3.14), resumable; --clients N
                        pools N clients per turn, --distributed the ranks mlx.launch started
  dpo                   DPO from preference pairs, Methods A/B (§9.3.11), resumable
  sft                   SFT on chat samples, loss on the assistant's tokens (§9.2), resumable
                        (selfplay, dpo, sft: --distributed splits the work over mlx.launch's ranks)
  plan                  where the adapters go on a model and the estimated peak memory (no training)
  eval                  adapters side by side on held-out clients: JSON report + PNG plots

Bad input (a missing model directory, an unknown config key, a resume that does not match its
run) ends with one ``tbn-train: error: …`` line naming the problem and exit status 2; a distributed
rank stopped because another one failed ends with one such line and exit status 3.
"""

from __future__ import annotations

import argparse
import json
import sys

from tbn_train.cli_errors import USER_ERRORS, report
from tbn_train.distributed import STOPPED_EXIT, QuietStop, RankLost, World
from tbn_train.distributed_flags import add_distributed_arguments
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
    tiny.add_argument("--pretrain", action="store_true",
                      help="warm the model up on the offline corpus so it writes words (seeded, a few minutes at most)")
    tiny.add_argument("--pretrain-steps", type=int, default=None, help="warm-up steps (default: 150)")

    from tbn_train.config import add_config_arguments

    show = sub.add_parser("show-config", help="print the resolved trainer settings as JSON")
    add_config_arguments(show)

    selfplay = sub.add_parser("selfplay", help="RLAIF + GRPO self-play over Therapy-v0 (§9.3.14)")
    _run_arguments(selfplay)
    selfplay.add_argument("--sessions", type=int, required=True, help="sessions to play")
    selfplay.add_argument("--max-turns", type=int, required=True, help="therapist turns per session")
    selfplay.add_argument("--judge", default="rubric",
                          help="judge backend: rubric (offline), model (the frozen judge adapter), anthropic (Claude), "
                               "or module:factory returning a tbn_env Judge (default: rubric)")
    selfplay.add_argument("--client", choices=("template", "model"), default="template",
                          help="client backend: offline template client, or the model's frozen client adapter (default: template)")
    selfplay.add_argument("--judge-max-tokens", type=int, default=None, help="generation cap of the model judge (default: 1024)")
    selfplay.add_argument("--client-max-tokens", type=int, default=None, help="generation cap of the model client (default: 256)")
    selfplay.add_argument("--taie", choices=("lightweight", "full"), default=None,
                          help="TAIE mode (§9.3.4): full asks the judge for an explicit assessment every turn (default: lightweight)")
    selfplay.add_argument("--eval-every", type=int, default=None,
                          help="every N turns (and at the end) evaluate on held-out clients; OUT/eval/curve.png")
    selfplay.add_argument("--eval-sessions", type=int, default=None, help="held-out sessions per evaluation (default: 3)")
    selfplay.add_argument("--clients", type=int, default=None,
                          help="clients this process plays side by side, their gradients pooled into one step per turn (default: 1)")
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

    ev = sub.add_parser("eval", help="evaluate adapters on held-out clients (JSON + PNG plots)")
    ev.add_argument("--model", required=True, help="local mlx-lm model directory")
    ev.add_argument("--adapter", action="append", default=[], dest="adapters",
                    help="mlx-lm adapter directory; repeat to compare several (none: the base model)")
    ev.add_argument("--clients", default="held-out",
                    help="'held-out' (default) or a TOML file of [[client]] profiles of held-out strategies")
    ev.add_argument("--sessions", type=int, required=True, help="sessions per adapter, one held-out client each")
    ev.add_argument("--max-turns", type=int, default=None, help="therapist turns per session (default: 8)")
    ev.add_argument("--judge", default=None, help="rubric (default), anthropic, or module:factory")
    ev.add_argument("--persona", default=None, help="judge persona: clinical (default), kind or harsh")
    ev.add_argument("--seed", type=int, default=None, help="env and sampling seed base (default: 0)")
    ev.add_argument("--temperature", type=float, default=None, help="therapist sampling temperature (default: 0, greedy)")
    ev.add_argument("--max-new-tokens", type=int, default=None, help="generation cap per turn (default: 128)")
    ev.add_argument("--out", required=True, help="directory for eval.json and the plots (must not hold an eval.json)")
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
    add_distributed_arguments(parser, "plays its own clients (selfplay) or takes its share of each batch (sft, dpo)")


def _run_settings(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The run-level settings given on the command line (unset flags keep the model defaults)."""
    from tbn_train.config import config_from_args

    values = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return {**values, "model": args.model, "init_adapter": args.init_adapter, "train": config_from_args(args)}


def _evaluate(args: argparse.Namespace) -> None:
    from tbn_train.evaluate import EvalConfig, format_report, run_eval

    names = ("adapters", "clients", "sessions", "max_turns", "judge", "persona", "seed", "temperature", "max_new_tokens")
    cfg = EvalConfig(model=args.model, **{n: getattr(args, n) for n in names if getattr(args, n) is not None})
    path = run_eval(cfg, args.out)
    print(format_report(json.loads(path.read_text(encoding="utf-8"))))
    print(f"report and plots written to {path.parent}")


def _plan(args: argparse.Namespace) -> None:
    from tbn_train.config import config_from_args
    from tbn_train.plan import PROMPT_TOKENS, format_plan, make_plan, plan_json

    if args.prompt_tokens is not None and args.prompt_tokens < 1:
        raise ValueError(f"--prompt-tokens must be ≥ 1, got {args.prompt_tokens}")
    plan = make_plan(args.model, config_from_args(args), args.prompt_tokens or PROMPT_TOKENS)
    print(plan_json(plan) if args.json else format_plan(plan))


def _world(args: argparse.Namespace) -> World:
    """The data-parallel group (--distributed) or this process alone."""
    return World.from_flags(args.distributed, args.distributed_timeout, "tbn-train")


def _train(args: argparse.Namespace) -> None:
    if args.command == "eval":
        _evaluate(args)
        return
    if args.command == "plan":
        _plan(args)
        return
    if args.command == "selfplay":
        from tbn_train.selfplay import SelfPlay, SelfPlayConfig

        names = ("sessions", "max_turns", "judge", "client", "checkpoint_every", "judge_max_tokens", "client_max_tokens",
                 "taie", "eval_every", "eval_sessions", "clients")
        world = _world(args)
        cfg = SelfPlayConfig(**_run_settings(args, names), ranks=world.size)
        out = SelfPlay(cfg, args.out, resume=args.resume, world=world).run_all()
    elif args.command == "sft":
        from tbn_train.sft import SFTConfig, data_files, run_sft  # noqa: PLC0415

        args.data, args.valid = data_files(args.data, args.valid)
        names = ("data", "valid", "epochs", "batch_size", "max_steps", "checkpoint_every")
        world = _world(args)
        cfg = SFTConfig(**_run_settings(args, names), ranks=world.size)
        out = run_sft(cfg, args.out, resume=args.resume, world=world)
    else:
        from tbn_train.dpo import DPOConfig, run_dpo

        world = _world(args)
        cfg = DPOConfig(**_run_settings(args, ("pairs", "heldout", "epochs", "batch_size", "checkpoint_every")),
                        ranks=world.size)
        out = run_dpo(cfg, args.out, resume=args.resume, world=world)
    if out is None:  # a rank other than 0: rank 0 wrote the adapter
        return
    print(f"therapist adapter (mlx-lm format) written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except QuietStop:  # rank 0 prints the error another rank hit
        return 2
    except USER_ERRORS as exc:
        return report("tbn-train", exc)
    except RankLost as exc:
        report("tbn-train", exc)
        return STOPPED_EXIT
    return 0


def _run(args: argparse.Namespace) -> None:
    if args.command == "make-tiny-model":
        from tbn_train.pretrain import PRETRAIN_STEPS, pretrain
        from tbn_train.tiny_model import make_tiny_model

        steps = PRETRAIN_STEPS if args.pretrain_steps is None else args.pretrain_steps
        if steps < 1:
            raise ValueError(f"--pretrain-steps must be >= 1, got {steps}")
        out = make_tiny_model(args.dir, arch=args.arch, seed=args.seed, hidden=args.hidden, layers=args.layers)
        print(f"wrote tiny {args.arch} model to {out}")
        if args.pretrain:
            losses = pretrain(out, steps=steps, seed=args.seed)
            print(f"pretrained {steps} steps on the offline corpus: held-out answer loss "
                  f"{losses['held_out_loss_before']:.2f} -> {losses['held_out_loss_after']:.2f}")
    elif args.command == "show-config":
        from tbn_train.config import config_from_args

        print(json.dumps(config_from_args(args).model_dump(mode="json"), indent=2))
    else:
        _train(args)


if __name__ == "__main__":
    sys.exit(main())
