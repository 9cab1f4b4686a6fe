"""RemoteVectorEnv: sub-environments stepped by Ray actors behave as one vector env of all of them."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

from mri_rl.distributed import Workers
from mri_rl.envs import ENV_ID

ray = pytest.importorskip("ray")
from mri_rl.envs.remote import RemoteVectorEnv  # noqa: E402  (after the skip: needs Ray)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; the envs use it and leave it running."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


def cartpole(num_envs: int) -> functools.partial:
    """A picklable maker (Ray workers cannot import the test module)."""
    return functools.partial(gym.make_vec, "CartPole-v1", num_envs=num_envs, vectorization_mode="sync")


def test_two_actors_step_like_one_sync_env_of_all_their_envs(local_ray):
    remote = RemoteVectorEnv(cartpole(2), Workers(count=2))
    local = cartpole(4)()
    assert remote.num_envs == 4 and remote.single_action_space == local.single_action_space
    obs_r, _ = remote.reset(seed=7)
    obs_l, _ = local.reset(seed=7)  # sub-env i gets seed 7 + i, as actor k's sub-env j gets 7 + 2k + j
    np.testing.assert_array_equal(obs_r, obs_l)
    actions = np.random.default_rng(0).integers(0, 2, size=(300, 4))
    episodes_ended = 0
    for row in actions:
        step_r, step_l = remote.step(row), local.step(row)
        for a, b in zip(step_r[:4], step_l[:4]):
            np.testing.assert_array_equal(a, b)
        episodes_ended += int(step_l[2].sum())
    assert episodes_ended > 4  # autoresets happened along the way, in step
    remote.close()
    assert ray.is_initialized()  # not started by the env: left running


def test_mri_env_actors_give_merged_infos_task_and_record(local_ray, singlecoil_root):
    make = functools.partial(
        gym.make_vec,
        ENV_ID,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        data_path=singlecoil_root / "singlecoil_train",
        budget=3,
        initial_lines=2,
    )
    remote = RemoteVectorEnv(make, Workers(count=2))
    local = make()
    obs, info = remote.reset(seed=0)
    assert obs["acquired"].shape[0] == 4 and info["action_mask"].shape == (4, remote.single_action_space.n)
    assert remote.task == local.unwrapped.task and remote.record() == local.unwrapped.record()
    free = np.argmax(info["action_mask"], axis=1)
    _, rewards, terminated, _, info = remote.step(free)
    assert rewards.shape == (4,) and not terminated.any() and (info["steps"] == 1).all()
    with pytest.raises(ValueError, match="expected 4 actions"):
        remote.step(free[:3])
    with pytest.raises(ValueError, match="no options"):
        remote.reset(options={"indices": [0, 1, 2, 3]})
    remote.close()
