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
    o, c, r = (report[k]["iqm"] for k in ("oracle", "best_constant", "random"))
    assert report["gap_share"] == pytest.approx((o - c) / (o - r), abs=1e-3)
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--settings", "stage9"], "--settings: unknown ['stage9']"),
    (["--agents", "sac"], "--agents: unknown ['sac']"),
    (["--seeds", "0"], "--seeds must be >= 1"),
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
