"""The offline template client: speaks from its state, varies with the seed, ruptures in style."""
import numpy as np

from tbn_env.protocols import ClientView, DialogueTurn
from tbn_env.template_client import CORE, PROTEST, WITHDRAW, TemplateClient

HISTORY = (DialogueTurn(client="Hi.", therapist="Hello."),)


def view(**kw):
    base = dict(profile_card="card", attachment="B2", presenting_concerns=("grief",), turn=3,
                dominant_maladaptive=("grief", "fear", "shame"), salient_nodes=("grief_access",))
    return ClientView(**{**base, **kw})


def say(v, seed=0, history=HISTORY):
    return TemplateClient().respond(v, history, np.random.default_rng(seed))


def test_opening_line_names_the_concern():
    turn = say(view(turn=0), history=())
    assert "loss" in turn.utterance and not turn.rupture


def test_deterministic_per_rng_and_varied_across_seeds():
    assert say(view(phase="C"), 5) == say(view(phase="C"), 5)
    assert len({say(view(phase="B"), s).utterance for s in range(12)}) > 2


def test_core_access_speaks_the_dominant_bucket():
    utterance = say(view(phase="C", dominant_maladaptive=("abandonment", "grief"))).utterance
    assert any(line in utterance for line in CORE["abandonment"])


def test_rupture_style_follows_the_dmm_strategy():
    harsh = {"attunement": 1.0, "safety": 1.0}
    odd = say(view(attachment="A3", last_scores=harsh))
    even = say(view(attachment="C4", last_scores=harsh))
    assert odd.rupture and even.rupture
    assert odd.utterance in WITHDRAW and even.utterance in PROTEST


def test_type_c_amplifies_more_than_type_a():
    a = [say(view(attachment="A1", phase="B"), s).utterance for s in range(20)]
    c = [say(view(attachment="C2", phase="B"), s).utterance for s in range(20)]
    assert sum("!" in u or "too much" in u or "Why" in u for u in c) > sum("!" in u for u in a)
