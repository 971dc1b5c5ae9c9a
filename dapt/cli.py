"""`tbn-dapt`: turn a corpus into DAPT curriculum samples (DFR, UHD, ADWC) and inspect them."""
from __future__ import annotations

import argparse
import json
import sys

from .markers import COMPONENTS


def main(argv: list[str] | None = None) -> int:
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
    st = sub.add_parser("stats", help="samples by strategy and length cluster")
    st.add_argument("directory")
    args = parser.parse_args(argv)
    from .preprocess import preprocess, stats
    try:
        if args.command == "preprocess":
            targets = frozenset(args.targets.split(",")) if args.targets else None
            n = preprocess(args.corpus, args.out, tuple(s for s in args.strategies.split(",") if s), args.tokenizer,
                           targets, args.seed, args.resume, progress=True)
            print(f"wrote {n} samples to {args.out}")
        else:
            print(json.dumps(stats(args.directory), indent=2))
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"tbn-dapt: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
