"""``tbn-train`` command line.

Subcommands:
  make-tiny-model DIR   build an offline tiny mlx-lm model (tests, demo, bench)
  show-config           print the resolved trainer settings as JSON (file + flag overrides)
"""

from __future__ import annotations

import argparse
import json
import sys

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "make-tiny-model":
        from tbn_train.tiny_model import make_tiny_model  # noqa: PLC0415

        out = make_tiny_model(args.dir, arch=args.arch, seed=args.seed, hidden=args.hidden, layers=args.layers)
        print(f"wrote tiny {args.arch} model to {out}")
    elif args.command == "show-config":
        from tbn_train.config import config_from_args  # noqa: PLC0415

        print(json.dumps(config_from_args(args).model_dump(mode="json"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
