"""`tbn-train eval`: held-out clients, adapters side by side, deterministic numbers, plots, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.rubric_judge import RubricJudge
from tbn_train.adapter_io import save_adapter
from tbn_train.cli import main
from tbn_train.clients import HELD_OUT_STRATEGIES, held_out_profiles, training_profile
from tbn_train.evaluate import bootstrap_ci, hacking_screen
from tbn_train.judges import resolve_judge

from .conftest import three_adapter_model

PLOTS = ("composite_by_turn.png", "phase_progress.png", "dimensions.png")


@pytest.fixture(scope="module")
def adapters(llama_dir, tmp_path_factory):
    """Two different mlx-lm adapters (non-zero B, different layouts)."""
    root = tmp_path_factory.mktemp("adapters")
    model, _, router = three_adapter_model(llama_dir)
    return [str(save_adapter(model, router, name, root / name)) for name in ("therapist", "client")]


def eval_args(llama_dir, out, *adapter_dirs, sessions="2"):
    args = ["eval", "--model", str(llama_dir), "--sessions", sessions, "--max-turns", "2", "--max-new-tokens", "12",
            "--out", str(out)]
    for a in adapter_dirs:
        args += ["--adapter", a]
    return args


@pytest.fixture(scope="module")
def two_adapter_eval(llama_dir, adapters, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "two"
    assert main(eval_args(llama_dir, out, *adapters)) == 0
    return out


def test_eval_of_two_adapters_writes_json_and_plots_with_the_same_clients(two_adapter_eval, adapters):
    report = json.loads((two_adapter_eval / "eval.json").read_text())
    assert sorted(report["adapters"]) == ["client", "therapist"]  # directory names label the adapters
    for name in PLOTS:
        assert (two_adapter_eval / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = [[(s["client"], s["seed"], s["start_stage"]) for s in rep["sessions"]] for rep in report["adapters"].values()]
    assert runs[0] == runs[1] == [(c["name"], c["seed"], c["start_stage"]) for c in report["clients"]]
    assert all(c["attachment"] in HELD_OUT_STRATEGIES for c in report["clients"])
    for rep in report["adapters"].values():
        lo, hi = rep["composite"]["ci95"]
        assert lo <= rep["composite"]["mean"] <= hi and set(rep["dimensions"]) == set(JUDGE_DIMENSIONS)
        assert sum(rep["phase_reached"].values()) == 2 and 0.0 <= rep["validator_failure_rate"] <= 1.0
        assert {"type_token_ratio", "repeated_trigram_share", "formulas_per_turn", "words_per_turn"} <= set(rep["hacking_screen"])
        assert rep["reward_per_session"]["total"]["mean"] == pytest.approx(
            np.mean([s["reward_totals"]["total"] for s in rep["sessions"]]))
    first, second = report["adapters"].values()
    assert [t["utterance"] for t in first["sessions"][0]["turns"]] != [t["utterance"] for t in second["sessions"][0]["turns"]]


def test_the_same_adapter_twice_gives_identical_numbers(two_adapter_eval, llama_dir, adapters, tmp_path):
    assert main(eval_args(llama_dir, tmp_path / "again", adapters[0])) == 0
    again = json.loads((tmp_path / "again" / "eval.json").read_text())["adapters"]["therapist"]
    before = json.loads((two_adapter_eval / "eval.json").read_text())["adapters"]["therapist"]
    assert again == before


@pytest.mark.parametrize("case, message", [
    ("unknown_adapter", "does not exist"),
    ("overlapping_clients", "self-play trains on"),
    ("zero_sessions", "sessions"),
    ("existing_report", "exists"),
])
def test_bad_input_exits_2_with_one_line(case, message, llama_dir, two_adapter_eval, tmp_path, capsys):
    out, extra = tmp_path / "out", []
    sessions = "0" if case == "zero_sessions" else "1"
    if case == "unknown_adapter":
        extra = ["--adapter", str(tmp_path / "nope")]
    if case == "overlapping_clients":
        clients = tmp_path / "clients.toml"
        clients.write_text('[[client]]\nname = "maya"\nattachment = "B2"\n')
        extra = ["--clients", str(clients)]
    if case == "existing_report":
        out = two_adapter_eval
    before = (out / "eval.json").read_bytes() if case == "existing_report" else None
    assert main(eval_args(llama_dir, out, sessions=sessions) + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tbn-train: error:") and message in err and "\n" not in err
    if before is not None:
        assert (out / "eval.json").read_bytes() == before
    else:
        assert not (out / "eval.json").exists()


def test_self_play_never_samples_a_held_out_client():
    drawn = {training_profile(seed, session).attachment for seed in range(5) for session in range(200)}
    assert not drawn & set(HELD_OUT_STRATEGIES) and len(drawn) == 19
    assert held_out_profiles(4) == held_out_profiles(4)
    assert [p.attachment for p in held_out_profiles(3)] == list(HELD_OUT_STRATEGIES)


def test_hacking_screen_separates_stuffing_from_varied_speech():
    stuffed = hacking_screen(["I hear you, that makes sense, I hear you, no wonder, take your time."] * 6)
    varied = hacking_screen(["That sounds heavy.", "What was it like when she left?", "You kept going anyway.",
                             "Where do you feel it now?", "It makes sense you'd be tired.", "Let's slow down."])
    assert stuffed["repeated_trigram_share"] > varied["repeated_trigram_share"]
    assert stuffed["formulas_per_turn"] > 3 > varied["formulas_per_turn"]
    assert stuffed["type_token_ratio"] < varied["type_token_ratio"] and stuffed["distinct_utterances"] < 0.2


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    x = [4.0, 5.0, 6.0, 7.0]
    assert bootstrap_ci(x) == bootstrap_ci(x) and bootstrap_ci(x)[0] < 5.5 < bootstrap_ci(x)[1]
    assert bootstrap_ci([3.0]) == [3.0, 3.0]


def rubric_factory(persona):
    return RubricJudge(persona)


def not_a_judge(persona):
    return object()


def test_judge_entry_points_resolve_or_are_refused():
    assert resolve_judge(f"{__name__}:rubric_factory", "harsh").persona == "harsh"
    with pytest.raises(ValueError, match="does not implement the Judge protocol"):
        resolve_judge(f"{__name__}:not_a_judge")
    with pytest.raises(ValueError, match="cannot import"):
        resolve_judge("no_such_module_xyz:factory")
    with pytest.raises(ValueError, match="module:factory"):
        resolve_judge("nonsense")


def test_selfplay_eval_every_draws_the_held_out_curve(llama_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["selfplay", "--model", str(llama_dir), "--sessions", "1", "--max-turns", "2", "--out", str(out),
            "--max-new-tokens", "8", "--eval-every", "1", "--eval-sessions", "1",
            "--judge", f"{__name__}:rubric_factory"]
    assert main(argv) == 0
    curve = json.loads((out / "eval" / "curve.json").read_text())
    assert [p["turn"] for p in curve] == [1, 2]
    assert (out / "eval" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["eval"]["composite"] for r in rows] == [p["composite"] for p in curve]
    grpo = rows[0]["grpo"]
    assert grpo["reward"] == pytest.approx(np.mean(grpo["scores"])) and grpo["reward_std"] == pytest.approx(np.std(grpo["scores"]))
    assert grpo["completion_length"] > 0 and ("kl" in grpo or grpo["skipped"])
    assert rows[-1]["session_assessment"]["evaluation"].startswith("[offline template]")
