"""tbn_env core speed: the compiled kernel against the reference, side by side in one run.

Measured in a default process (no thread settings): the compiled turn calls no BLAS; a batch of at
least 2 x 128 clients is split over a thread per core (`tbn_env.kernel.MIN_CLIENTS_PER_THREAD`).
Prints a markdown table of rates and ratios, and the first-use time of the env with an empty numba
cache (compiling) and with the cache it wrote (loading).
Run: .venv/bin/python bench/bench_env_core.py
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from tbn_env import BatchKernel, ClientGraph, ReferenceCore, sample_initial_state

REPEATS = 3  # best of 3 timing windows per row


def rate(step, n: int) -> float:
    """Best-of-REPEATS calls per second of `step`."""
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(n):
            step()
        best = min(best, time.perf_counter() - t)
    return n / best


FIRST_STEP = ("import time; t = time.perf_counter(); import numpy as np, gymnasium as gym, tbn_env; "
              "e = gym.make('Therapy-Scores-v0'); e.reset(seed=0); e.step(np.full(12, 5.0, np.float32)); "
              "print(time.perf_counter() - t)")


def first_use_seconds(cache: str) -> float:
    """Seconds from `import tbn_env` to the first step in a fresh process using numba cache dir `cache`."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    graph = ClientGraph.default()
    rng = np.random.default_rng(0)
    init = sample_initial_state(rng, 1, graph)
    scores = rng.uniform(0, 10, (1024, 12))
    noise = rng.standard_normal((1024, len(graph.nodes)))

    ref = ReferenceCore(init, graph=ClientGraph(graph.graph.copy(), graph.params))
    ref_rate = rate(lambda: ref.turn(scores[0], noise[0]), 200)

    one = BatchKernel(1, graph=graph)
    one.load(0, init)
    one_rate = rate(lambda: one.step(scores[:1], noise[:1]), 2000)

    batch = BatchKernel(1024, graph=graph)
    for i in range(1024):
        batch.load(i, sample_initial_state(rng, 1 + i % 4, graph))
    batch_rate = rate(lambda: batch.step(scores, noise), 30) * 1024

    print("| implementation | client-turns/s | x reference |")
    print("|---|---:|---:|")
    print(f"| reference (networkx walk), 1 client | {ref_rate:,.0f} | 1.0 |")
    print(f"| compiled kernel, batch 1 | {one_rate:,.0f} | {one_rate / ref_rate:.1f} |")
    print(f"| compiled kernel, batch 1024 | {batch_rate:,.0f} | {batch_rate / ref_rate:.0f} |")
    with tempfile.TemporaryDirectory() as cache:
        cold, warm = first_use_seconds(cache), first_use_seconds(cache)
    print(f"\nFirst step in a fresh process: {cold:.1f} s with an empty numba cache (compiling), "
          f"{warm:.1f} s with the cache it wrote.")


if __name__ == "__main__":
    main()
