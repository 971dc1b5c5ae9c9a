"""The one timing helper of the benches: the median of a few runs after a warm-up."""
import statistics
import time

REPEATS = 3  # median of 3 timed runs after one warm-up: enough to damp 2-core scheduler noise


def timed(fn, repeats: int = REPEATS) -> float:
    """Median wall time of ``fn`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
