"""`tbn-corpus`: generate, validate, inspect and export the synthetic corpus."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tbn_train.cli_errors import USER_ERRORS, report

from .anthropic_api import DEFAULT_MODEL, AnthropicSettings


def _backend_options(parser: argparse.ArgumentParser) -> None:
    """The backend choice and the Anthropic settings, shared by `generate` and `counterfactuals`."""
    parser.add_argument("--backend", choices=("offline", "anthropic", "mlx"), default="offline",
                        help="offline templates, Claude via the Anthropic API (key from ANTHROPIC_API_KEY), "
                             "or a local model on MLX (--mlx-model)")
    parser.add_argument("--mlx-model", help="mlx: a local mlx-lm model directory")
    parser.add_argument("--mlx-adapter", help="mlx: an optional LoRA adapter directory")
    parser.add_argument("--model", help="Anthropic model name (default: %s)" % DEFAULT_MODEL)
    parser.add_argument("--concurrency", type=int,
                        help="samples generated at once (default: 8 for anthropic, 1 offline)")
    parser.add_argument("--max-retries", type=int, help="SDK retries per request on 429/5xx/529/timeouts")
    parser.add_argument("--timeout", type=float, help="seconds per Anthropic request")
    parser.add_argument("--base-url", help="Anthropic API base URL (a proxy or a local test server)")
    parser.add_argument("--seed", type=int, default=0, help="seed: fixes every sample and its id")
    parser.add_argument("--resume", action="store_true",
                        help="continue a run that stopped; no sample is lost or repeated")


def _settings(args: argparse.Namespace) -> AnthropicSettings:
    """AnthropicSettings from the command line (unset options keep their defaults)."""
    fields = {"model": args.model, "concurrency": args.concurrency, "max_retries": args.max_retries,
              "timeout": args.timeout, "base_url": args.base_url}
    return AnthropicSettings(**{k: v for k, v in fields.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; exit status 0 on success, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="tbn-corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate sessions into a directory of JSONL shards")
    _backend_options(gen)
    gen.add_argument("--n", type=int, required=True, help="number of sessions")
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--stage", type=int, choices=(1, 2, 3, 4), help="force one treatment stage (stage 4 needs it)")
    gen.add_argument("--batch", action="store_true",
                     help="anthropic only: one Message Batch at half price instead of live requests")
    gen.add_argument("--poll-seconds", type=float, default=30.0, help="with --batch: seconds between status polls")
    gen.add_argument("--micro-pool", help="diminishing-pool file for micro-variables; reuse it across runs "
                                          "(default: OUT/micro_pool.json)")
    cf = sub.add_parser("counterfactuals", help="cut counterfactual teaching samples (the 13 pipelines) from sessions")
    _backend_options(cf)
    cf.add_argument("--sessions", required=True, help="a corpus directory of sessions")
    cf.add_argument("--out", required=True, help="output directory")
    cf.add_argument("--per-session", type=int, default=2, help="samples per session")
    val = sub.add_parser("validate", help="schema-check every sample and report the §30.2.1 corpus claims")
    val.add_argument("directory")
    st = sub.add_parser("stats", help="counts by kind, stage, attachment family and pipeline; tokens and cost")
    st.add_argument("directory")
    sc = sub.add_parser("sample-client", help="print the client, therapist and context of one sample as JSON")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--index", type=int, default=0, help="sample index within the seeded run")
    sc.add_argument("--stage", type=int, choices=(1, 2, 3, 4))
    ex = sub.add_parser("export-schema", help="write the JSON Schemas of every record type")
    ex.add_argument("directory")
    pairs = sub.add_parser("pairs", help="DPO preference pairs from counterfactuals, Method A or B (§9.3.11)")
    pairs.add_argument("--corpus", required=True, help="the session corpus the counterfactuals were cut from")
    pairs.add_argument("--counterfactuals", required=True, help="a `tbn-corpus counterfactuals` directory")
    pairs.add_argument("--method", required=True, choices=("A", "B"),
                       help="A: dialogue prompts (DAPT corpus); B: RRA, ADWC and UHD curriculum prompts")
    pairs.add_argument("--out", required=True, help="pairs JSONL; held-out pairs go beside it to NAME.heldout.jsonl")
    sft = sub.add_parser("export-sft", help="sessions and counterfactuals as mlx-lm chat samples for SFT")
    sft.add_argument("--corpus", required=True, help="a session corpus directory")
    sft.add_argument("--counterfactuals", help="a `tbn-corpus counterfactuals` directory cut from --corpus")
    sft.add_argument("--out", required=True, help="output directory: train.jsonl and valid.jsonl (mlx-lm layout)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("tbn-corpus: interrupted; everything committed is kept, continue with --resume", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        return report("tbn-corpus", exc)
    except Exception as exc:  # an API error that retries cannot fix, e.g. a rejected key
        if type(exc).__module__.startswith("anthropic"):
            print(f"tbn-corpus: Anthropic API error: {exc}; committed samples are kept, continue with --resume",
                  file=sys.stderr)
            return 2
        raise


def _backend(args: argparse.Namespace):
    """(backend, concurrency, extra run config) for --backend and its options."""
    if args.backend == "anthropic":
        from .anthropic_backend import AnthropicBackend
        settings = _settings(args)
        return AnthropicBackend(settings), settings.concurrency, {"model": settings.model}
    concurrency = 1 if args.concurrency is None else args.concurrency
    if args.backend == "mlx":
        if not args.mlx_model:
            raise ValueError("--backend mlx needs --mlx-model DIR")
        from .mlx_backend import MLXBackend
        backend = MLXBackend(args.mlx_model, args.mlx_adapter)
        return backend, concurrency, {"model": backend.model}
    from .generate import OfflineBackend
    return OfflineBackend(), concurrency, {}


def _generate(args: argparse.Namespace) -> int:
    """Run `generate` with the chosen backend; print the time and cost summary."""
    pool = args.micro_pool or str(Path(args.out) / "micro_pool.json")
    if args.batch and args.backend != "anthropic":
        raise ValueError("--batch needs --backend anthropic")
    if args.batch:
        from .anthropic_batches import generate_batch
        report = asyncio.run(generate_batch(args.out, args.n, args.seed, _settings(args), args.resume, args.stage,
                                            pool, args.poll_seconds))
    else:
        from .generate import run_generation
        backend, concurrency, config = _backend(args)
        report = _with_backend(backend, lambda: run_generation(
            args.out, args.n, backend, args.seed, concurrency=concurrency, resume=args.resume, stage=args.stage,
            pool_path=pool, progress=True, config=config))
    return _summarise(report)


def _counterfactuals(args: argparse.Namespace) -> int:
    """Run `counterfactuals` with the chosen backend; print the time and cost summary."""
    from .counterfactuals import run_counterfactuals
    backend, concurrency, config = _backend(args)
    return _summarise(_with_backend(backend, lambda: run_counterfactuals(
        args.sessions, args.out, backend, args.per_session, args.seed, concurrency=concurrency, resume=args.resume,
        progress=True, config=config)))


def _with_backend(backend, job):
    """Run the coroutine `job()` and close the backend afterwards, whatever happens."""
    async def run():
        try:
            return await job()
        finally:
            await backend.aclose()
    return asyncio.run(run())


def _summarise(report) -> int:
    """Print a run's summary; exit status 1 when samples were rejected."""
    print(report.summary())
    return 0 if not report.rejected else 1


def _run(args: argparse.Namespace) -> int:
    """Dispatch one command."""
    if args.command == "generate":
        return _generate(args)
    if args.command == "counterfactuals":
        return _counterfactuals(args)
    if args.command == "validate":
        from .validate import format_report, validate_corpus
        valid, errors, claims = validate_corpus(args.directory)
        print(format_report(valid, errors, claims))
        return 0 if not errors and valid else 1
    if args.command == "stats":
        from .validate import stats
        print(json.dumps(stats(args.directory), indent=2))
        return 0
    if args.command == "sample-client":
        from .generate import participants
        p = participants(args.seed, args.index, args.stage)
        print(json.dumps({"client": p.client.model_dump(), "therapist": p.therapist.model_dump(),
                          "context": p.context.model_dump()}, indent=2))
        return 0
    if args.command == "pairs":
        from .pairs import write_pairs
        print(write_pairs(args.corpus, args.counterfactuals, args.method, args.out).summary())
        return 0
    if args.command == "export-sft":
        from .sft import export_sft
        print(export_sft(args.corpus, args.out, args.counterfactuals).summary())
        return 0
    from .schema import export_json_schema
    for path in export_json_schema(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
