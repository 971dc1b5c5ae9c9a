"""DAPT speed: preprocessing throughput and peak memory as the corpus grows ×10; RRA time per window by size.

Preprocessing runs in a fresh subprocess per corpus size so each peak RSS is its own; memory should stay
flat because sessions stream one at a time. RRA times one window's three parts on the tiny model
(forward + backward through LoRA, compressor step, recap generation). Run: .venv/bin/python bench/bench_dapt.py
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (20, 200)               # sessions: the ×10 growth the issue asks about
WINDOW_SIZES = (128, 256, 512, 1024)
RECAP_TOKENS = 32
REPEATS = 3

PREPROCESS = """
import json, resource, sys, time
from pathlib import Path
from corpus.writer import read_samples
from dapt.preprocess import preprocess
corpus, out = sys.argv[1], sys.argv[2]
turns = sum(len(json.loads(line)["turns"]) for _, _, line in read_samples(corpus))
t = time.perf_counter()
n = preprocess(corpus, out)
seconds = time.perf_counter() - t
size = sum(p.stat().st_size for p in Path(out).glob("*.jsonl"))
print(json.dumps({"samples": n, "turns": turns, "seconds": seconds, "bytes": size,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def preprocess_rows(root: Path) -> list[dict]:
    from corpus.generate import generate

    rows = []
    for n in SIZES:
        generate(root / f"corpus{n}", n=n, seed=0)
        out = subprocess.run([sys.executable, "-c", PREPROCESS, str(root / f"corpus{n}"), str(root / f"samples{n}")],
                             check=True, capture_output=True, text=True).stdout
        rows.append({"sessions": n, **json.loads(out.splitlines()[-1])})
    return rows


def rra_rows(root: Path) -> list[dict]:
    import tbn_train  # noqa: F401  (first: preloads OpenBLAS)
    import mlx.core as mx
    import mlx.optimizers as optim
    import numpy as np

    from dapt.clusters import load_tokenizer
    from dapt.compressor import KVCompressor, kv_geometry
    from dapt.recap import generate_recap
    from dapt.rra import RollingRecap
    from tbn_train.lora import AdapterRouter, LoRASpec, add_adapter, set_trainable
    from tbn_train.model import load_model
    from tbn_train.tiny_model import make_tiny_model

    model_dir = make_tiny_model(root / "tiny", seed=0)
    model, wrapper = load_model(model_dir)
    router = AdapterRouter()
    add_adapter(model, router, "dapt", LoRASpec(attn_rank=32, mlp_rank=32), seed=0)
    set_trainable(model, router, "dapt")
    router.active = "dapt"
    compressor = KVCompressor(kv_geometry(model), seed=0)
    rra = RollingRecap(model, load_tokenizer(model_dir), compressor, optim.Adam(1e-5), optim.Adam(1e-6),
                       wrapper.eos_token_ids, recap_max_tokens=RECAP_TOKENS)
    rng = np.random.default_rng(0)
    slots = [(mx.zeros((1, h, compressor.slots, k)), mx.zeros((1, h, compressor.slots, v))) for h, k, v in kv_geometry(model)]
    recap = rng.integers(10, 400, RECAP_TOKENS).tolist()
    rows = []
    for size in WINDOW_SIZES:
        window = rra.window_input(slots, recap, rng.integers(10, 400, size).astype(np.int32), np.ones(size, dtype=bool))
        best = {"train": 1e9, "compress": 1e9, "recap": 1e9}
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            loss, kv, grads = rra.window_gradients(window)
            mx.eval(loss, kv, grads)
            t1 = time.perf_counter()
            _, new_slots, _, comp_grads = rra.compress(kv)
            rra.compressor_optimizer.update(compressor, comp_grads)
            mx.eval(new_slots, compressor.parameters())
            t2 = time.perf_counter()
            mx.random.seed(0)
            generate_recap(model, new_slots, rra.open_ids, set(), max_tokens=RECAP_TOKENS)
            t3 = time.perf_counter()
            for key, value in zip(best, (t1 - t0, t2 - t1, t3 - t2)):
                best[key] = min(best[key], value)
        rows.append({"window": size, **best})
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pre = preprocess_rows(root)
        rra = rra_rows(root)
    print("| sessions | turns | samples | turns/s | output MB/s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in pre:
        print(f"| {r['sessions']} | {r['turns']} | {r['samples']} | {r['turns'] / r['seconds']:.0f} | "
              f"{r['bytes'] / r['seconds'] / 1e6:.1f} | {r['peak_mb']:.0f} |")
    print(f"\npeak memory ×{pre[-1]['peak_mb'] / pre[0]['peak_mb']:.2f} for ×{SIZES[-1] // SIZES[0]} sessions\n")
    print(f"| window tokens | train fwd+bwd ms | compressor ms | recap ({RECAP_TOKENS} tok) ms | total ms | "
          f"× time of the {WINDOW_SIZES[0]}-token window | ms per 1K content tokens |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    for r in rra:
        total = r["train"] + r["compress"] + r["recap"]
        first = first or total
        print(f"| {r['window']} | {r['train'] * 1e3:.0f} | {r['compress'] * 1e3:.0f} | {r['recap'] * 1e3:.0f} | "
              f"{total * 1e3:.0f} | {total / first:.1f} | {total * 1e3 / r['window'] * 1000:.0f} |")


if __name__ == "__main__":
    main()
