"""The calibrated course (`tbn-env-course`): the targets it is calibrated to, and its command line."""
import json

import numpy as np
import pytest

from tbn_env.course import DEFAULT_CLIENTS, THERAPISTS, main, run_course
from tbn_env.env import DEFAULT_MAX_SESSIONS


@pytest.fixture(scope="module")
def stage1():
    return {name: run_course(THERAPISTS[name], 1) for name in ("harmful", "mediocre", "excellent", "noisy_excellent")}


def completed_share(run) -> float:
    return float((run.completed_session > 0).mean())


def test_an_excellent_therapist_completes_a_stage_1_treatment_within_the_default_sessions(stage1):
    """>= 80 % of sampled clients reach stage 4 and integrate within `max_sessions` (also with noisy scores)."""
    assert len(stage1["excellent"].completed_session) == DEFAULT_CLIENTS
    assert completed_share(stage1["excellent"]) >= 0.8
    assert completed_share(stage1["noisy_excellent"]) >= 0.8
    assert stage1["excellent"].completed_session.max() <= DEFAULT_MAX_SESSIONS


def test_a_mediocre_therapist_rarely_completes_and_a_harmful_one_never_leaves_stage_1(stage1):
    assert completed_share(stage1["mediocre"]) <= 0.1
    assert np.nanmax(stage1["harmful"].series["stage"]) == 1


@pytest.mark.parametrize("start", [2, 3, 4])
def test_a_harmful_therapist_regresses_clients_from_later_stages(start):
    run = run_course(THERAPISTS["harmful"], start, clients=8)
    final = np.array([row[~np.isnan(row)][-1] for row in run.series["stage"]])
    assert (final < start).all()


def test_the_same_seed_gives_the_same_course():
    a, b = (run_course(THERAPISTS["noisy_excellent"], 2, clients=4, max_sessions=3, seed=7) for _ in range(2))
    for key in a.series:
        np.testing.assert_array_equal(a.series[key], b.series[key])


def test_the_command_writes_figures_and_a_picture_per_stage(tmp_path, capsys):
    assert main(["--stages", "1", "3", "--clients", "3", "--max-sessions", "2", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "course.json").read_text())
    assert set(figures["stages"]) == {"1", "3"}
    assert set(figures["stages"]["1"]) == set(THERAPISTS)
    for stage in (1, 3):
        assert (tmp_path / f"course_stage{stage}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| from | therapist |" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["--therapists", "wizard"], "unknown therapist 'wizard'"),
    (["--stages", "5"], "unknown starting stage 5"),
    (["--stages", "two"], "invalid int value"),
    (["--clients", "0"], "must be at least 1"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tbn-env-course: error:") and needle in err
    assert not out.exists()


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(SystemExit):
        main(["--out", str(blocker), "--clients", "1"])
    assert "not a directory" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"
