"""Data-parallel self-play: client-turns per minute with 1 and 2 ranks, the all-reduce's share, and R Macs on paper.

    python bench/bench_distributed.py [--turns 4] [--tokens 16] [--hidden 128]
    python bench/bench_distributed.py --dapt [--samples 8] [--hidden 128]

``--dapt`` measures ``tbn-dapt train`` instead: samples per minute of one process (one sample per step)
and of two ranks (one sample each per step) over the same curriculum samples, from the steps' logged
seconds, the first step of each run (two samples' worth) left out as warm-up.

Measured, side by side in one run, on a tiny model (rubric judge, template client), in default
processes (no thread settings):

1. one process, one client: ``tbn-train selfplay``;
2. two ranks, one client each: ``mlx.launch -n 2 --backend ring`` on 127.0.0.1 with ``--distributed``;
3. the bare all-reduce of this adapter's gradient vector (2 ranks, after a barrier), per step.

Client-turns per minute come from the runs' logs, the first (warm-up) turn left out; a 2-rank step
lasts as long as its slower rank. CPU seconds per client-turn (all processes of a run, start included)
show what the ranks cost apart from competing for this machine's cores. "sync" is the time a rank spends pooling (the all-reduce plus
waiting for the slower rank). On paper, the same step on R Mac Studios over Thunderbolt 5, from the
trainable parameter count ``tbn-train plan`` gives for real models and the constants below.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx

from tbn_train.read_files import load_arrays
from tbn_train.tiny_model import make_tiny_model

THUNDERBOLT5_BYTES_PER_S = 80e9 / 8  # Thunderbolt 5: 80 Gb/s each way (the link rate)
RING_EFFICIENCY = 0.5  # assumed share of the link rate MLX's ring over a Thunderbolt IP bridge reaches (TCP, one connection)
HOP_LATENCY_S = 100e-6  # assumed per-message latency of one ring hop over the Thunderbolt bridge
REAL_TURN_S = 60.0  # assumed turn of an 8B 4-bit model on one Mac Studio: 6 generations ≤ 512 tokens + 2 backward passes
REDUCES_PER_TURN = 2  # one pooled RLAIF step and one pooled GRPO step per turn (§9.3.13)
PROBE_REPEATS = 20  # all-reduces timed per probe
RANKS_ON_PAPER = (1, 2, 4, 8)
PAPER_MODELS = ("Qwen3-8B-4bit", "Qwen3-30B-A3B-4bit")

LAUNCHER = Path(sys.executable).with_name("mlx.launch")


def selfplay(model: Path, out: Path, turns: int, tokens: int, ranks: int) -> tuple[list[dict], float]:
    """One run through the CLI; its log records and the CPU seconds all its processes used (start included)."""
    args = ["selfplay", "--model", str(model), "--sessions", "1", "--max-turns", str(turns + 1), "--out", str(out),
            "--max-new-tokens", str(tokens), "--seed", "0"]
    if ranks == 1:
        cmd = [sys.executable, "-m", "tbn_train.cli", *args]
    else:
        cmd = [str(LAUNCHER), "-n", str(ranks), "--backend", "ring", "--python", sys.executable,
               "-m", "tbn_train.cli", *args, "--distributed"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()], cpu


def throughput(run: tuple[list[dict], float]) -> dict:
    """Client-turns per minute over the turns after the first, a step lasting as long as its slowest rank;
    CPU seconds per client-turn over the whole run (start and warm-up included)."""
    records, cpu = run
    turns = sorted({r["turn"] for r in records})[1:]
    steps = [[r for r in records if r["turn"] == t] for t in turns]
    wall = sum(max(r["timings"]["total"] for r in step) for step in steps)
    clients = sum(len(step) for step in steps)
    timed = [r for step in steps for r in step]
    sync = sum(r["timings"].get("sync", 0.0) for r in timed) / sum(r["timings"]["total"] for r in timed)
    return {"client_turns_per_min": 60 * clients / wall, "step_s": wall / len(steps), "sync_share": sync,
            "cpu_per_client_turn": cpu / len(records)}


DAPT_FLAGS = ("--window-tokens", "256", "--recap-max-tokens", "16", "--compressor-slots", "16", "--rank", "8")  # a short
# window with a short recap: several windows per sample on the tiny model, as real samples have


def dapt(model: Path, data: Path, out: Path, samples: int, ranks: int) -> list[dict]:
    """One ``tbn-dapt train`` run through the CLI over the first ``samples`` (+ 2 warm-up) samples; its step records."""
    args = ["train", "--model", str(model), "--data", str(data), "--out", str(out), "--max-steps", str(samples + 2),
            "--seed", "0", *DAPT_FLAGS]
    if ranks == 1:
        cmd = [sys.executable, "-m", "dapt.cli", *args]
    else:
        cmd = [str(LAUNCHER), "-n", str(ranks), "--backend", "ring", "--python", sys.executable,
               "-m", "dapt.cli", *args, "--distributed"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["kind"] == "step"]


def dapt_rate(steps: list[dict]) -> dict:
    """Samples per minute and seconds per step after the warm-up's two samples."""
    warm = 2 // len(steps[0]["sample_ids"])
    timed = steps[warm:]
    wall = sum(r["seconds"] for r in timed)
    return {"samples_per_min": 60 * sum(len(r["sample_ids"]) for r in timed) / wall, "step_s": wall / len(timed),
            "windows": sum(n for r in timed for n in r["n_windows"])}


def dapt_bench(samples: int, hidden: int) -> None:
    from corpus.generate import generate
    from dapt.preprocess import preprocess

    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp) / "model", hidden=hidden)
        generate(Path(tmp) / "corpus", n=1, seed=0)
        preprocess(Path(tmp) / "corpus", Path(tmp) / "samples", ("dfr", "uhd"), tokenizer_dir=model)
        one = dapt_rate(dapt(model, Path(tmp) / "samples", Path(tmp) / "one", samples, 1))
        two = dapt_rate(dapt(model, Path(tmp) / "samples", Path(tmp) / "two", samples, 2))
        lora = sum(a.size for a in load_arrays(Path(tmp) / "two" / "adapter" / "adapters.safetensors", "adapter").values())
        comp = sum(a.size for k, a in load_arrays(Path(tmp) / "two" / "compressor.safetensors", "compressor").items()
                   if k.startswith("params."))
    print("| setting | samples / min | step (s) | windows timed |\n|---|---|---|---|")
    for name, r in (("1 process, 1 sample per step", one), ("2 ranks (ring, 127.0.0.1), 1 sample each per step", two)):
        print(f"| {name} | {r['samples_per_min']:.1f} | {r['step_s']:.2f} | {r['windows']} |")
    print(f"\nscaling 2 ranks / 1 process: {two['samples_per_min'] / one['samples_per_min']:.2f}× in samples per minute; "
          f"a 2-rank step all-reduces the LoRA gradient once ({lora:,} float32) and the compressor's once per "
          f"window index ({comp:,} float32)")


def probe(params: int) -> None:
    """Rank body: time PROBE_REPEATS all-reduces of ``params`` float32 after a barrier; rank 0 prints seconds each."""
    world = mx.distributed.init()
    vec = mx.ones(params + 3)
    mx.eval(mx.distributed.all_sum(mx.array([1.0]), stream=mx.cpu))  # barrier
    start = time.perf_counter()
    for _ in range(PROBE_REPEATS):
        mx.eval(mx.distributed.all_sum(vec, stream=mx.cpu))
    if world.rank() == 0:
        print(json.dumps({"allreduce_s": (time.perf_counter() - start) / PROBE_REPEATS}))


def measured_allreduce(params: int) -> float:
    cmd = [str(LAUNCHER), "-n", "2", "--backend", "ring", "--python", sys.executable, __file__, "--probe", str(params)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))["allreduce_s"]


def ring_allreduce_s(params: int, ranks: int) -> float:
    """Ring all-reduce of ``params`` float32 over Thunderbolt 5: 2(R−1)/R of the bytes cross each link, 2(R−1) hops."""
    if ranks == 1:
        return 0.0
    nbytes = 4 * params
    return 2 * (ranks - 1) / ranks * nbytes / (THUNDERBOLT5_BYTES_PER_S * RING_EFFICIENCY) + 2 * (ranks - 1) * HOP_LATENCY_S


def on_paper() -> list[str]:
    sys.path.insert(0, str(Path(__file__).parent))
    from plan_real_models import MODELS

    from tbn_train.config import TrainConfig
    from tbn_train.plan import PROMPT_TOKENS, make_plan

    rows = ["| model | trainable | bytes per all-reduce | " + " | ".join(f"R = {r}: reduce / turn, scaling" for r in RANKS_ON_PAPER) + " |",
            "|---|---|---|" + "---|" * len(RANKS_ON_PAPER)]
    with tempfile.TemporaryDirectory() as tmp:
        for name in PAPER_MODELS:
            folder = Path(tmp) / name
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps({**MODELS[name], "torch_dtype": "bfloat16"}))
            params = make_plan(folder, TrainConfig(), PROMPT_TOKENS).trainable
            cells = []
            for r in RANKS_ON_PAPER:
                reduce = REDUCES_PER_TURN * ring_allreduce_s(params, r)
                cells.append(f"{reduce * 1e3:.0f} ms, {r * REAL_TURN_S / (REAL_TURN_S + reduce):.2f}×")
            rows.append(f"| {name} | {params / 1e6:.1f} M | {4 * params / 1e6:.0f} MB | " + " | ".join(cells) + " |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4, help="timed turns per run (after one warm-up turn)")
    parser.add_argument("--tokens", type=int, default=16, help="generation cap per sample")
    parser.add_argument("--hidden", type=int, default=128, help="tiny model hidden size")
    parser.add_argument("--dapt", action="store_true", help="measure tbn-dapt train instead of self-play")
    parser.add_argument("--samples", type=int, default=8, help="--dapt: timed samples per run (after two warm-up samples)")
    parser.add_argument("--probe", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        probe(args.probe)
        return 0
    if args.dapt:
        dapt_bench(args.samples, args.hidden)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp) / "model", hidden=args.hidden)
        one = throughput(selfplay(model, Path(tmp) / "one", args.turns, args.tokens, 1))
        two = throughput(selfplay(model, Path(tmp) / "two", args.turns, args.tokens, 2))
        params = sum(a.size for a in load_arrays(Path(tmp) / "two" / "therapist" / "adapters.safetensors", "adapter").values())
        reduce_s = measured_allreduce(params)
    rows = ["| setting | client-turns / min | step (s) | sync share of the step | CPU s per client-turn (whole run) |",
            "|---|---|---|---|---|"]
    for name, r in (("1 process, 1 client", one), ("2 ranks (ring, 127.0.0.1), 1 client each", two)):
        rows.append(f"| {name} | {r['client_turns_per_min']:.1f} | {r['step_s']:.2f} | {r['sync_share']:.1%} "
                    f"| {r['cpu_per_client_turn']:.1f} |")
    print("\n".join(rows))
    print(f"\nscaling 2 ranks / 1 process: {two['client_turns_per_min'] / one['client_turns_per_min']:.2f}× in client-turns "
          f"per minute, {one['cpu_per_client_turn'] / two['cpu_per_client_turn']:.2f}× in client-turns per CPU second")
    print(f"bare all-reduce of the adapter's gradient ({params:,} float32, 2 ranks): {reduce_s * 1e3:.2f} ms; "
          f"{REDUCES_PER_TURN} per step = {REDUCES_PER_TURN * reduce_s / two['step_s']:.2%} of the 2-rank step")
    print("\non paper, R Mac Studios over Thunderbolt 5 (turn assumed", f"{REAL_TURN_S:.0f} s):")
    print("\n".join(on_paper()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
