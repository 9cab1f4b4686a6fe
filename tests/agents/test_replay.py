"""The replay memory: one copy of each observation, invalid autoreset slots, n-step returns, memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.agents.replay import ReplayBuffer, storage_dtype

VECTOR_SPACE = spaces.Box(-np.inf, np.inf, (2,), np.float32)


def _add(
    buffer: ReplayBuffer,
    t: int,
    num_envs: int,
    num_actions: int,
    reward=0.0,
    terminated=False,
    truncated=False,
    valid=True,
    mask=None,
) -> None:
    """Slot ``t``: the observation of env e is [t, e]; action t % num_actions."""
    obs = np.stack([np.array([t, e], dtype=np.float32) for e in range(num_envs)])
    full = lambda value, dtype: np.full(num_envs, value, dtype=dtype)  # noqa: E731
    masks = np.ones((num_envs, num_actions), dtype=bool) if mask is None else np.tile(mask, (num_envs, 1))
    buffer.add(
        obs,
        masks,
        full(t % num_actions, np.int64),
        full(reward, np.float32),
        full(terminated, bool),
        full(truncated, bool),
        full(valid, bool),
    )


def test_each_observation_is_stored_once_and_the_next_one_is_the_following_slot():
    num_envs, num_actions = 3, 4
    buffer = ReplayBuffer(
        capacity=8 * num_envs, num_envs=num_envs, observation_space=VECTOR_SPACE, num_actions=num_actions
    )
    assert buffer.slots == 8
    assert not buffer.can_sample(1)
    for t in range(12):  # wraps around: slots now hold t = 4..11
        _add(buffer, t, num_envs, num_actions, reward=float(t))
    assert buffer.full and len(buffer) == 8 * num_envs
    # Only one observation array, (slots, N, *shape): no separate next-observation copy.
    assert list(buffer.observations) == ["obs"]
    assert buffer.observations["obs"].shape == (8, num_envs, 2)
    # obs 2 float32 + mask 4 bools + action int32 + reward float32 + terminated/truncated/valid bools
    assert buffer.bytes_per_transition == 8 + 4 + 4 + 4 + 3

    sample = buffer.sample(600, np.random.default_rng(0), n_step=1, gamma=0.9)
    t, e = sample.observations[:, 0].numpy(), sample.observations[:, 1].numpy()
    np.testing.assert_array_equal(sample.next_observations[:, 0].numpy(), t + 1)  # slot t + 1 ...
    np.testing.assert_array_equal(sample.next_observations[:, 1].numpy(), e)  # ... of the same env column
    np.testing.assert_array_equal(sample.actions.numpy(), t % num_actions)
    np.testing.assert_array_equal(sample.returns.numpy(), t)  # reward of slot t
    np.testing.assert_allclose(sample.bootstrap_discounts.numpy(), 0.9)
    # The overwritten slots (t < 4) are gone; the newest (t = 11) has no next observation yet.
    assert set(t.astype(int).tolist()) == set(range(4, 11))
    assert set(e.astype(int).tolist()) == set(range(num_envs))


def test_invalid_autoreset_slots_are_never_sampled():
    num_envs, num_actions = 2, 3
    buffer = ReplayBuffer(64, num_envs, VECTOR_SPACE, num_actions)
    # Both envs: episodes end at t = 2 (terminated) and t = 6 (truncated); t = 3 and t = 7
    # are next-step autoreset slots that hold the final observations.
    for t in range(10):
        _add(buffer, t, num_envs, num_actions, terminated=t == 2, truncated=t == 6, valid=t not in (3, 7))
    sample = buffer.sample(1000, np.random.default_rng(1), n_step=1)
    t = sample.observations[:, 0].numpy().astype(int)
    assert set(t.tolist()) == {0, 1, 2, 4, 5, 6, 8}
    # The final observations still serve as next observations of the last steps.
    next_t = sample.next_observations[:, 0].numpy().astype(int)
    np.testing.assert_array_equal(next_t, t + 1)
    assert {3, 7} <= set(next_t.tolist())


GAMMA = 0.5
#: One env: an episode terminated at t = 3, one truncated at t = 8, one running from t = 10.
#: t = 4 and t = 9 are autoreset slots (their reward of 100 must never count).
STREAM_REWARDS = [1, 2, 4, 8, 100, 1, 2, 4, 8, 100, 1, 2, 4, 8]
TERMINATED = {3}
TRUNCATED = {8}
INVALID = {4, 9}
#: t -> (3-step return, bootstrap discount, slot of the bootstrap observation), by hand with gamma = 0.5.
EXPECTED_3_STEP = {
    0: (1 + 0.5 * 2 + 0.25 * 4, 0.125, 3),
    1: (2 + 0.5 * 4 + 0.25 * 8, 0.0, 4),  # terminated after 3 rewards: no bootstrap
    2: (4 + 0.5 * 8, 0.0, 4),  # terminated after 2 rewards
    3: (8.0, 0.0, 4),  # terminated at once
    5: (1 + 0.5 * 2 + 0.25 * 4, 0.125, 8),
    6: (2 + 0.5 * 4 + 0.25 * 8, 0.125, 9),  # truncated at the 3rd reward: bootstrap gamma^3 V(final obs)
    7: (4 + 0.5 * 8, 0.25, 9),  # truncated after 2 rewards: gamma^2
    8: (8.0, 0.5, 9),  # truncated at once: gamma
    10: (1 + 0.5 * 2 + 0.25 * 4, 0.125, 13),
}


@pytest.mark.parametrize("capacity", [64, 12], ids=["roomy", "wrapped"])
def test_n_step_returns_of_a_hand_written_stream(capacity):
    num_actions = 16
    buffer = ReplayBuffer(capacity, 1, VECTOR_SPACE, num_actions)
    for t, reward in enumerate(STREAM_REWARDS):
        mask = np.zeros(num_actions, dtype=bool)
        mask[t] = True  # the legal actions identify the slot
        _add(
            buffer,
            t,
            1,
            num_actions,
            reward=reward,
            terminated=t in TERMINATED,
            truncated=t in TRUNCATED,
            valid=t not in INVALID,
            mask=mask,
        )
    sample = buffer.sample(2000, np.random.default_rng(0), n_step=3, gamma=GAMMA)
    t = sample.observations[:, 0].numpy().astype(int)
    # 14 slots written; with capacity 12 the slots of t = 0, 1 were overwritten.
    oldest = max(0, len(STREAM_REWARDS) - capacity)
    assert set(t.tolist()) == {s for s in EXPECTED_3_STEP if s >= oldest}
    expected = np.array([EXPECTED_3_STEP[s] for s in t])
    np.testing.assert_allclose(sample.returns.numpy(), expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(sample.bootstrap_discounts.numpy(), expected[:, 1], rtol=1e-6)
    next_t = expected[:, 2].astype(int)
    np.testing.assert_array_equal(sample.next_observations[:, 0].numpy(), next_t)
    np.testing.assert_array_equal(sample.next_action_masks.numpy().argmax(axis=1), next_t)
    assert sample.next_action_masks.dtype == torch.bool


def test_terminated_and_truncated_together_is_terminal():
    buffer = ReplayBuffer(16, 1, VECTOR_SPACE, 2)
    _add(buffer, 0, 1, 2, reward=1.0)
    _add(buffer, 1, 1, 2, reward=2.0, terminated=True, truncated=True)
    _add(buffer, 2, 1, 2, valid=False)
    _add(buffer, 3, 1, 2)
    sample = buffer.sample(200, np.random.default_rng(0), n_step=2, gamma=0.9)
    t = sample.observations[:, 0].numpy().astype(int)
    assert set(t.tolist()) == {0, 1}
    np.testing.assert_allclose(sample.returns.numpy(), np.where(t == 0, 1 + 0.9 * 2, 2.0), rtol=1e-6)
    np.testing.assert_array_equal(sample.bootstrap_discounts.numpy(), 0.0)


def test_sampling_needs_enough_slots():
    buffer = ReplayBuffer(16, 1, VECTOR_SPACE, 2)
    for t in range(3):
        _add(buffer, t, 1, 2)
    assert buffer.can_sample(2) and not buffer.can_sample(3)
    with pytest.raises(ValueError, match="3-step"):
        buffer.sample(4, np.random.default_rng(0), n_step=3)


def test_only_the_valid_slots_that_sample_can_draw_make_the_memory_sampleable():
    # Three slots of one-step episodes with next-step autoreset: valid, autoreset, valid, autoreset.
    buffer = ReplayBuffer(3, 1, VECTOR_SPACE, 2)
    for t in range(4):
        _add(buffer, t, 1, 2, reward=float(t), terminated=t % 2 == 0, valid=t % 2 == 0)
    # The slots hold t = 1 (autoreset), 2 (valid), 3 (autoreset); with 2-step returns only t = 1
    # has its 2 following slots written, so nothing can be drawn though t = 2 is valid.
    assert buffer.valid.any() and not buffer.can_sample(2)
    with pytest.raises(ValueError, match="no valid transition stored for 2-step returns"):
        buffer.sample(4, np.random.default_rng(0), n_step=2)
    assert buffer.can_sample(1)
    sample = buffer.sample(50, np.random.default_rng(0), n_step=1)
    np.testing.assert_array_equal(sample.observations[:, 0].numpy(), 2.0)  # the one valid slot, never t = 1
    _add(buffer, 4, 1, 2, reward=4.0, terminated=True)  # now t = 2 has 2 following slots
    sample = buffer.sample(50, np.random.default_rng(0), n_step=2)
    np.testing.assert_array_equal(sample.observations[:, 0].numpy(), 2.0)
    np.testing.assert_array_equal(sample.returns.numpy(), 2.0)  # terminated at once


def mri_space(size: int = 128) -> spaces.Dict:
    return spaces.Dict(
        {"reconstruction": spaces.Box(-np.inf, np.inf, (1, size, size), np.float32), "mask": spaces.MultiBinary(size)}
    )


def test_mri_transition_fits_in_40_kb_with_float16_images():
    space = mri_space(128)
    compact = ReplayBuffer(8, 1, space, 128, compact_images=True)
    assert compact.observations["reconstruction"].dtype == np.float16
    assert compact.observations["mask"].dtype == np.int8
    assert storage_dtype(space["reconstruction"], True) == np.float16
    assert storage_dtype(space["mask"], True) == np.int8
    # 128 * 128 * 2 bytes of image, 128 of column mask, 128 of action mask, a few scalars.
    assert compact.bytes_per_transition <= 40 * 1024
    assert compact.bytes_per_transition == 128 * 128 * 2 + 128 + 128 + 4 + 4 + 3
    full = ReplayBuffer(8, 1, space, 128, compact_images=False)
    assert full.observations["reconstruction"].dtype == np.float32
    assert full.bytes_per_transition > 64 * 1024


def test_float16_images_round_trip_closely():
    space = mri_space(16)
    buffer = ReplayBuffer(8, 1, space, 16)
    rng = np.random.default_rng(0)
    images = rng.random((3, 1, 1, 16, 16)).astype(np.float32) * 1.5
    for t in range(3):
        buffer.add(
            {"reconstruction": images[t], "mask": np.zeros((1, 16), np.int8)},
            np.ones((1, 16), bool),
            np.zeros(1),
            np.zeros(1),
            np.zeros(1, bool),
            np.zeros(1, bool),
            np.ones(1, bool),
        )
    sample = buffer.sample(20, rng, n_step=1)
    assert sample.observations["reconstruction"].dtype == torch.float16
    first = sample.observations["reconstruction"][0].float().numpy()
    nearest = min(np.abs(images[:2, 0] - first).max(axis=(1, 2, 3)))
    assert nearest <= 1e-3
