"""Client personhood and therapist samplers: distributions checked statistically (§7.4.1, App. 22, 24, 27)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.catalogues import load
from corpus.context import crescendo_probability, dmm, stage_context
from corpus.generate import participants
from corpus.sampler import CONCERNS, RELIGIONS, sample_client, sample_religion, stage_range
from corpus.schema import DMM_CODES, ClientProfile, Session, TherapistProfile
from corpus.therapist import interaction_guidance, level, sample_therapist, schools


def clients(stage, n, seed=0):
    rng = np.random.default_rng(seed)
    return [sample_client(rng, "c", stage) for _ in range(n)]


@pytest.mark.parametrize("name,stage,lo,hi", [("dysregulation", 1, 0.5, 1.0), ("dysregulation", 4, 0.0, 0.1),
                                              ("mentalization", 1, 0.0, 0.3), ("mentalization", 4, 0.9, 1.0),
                                              ("defensive_humor", 1, 0.5, 1.0), ("healing_humor", 4, 0.6, 1.0)])
def test_paper_ranged_dimensions_stay_in_their_stage_range(name, stage, lo, hi):
    values = [c.personality[name] for c in clients(stage, 200)]
    assert lo <= min(values) and max(values) <= hi            # App. 22 §22.1.1.6 (0-10 scale / 10)
    assert max(values) - min(values) > 0.5 * (hi - lo)        # and spread across it, not a constant


def test_interpolated_stages_lie_between_the_stated_ends():
    lo2, hi2 = stage_range("dysregulation", 2)
    assert 0.0 < lo2 < 0.5 and 0.1 < hi2 < 1.0
    means = [np.mean([c.personality["dysregulation"] for c in clients(s, 150)]) for s in (1, 2, 3, 4)]
    assert means == sorted(means, reverse=True)


def test_trust_is_polarised_early_and_balanced_late():
    early = np.array([c.personality["trust_orientation"] for c in clients(1, 300)])
    late = np.array([c.personality["trust_orientation"] for c in clients(4, 300)])
    assert np.all((early <= 0.2) | (early >= 0.8)) and 0.35 < np.mean(early >= 0.8) < 0.65
    assert np.all((late >= 0.4) & (late <= 0.8))


def test_concerns_lean_relational_and_religion_follows_the_gate():
    cs = clients(2, 800, seed=1)
    relational = [k for k, w in CONCERNS.items() if w > 1]
    share = np.mean([c.presenting_concerns[0] in relational for c in cs])
    expected = sum(CONCERNS[k] for k in relational) / sum(CONCERNS.values())
    assert abs(share - expected) < 0.06 and share > 0.5
    rng = np.random.default_rng(5)
    draws = [sample_religion(rng) for _ in range(8000)]
    relevant = [d for d in draws if d]
    for tradition in ("Christianity", "Islam", "Hinduism", "Buddhism"):    # §7.4.1 footnote
        assert abs(relevant.count(tradition) / len(relevant) - RELIGIONS[tradition]) < 0.03


def test_defences_cohere_with_the_dmm_family_and_markers_with_parity():
    table = load("clients")["defenses"]
    for c in clients(1, 300, seed=2):
        assert set(c.defenses) <= set(table[c.attachment[0]])
    assert {c.attachment for c in clients(1, 600, seed=3)} == set(DMM_CODES)
    assert dmm("A1")["rupture_style"].startswith("withdrawal") and dmm("C2")["rupture_style"].startswith("protest")
    assert dmm("A1")["shame"] != dmm("A2")["shame"] and dmm("B3")["parity"] == "balanced"


def test_demographics_names_fit_the_region_and_salience_covers_every_micro_variable():
    names = load("clients")["names"]
    for c in clients(3, 100, seed=4):
        assert c.name in names[c.demographics["region"]]
        assert set(c.salience) == set(c.micro_variables) and len(c.micro_variables) == 14


def test_stages_3_and_4_force_great_experienced_therapists():
    rng = np.random.default_rng(0)
    late = [sample_therapist(rng, "t", s) for s in (3, 4) for _ in range(200)]
    assert all(t.quality == "GREAT" and t.experience != "novice" for t in late)
    assert all(min(t.warmth, t.empathy, t.attunement) >= 0.7 for t in late)   # 7-10 of 10 (App. 22)
    early = [sample_therapist(rng, "t", 1) for _ in range(400)]
    assert {t.quality for t in early} == {"POOR", "ADEQUATE", "GOOD", "GREAT"}
    assert {t.experience for t in early} == {"novice", "intermediate", "expert"}
    bands = load("therapists")["experience"]
    assert all(bands[t.experience]["years"][0] <= t.years_experience <= bands[t.experience]["years"][1]
               for t in early + late)
    sizes = {t.orientation: len(t.schools) for t in early}
    assert sizes == {"single_modality": 1, "integrative": 2, "eclectic": 3}
    assert len(schools()) == 23 and {s for t in early for s in t.schools} <= {s["name"] for s in schools()}


def test_interaction_rules_apply_only_to_matching_pairs():
    client = participants(0, 0).client.model_copy(update={"attachment": "A2"})
    therapist = participants(0, 0).therapist.model_copy(update={"warmth": 0.9, "ambition": 0.1,
                                                                 "experience": "expert"})
    lines = interaction_guidance(therapist, client)
    assert any("Type A" in line for line in lines) and not any("Type C" in line for line in lines)
    cool = therapist.model_copy(update={"warmth": 0.1})
    assert not any("Type A" in line for line in interaction_guidance(cool, client))
    assert level(0.29) == "low" and level(0.3) == "moderate" and level(0.7) == "high"   # App. 27 cut points


def test_stage_gates_follow_the_paper_ends():
    assert crescendo_probability(1) == pytest.approx(0.02) and crescendo_probability(4) == pytest.approx(0.75)
    assert [stage_context(s, 1).trauma_access for s in (1, 2, 3, 4)] == ["inaccessible", "fragments", "full", "full"]


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), index=st.integers(0, 10**6), stage=st.sampled_from([None, 1, 2, 3, 4]))
def test_any_seeded_participants_are_valid_reproducible_and_round_trip(seed, index, stage):
    a, b = participants(seed, index, stage), participants(seed, index, stage)
    assert a == b
    assert stage is None or a.context.stage == stage
    assert a.context.stage in (1, 2, 3) or stage == 4                   # stage 4 only when forced
    assert ClientProfile.model_validate_json(a.client.model_dump_json()) == a.client
    assert TherapistProfile.model_validate_json(a.therapist.model_dump_json()) == a.therapist


@settings(max_examples=10)
@given(seed=st.integers(0, 1000), index=st.integers(0, 1000))
def test_offline_sessions_round_trip_through_json(seed, index):
    from corpus.generate import offline_session
    s = offline_session(seed, index)
    assert Session.model_validate_json(s.model_dump_json()) == s
