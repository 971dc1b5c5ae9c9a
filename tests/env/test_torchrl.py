"""torchrl drives the native vector env through its own GymWrapper (the `sb3` extra installs torchrl)."""
import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401

torchrl = pytest.importorskip("torchrl")


def test_torchrl_wraps_the_native_batch_checks_its_specs_and_rolls_out_through_autoresets():
    import torch
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    torch.manual_seed(1)
    venv = gym.make_vec("Therapy-Scores-v0", num_envs=4, vectorization_mode="vector_entry_point", max_turns=3,
                        autoreset_mode="same_step", info_mode="numeric")
    env = GymWrapper(venv, categorical_action_encoding=True)   # one-hot zeros are no valid observation
    assert tuple(env.batch_size) == (4,)
    check_env_specs(env)
    td = env.rollout(8, break_when_any_done=False)
    nxt = td["next"]
    assert nxt["done"].shape == (4, 8, 1) and nxt["done"][:, 2].all() and nxt["done"][:, 5].all()   # 3-turn sessions
    parts = sum(nxt[f"reward_{p}"] for p in ("composite", "modifiers", "phase_transition", "stage_transition", "taie"))
    np.testing.assert_allclose(parts.numpy(), nxt["reward"].squeeze(-1).numpy(), atol=1e-5)
    assert (td["turn"][:, 3] == 0).all()   # the client after a done starts a new session
    assert not {"phase", "stage", "stance", "session", "turn"} & set(venv.unwrapped.batch.info(
        venv.unwrapped.profiles, False, numeric=True))   # info beside the observation, never over it


def test_a_numeric_info_has_the_same_keys_at_reset_and_step_and_only_numbers():
    env = gym.make("Therapy-Interventions-v0", info_mode="numeric")
    _, reset_info = env.reset(seed=0)
    _, _, _, _, step_info = env.step(0)
    assert set(reset_info) == set(step_info)
    assert all(isinstance(v, (int, float, np.ndarray)) for v in step_info.values())
    with pytest.raises(ValueError, match="numeric"):
        gym.make("Therapy-v0", info_mode="numeric")
