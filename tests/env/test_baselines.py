"""`python -m tbn_env.baselines`: the statistics, the report and bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tbn_env import baselines


def test_iqm_is_the_mean_of_the_middle_half():
    assert baselines.iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)      # one run cut from each end of five
    assert baselines.iqm([5, 1, 4, 2, 3, 6, 8, 7]) == pytest.approx(4.5)  # two cut from each end of eight
    lo, hi = baselines.bootstrap_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert lo <= baselines.iqm([1, 2, 3, 4, 100]) <= hi and hi < 100.0


def test_the_report_holds_every_policy_with_intervals(tmp_path):
    pytest.importorskip("stable_baselines3")
    assert baselines.main(["--settings", "stage4", "--agents", "ppo", "--seeds", "2", "--steps", "64",
                           "--clients", "4", "--curve-points", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "baselines.json").read_text())["settings"]["stage4"]
    assert set(report["constants"]) == set(baselines.NAMES)
    assert report["best_constant"]["iqm"] == max(c["iqm"] for c in report["constants"].values())
    for entry in (report["random"], report["oracle"], report["agents"]["ppo"]):
        assert len(entry["runs"]) == 2 and entry["ci95"][0] <= entry["iqm"] <= entry["ci95"][1]
    ppo = report["agents"]["ppo"]
    assert ppo["oracle_share"] == pytest.approx(ppo["iqm"] / report["oracle"]["iqm"], abs=1e-3)
    assert ppo["beats_best_constant"] == (ppo["ci95"][0] > report["best_constant"]["ci95"][1])
    o, c, r = (report[k]["iqm"] for k in ("oracle", "best_constant", "random"))
    assert report["gap_share"] == pytest.approx((o - c) / (o - r), abs=1e-3)
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_agents_train_only_on_the_pairs_asked_for(tmp_path):
    pytest.importorskip("stable_baselines3")
    assert baselines.main(["--settings", "stage3,stage4", "--agents", "ppo", "--train", "ppo:stage4", "--seeds", "1",
                           "--steps", "64", "--clients", "2", "--curve-points", "0", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "baselines.json").read_text())["settings"]
    assert report["stage3"]["agents"] == {} and set(report["stage4"]["agents"]) == {"ppo"}
    assert "stage3 | " in (tmp_path / "baselines.md").read_text()   # its reference row is in the table


def test_equal_budget_pairs_the_curve_points_at_the_shorter_budget():
    short = {"steps": 100, "seeds": [0, 1], **baselines.summary([5.0, 7.0]),
             "curves": [[[50, 1.0], [100, 4.5]], [[50, 2.0], [100, 6.5]]]}
    long = {"steps": 500, "seeds": [0, 1], **baselines.summary([9.0, 9.0]),
            "curves": [[[100, 3.0], [500, 9.0]], [[100, 4.0], [500, 9.0]]]}
    [pair] = baselines.equal_budget({"recurrent_ppo": short, "ppo": long})
    assert pair["steps"] == 100 and pair["recurrent_ppo"]["runs"] == [4.5, 6.5] and pair["ppo"]["runs"] == [3.0, 4.0]
    assert baselines.equal_budget({"recurrent_ppo": short, "ppo": {**long, "curves": [[[500, 9.0]]] * 2}}) == []


@pytest.mark.parametrize("args, message", [
    (["--settings", "stage9"], "--settings: unknown ['stage9']"),
    (["--agents", "sac"], "--agents: unknown ['sac']"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--agents", "ppo", "--settings", "stage1", "--train", "ppo:stage2"], "--train: ['ppo:stage2'] are not"),
])
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path):
    out = subprocess.run([sys.executable, "-m", "tbn_env.baselines", *args, "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert f"tbn-env-baselines: error: {message}" in out.stderr
    assert not (tmp_path / "x").exists()  # nothing written


def test_reference_policies_are_paired_on_the_same_clients():
    """The same evaluation seed gives the same clients, so a constant's returns repeat exactly."""
    a = baselines.evaluate("stage2", baselines.constant_policy(0), 4, 123)
    b = baselines.evaluate("stage2", baselines.constant_policy(0), 4, 123)
    assert np.array_equal(a, b)
