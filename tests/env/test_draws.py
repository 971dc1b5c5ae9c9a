"""Clients are drawn from one block of uniforms each, so a batch and the same clients one by one agree."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn_env import ClientGraph, Params
from tbn_env.profiles import (DEFENSES, PRESETS, ProfileBatch, initial_states, profile_draws, profiles_from_uniforms,
                              sample_profile)
from tbn_env.state import InitialBatch, state_draws, states_from_uniforms

GRAPH = ClientGraph.default()
N = len(GRAPH.nodes)


def test_a_batch_of_clients_is_the_same_clients_drawn_one_by_one():
    rngs = [np.random.default_rng(s) for s in range(6)]
    u_profile = np.stack([r.random(profile_draws()) for r in rngs])
    u_state = np.stack([r.random(state_draws(N)) for r in rngs])
    batch = initial_states(profiles_from_uniforms(u_profile), u_state, 2, GRAPH)
    for i in range(6):
        rng = np.random.default_rng(i)
        one = sample_profile(rng).initial_state(rng, 2, GRAPH)
        row = batch.row(i)
        for field in ("levels", "buckets", "loa", "taie", "tmog", "bq_scale"):
            np.testing.assert_array_equal(getattr(row, field), getattr(one, field), err_msg=field)
        assert row.x_pole == one.x_pole and row.stage == one.stage == 2


def test_the_tmog_misreading_at_reset_is_normal_with_the_stage_sigma():
    u = np.random.default_rng(0).random((400, state_draws(N)))
    states = states_from_uniforms(u, 4, GRAPH)   # stage 4: sigma 1.0
    middle = (states.levels > 3) & (states.levels < 7)   # 3 sigma from either clip
    z = (states.tmog - states.levels)[middle]
    assert middle.sum() > 2000 and abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05


def test_sampled_profiles_follow_the_catalogue_weights():
    profiles = profiles_from_uniforms(np.random.default_rng(1).random((6000, profile_draws()))).profiles()
    concerns = [c for p in profiles for c in p.presenting_concerns]
    counts = {c: concerns.count(c) for c in set(concerns)}
    assert max(counts, key=counts.get) == "relational_distress"   # weighted twice (§7)
    assert all(len(p.defenses) in (0, 1, 2) and set(p.defenses) <= set(DEFENSES) for p in profiles)
    assert {len(p.defenses) for p in profiles} == {0, 1, 2} and {len(p.presenting_concerns) for p in profiles} == {1, 2}
    assert len({p.attachment for p in profiles}) == 22


def _profiles_as_arrays(u, codes):
    """Sampled profiles as numpy array expressions (the definition `profiles_from_uniforms` compiles): stable
    argsorts of the negated keys, cut at the drawn counts."""
    from tbn_env.profiles import CONCERNS, MAX_CONCERNS, MAX_DEFENSES
    weight = np.array([2.0 if c == "relational_distress" else 1.0 for c in CONCERNS])
    n_def = len(DEFENSES)
    strategy = codes[(u[:, 0] * len(codes)).astype(int)]
    defense_count = (u[:, 1] * (MAX_DEFENSES + 1)).astype(int)
    defenses = np.argsort(-u[:, 2:2 + n_def], axis=1, kind="stable")[:, :MAX_DEFENSES]
    concern_count = 1 + (u[:, 2 + n_def] * MAX_CONCERNS).astype(int)
    concerns = np.argsort(-u[:, 3 + n_def:] ** (1.0 / weight), axis=1, kind="stable")[:, :MAX_CONCERNS]
    defenses[np.arange(MAX_DEFENSES) >= defense_count[:, None]] = -1
    concerns[np.arange(MAX_CONCERNS) >= concern_count[:, None]] = -1
    return strategy, defenses, concerns


@pytest.mark.parametrize("levels", [None, 4, 2])
def test_sampled_profiles_are_their_array_expressions_ties_included(levels):
    """Continuous uniforms, and uniforms on a coarse grid (0 included) where most keys tie: a tie goes to the
    earlier index, as a stable sort orders them."""
    from tbn_env.profiles import _STRATEGY_INDEX
    u = np.random.default_rng(7).random((4000, profile_draws()))
    if levels is not None:
        u = np.floor(u * levels) / levels
    for strategies in (None, ("A1", "C8", "B3")):
        codes = np.arange(22) if strategies is None else np.array([_STRATEGY_INDEX[c] for c in strategies])
        drawn = profiles_from_uniforms(u, strategies)
        for name, got, expected in zip(("strategy", "defenses", "concerns"),
                                       (drawn.strategy, drawn.defenses, drawn.concerns), _profiles_as_arrays(u, codes)):
            np.testing.assert_array_equal(got, expected, err_msg=name)


def test_a_batch_with_a_bad_value_is_refused_naming_the_field():
    states = states_from_uniforms(np.random.default_rng(2).random((3, state_draws(N))), 1, GRAPH)
    states.buckets[1, 0] = 1.5
    with pytest.raises(ValueError, match="initial buckets"):
        states.validate(N)
    with pytest.raises(ValueError, match="uniforms"):
        states_from_uniforms(np.zeros((2, 5)), 1, GRAPH)
    assert isinstance(InitialBatch.stack([states.row(0)]), InitialBatch)


def _tilt_one_by_one(profile):
    """A profile's tilt as its definition reads: strategy, then each defence, then each concern's nodes."""
    from tbn_env.profiles import (CONCERN_SHIFT, CONCERNS, DEFENSE_BQ, DEFENSE_SHIFT, HIGHER_NUMBER_BQ,
                                  SECURE_RELIEF, STRATEGY_BQ, STRATEGY_SHIFT, TYPE_NODES)
    index = {n: i for i, n in enumerate(GRAPH.nodes)}
    family, number = profile.attachment[0], int(profile.attachment[1:])
    shift, bq = np.full(N, SECURE_RELIEF if family == "B" else 0.0), np.ones(N)
    for node in TYPE_NODES[family]:
        shift[index[node]] += STRATEGY_SHIFT
        bq[index[node]] *= STRATEGY_BQ + HIGHER_NUMBER_BQ * number
    for node in profile.defenses:
        shift[index[node]] += DEFENSE_SHIFT
        bq[index[node]] *= DEFENSE_BQ
    for concern in profile.presenting_concerns:
        for node in CONCERNS[concern][0]:
            shift[index[node]] += CONCERN_SHIFT
    return shift, bq


def test_batched_profile_tilts_equal_each_profile_tilted_alone():
    """Sampled clients, the presets and a hand-made profile repeating a defence and sharing concern nodes."""
    from tbn_env.profiles import PRESETS, ClientProfile, ProfileBatch, _tilts
    odd = ClientProfile(name="odd", attachment="C7", defenses=("splitting", "splitting", "denial"),
                        presenting_concerns=("anger", "abandonment", "loneliness"))
    profiles = [*profiles_from_uniforms(np.random.default_rng(2).random((300, profile_draws()))).profiles(),
                *PRESETS.values(), odd]
    shift, bq = _tilts(GRAPH, ProfileBatch.of(profiles))
    for i, profile in enumerate(profiles):
        one_shift, one_bq = _tilt_one_by_one(profile)
        np.testing.assert_array_equal(shift[i], one_shift, err_msg=profile.name)
        np.testing.assert_array_equal(bq[i], one_bq, err_msg=profile.name)


#: Params at the edges of what `Params` accepts for a draw: pathology and bucket ranges touching 0 and 1 (reversed
#: too), the widest jitter, LOA ranges on the scale's ends, no TMoG misreading and one far wider than the scale
EDGES = Params(init_pathology=((0.0, 1.0), (1.0, 0.0), (0.3, 1.0), (0.0, 0.0)), init_maladaptive=(1.0, 0.0, 1.0, 0.0),
               init_adaptive=(0.0, 1.0, 0.0, 1.0), init_bucket_jitter=1.0,
               init_loa=((-10.0, 10.0), (10.0, -10.0), (-10.0, -10.0), (9.5, 10.0)),
               tmog_sigma_by_stage=(50.0, 0.0, 5.0, 1.0), init_sessions_completed=(0, 0, 3, 40))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**63), stage=st.integers(1, 4), preset=st.sampled_from([None, *PRESETS]),
       edges=st.booleans(), uniforms=st.sampled_from(["random", "lowest", "highest"]), clients=st.integers(1, 6))
def test_a_drawn_client_passes_the_checks_of_a_given_state(seed, stage, preset, edges, uniforms, clients):
    """The envs load their own draws unchecked (`DrawnClients`): every value of a drawn state lies in its range by
    construction, sampled profiles and presets, at the edges of Params' ranges and of the uniforms (0 and the
    largest double below 1) included."""
    rng = np.random.default_rng(seed)
    u = {"random": rng.random((clients, state_draws(N))), "lowest": np.zeros((clients, state_draws(N))),
         "highest": np.full((clients, state_draws(N)), np.nextafter(1.0, 0.0))}[uniforms]
    profiles = profiles_from_uniforms(rng.random((clients, profile_draws()))) if preset is None else \
        ProfileBatch.of([PRESETS[preset]] * clients)
    states = initial_states(profiles, u, stage, GRAPH, EDGES if edges else Params())
    assert states.validate(N) is states
    assert states_from_uniforms(u, stage, GRAPH, EDGES if edges else Params()).validate(N)


@pytest.mark.parametrize("stage", [1, 4])
def test_an_loa_range_off_the_scale_is_refused_before_a_draw(stage):
    """A drawn state's LOA is kept on the scale, so Params whose LOA range leaves it are refused, not clipped."""
    init_loa = ((-12.0, -3.0), (-4.0, 0.0), (-1.0, 3.0), (2.0, 10.5))
    u = np.random.default_rng(0).random((2, state_draws(N)))
    for draw in (lambda: states_from_uniforms(u, stage, GRAPH, Params(init_loa=init_loa)),
                 lambda: initial_states([PRESETS["maya_grief"]] * 2, u, stage, GRAPH, Params(init_loa=init_loa))):
        with pytest.raises(ValueError, match=r"Params.init_loa must lie in \[-10.0, 10.0\]"):
            draw()
