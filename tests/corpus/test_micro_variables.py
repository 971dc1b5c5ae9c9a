"""Micro-variables: App. 26's option counts and the persistent diminishing pool (§7.4)."""
from corpus.micro_variables import OPTION_COUNTS, DiminishingPool, configuration_space, load_catalogue


def test_catalogue_has_exactly_the_appendix_option_counts():
    cat = load_catalogue()
    assert len(cat) == 14 and tuple(len(v) for v in cat.values()) == OPTION_COUNTS
    assert configuration_space() == 3_992_064_727_449_600  # the true product (App. 26 states 5.026e17)


def test_pool_draws_without_replacement_until_exhausted():
    pool = DiminishingPool(None, seed=1)
    draws = [pool.draw() for _ in range(36)]
    ticks = [d["speech_tic"] for d in draws]
    assert len(set(ticks)) == 36                                    # every option once before any repeat
    gazes = [d["gaze"] for d in draws[:12]]
    assert len(set(gazes[:6])) == 6 and len(set(gazes[6:])) == 6   # refilled after 6


def test_pool_state_persists_across_runs(tmp_path):
    path = tmp_path / "pool.json"
    one = DiminishingPool(path, seed=2)
    first = [one.draw()["metaphor_domain"] for _ in range(10)]
    one.save()
    two = DiminishingPool(path, seed=999)  # a later run continues the saved pool, whatever its seed
    rest = [two.draw()["metaphor_domain"] for _ in range(22)]
    assert len(set(first + rest)) == 32
    fresh = DiminishingPool(None, seed=2)
    assert [fresh.draw()["metaphor_domain"] for _ in range(32)] == first + rest


def test_a_pooled_run_resumes_with_the_same_draws(tmp_path):
    import json

    import asyncio

    import pytest

    from corpus.generate import OfflineBackend, generate, run_generation
    from corpus.writer import read_samples

    def crash_at_8(sid, seen=[]):
        seen.append(sid)
        if len(seen) == 8:
            raise KeyboardInterrupt
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    generate(full, 20, seed=3, pool_path=full / "pool.json")
    with pytest.raises(KeyboardInterrupt):  # concurrency 4: draws for later samples were already made
        asyncio.run(run_generation(crashed, 20, OfflineBackend(), 3, concurrency=4, pool_path=crashed / "pool.json",
                                   on_written=crash_at_8))
    generate(crashed, 20, seed=3, resume=True, pool_path=crashed / "pool.json")
    micro = [json.loads(x)["client"]["micro_variables"] for _, _, x in read_samples(crashed)]
    assert micro == [json.loads(x)["client"]["micro_variables"] for _, _, x in read_samples(full)]
    assert len({m["closing_ritual"] for m in micro[:6]}) == 6  # the pool, not independent draws


def test_480_distinct_strength_manifestations_and_stage_gating():
    import numpy as np

    from corpus.strengths import ACCESSIBLE_BY_STAGE, catalogue, sample_states
    cat = catalogue()
    assert len(cat) == 480 and len({m.strength for m in cat}) == 24
    for role in ("accessible", "blocked", "shadow", "lever", "repair_move"):
        assert len({getattr(m, role) for m in cat}) == 480
    rng = np.random.default_rng(0)
    for stage, (lo, hi) in ACCESSIBLE_BY_STAGE.items():
        counts = {sum(s == "accessible" for _, s in sample_states(rng, stage)) for _ in range(200)}
        assert counts == set(range(lo, hi + 1))


def test_narcissism_turns_prone_strengths_to_shadow():
    import numpy as np

    from corpus.strengths import NARCISSISM_PRONE, sample_states

    def shadow_share(narcissism):
        rng = np.random.default_rng(1)
        states = [s for _ in range(3000) for m, s in sample_states(rng, 1, narcissism)
                  if m.strength in NARCISSISM_PRONE and s != "accessible"]
        return states.count("shadow") / len(states)
    assert shadow_share(1.0) > shadow_share(0.0) + 0.2


def test_narcissism_makes_prone_strengths_less_often_the_accessible_ones():
    import numpy as np

    from corpus.strengths import NARCISSISM_PRONE, sample_states

    def accessible_prone_share(narcissism):
        rng = np.random.default_rng(2)
        states = [m.strength in NARCISSISM_PRONE for _ in range(3000) for m, s in sample_states(rng, 2, narcissism)
                  if s == "accessible"]
        return np.mean(states)
    assert accessible_prone_share(1.0) < accessible_prone_share(0.0) - 0.05
