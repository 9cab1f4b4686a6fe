"""The batched environment: equal to N single environments, one reconstructor call per step."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from mri_rl.envs import episodes as episodes_module
from mri_rl.reconstruct import Reconstructor, UnetReconstructor, zero_filled_image

METRICS = ("mse", "nmse", "psnr", "ssim")
N = 3
SEED = 17


class CountingIFFT(Reconstructor):
    """The zero-filled image through the generic protocol (no linear shortcut), counting
    its calls and their batch sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, masked_kspace, mask, output_size):
        self.calls.append(masked_kspace.shape[0])
        return zero_filled_image(masked_kspace, output_size)


def assert_same(batched_obs, batched_info, singles_obs, singles_info):
    for i, (obs, info) in enumerate(zip(singles_obs, singles_info)):
        np.testing.assert_array_equal(batched_obs["acquired"][i], obs["acquired"])
        np.testing.assert_allclose(batched_obs["reconstruction"][i], obs["reconstruction"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(batched_info["action_mask"][i], info["action_mask"])
        for key in ("slice_id", "steps", "acquired_columns"):
            assert batched_info[key][i] == info[key], key
        for name in METRICS:
            assert batched_info[name][i] == pytest.approx(info[name], rel=1e-6, abs=1e-10), name


def choose_actions(rng, action_mask):
    """A free column most of the time, otherwise any column (possibly a repeat)."""
    actions = []
    for free in action_mask:
        columns = np.flatnonzero(free)
        if len(columns) and rng.random() < 0.75:
            actions.append(int(rng.choice(columns)))
        else:
            actions.append(int(rng.integers(len(free))))
    return np.asarray(actions)


@pytest.mark.parametrize("metrics_chunk", [8, 2])
@pytest.mark.parametrize("budget, metric, weighted", [(None, "mse", False), (3, "ssim", False), (None, "ssim", True)])
def test_batched_equals_single_envs_over_several_episodes(
    make_env, make_vec_env, singlecoil_train, budget, metric, weighted, metrics_chunk, monkeypatch
):
    monkeypatch.setattr(episodes_module, "METRICS_CHUNK", metrics_chunk)  # 2 < N: metrics in chunks
    options = dict(budget=budget, reward_metric=metric, auc_weighted_rewards=weighted)
    vec = make_vec_env(singlecoil_train, N, **options)
    singles = [make_env(singlecoil_train, **options) for _ in range(N)]
    obs, info = vec.reset(seed=SEED)
    pairs = [env.reset(seed=SEED + i) for i, env in enumerate(singles)]
    assert_same(obs, info, [p[0] for p in pairs], [p[1] for p in pairs])
    rng = np.random.default_rng(0)
    single_done = [False] * N
    episodes_finished = np.zeros(N, dtype=int)
    mixed_restart_steps = 0
    for _ in range(60):
        actions = choose_actions(rng, info["action_mask"])
        obs, rewards, terminations, truncations, info = vec.step(actions)
        assert rewards.dtype == np.float64 and rewards.shape == (N,)
        assert not truncations.any()
        results = []
        for i, env in enumerate(singles):
            if single_done[i]:  # NEXT_STEP autoreset: this step restarts the episode
                s_obs, s_info = env.reset()
                results.append((s_obs, 0.0, False, s_info))
            else:
                s_obs, s_reward, s_terminated, _, s_info = env.step(actions[i])
                results.append((s_obs, s_reward, s_terminated, s_info))
        if any(single_done) and not all(single_done):
            mixed_restart_steps += 1
        assert_same(obs, info, [r[0] for r in results], [r[3] for r in results])
        np.testing.assert_allclose(rewards, [r[1] for r in results], rtol=1e-6, atol=1e-10)
        np.testing.assert_array_equal(terminations, [r[2] for r in results])
        for i in range(len(results)):
            if single_done[i]:
                assert rewards[i] == 0.0 and info["steps"][i] == 0
        single_done = [bool(t) for t in terminations]
        episodes_finished += terminations
    assert (episodes_finished >= 2).all()
    if budget is None:
        assert mixed_restart_steps > 0  # some steps restart one episode while others acquire


def test_spaces_and_info_flags(make_env, make_vec_env, singlecoil_train):
    vec = make_vec_env(singlecoil_train, N)
    single = make_env(singlecoil_train)
    assert vec.num_envs == N
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == spaces.Discrete(16)
    assert vec.action_space == spaces.MultiDiscrete([16] * N)
    obs, info = vec.reset(seed=0)
    assert vec.observation_space.contains(obs)
    assert obs["reconstruction"].shape == (N, 1, 16, 16) and obs["reconstruction"].dtype == np.float32
    assert obs["acquired"].shape == (N, 16) and obs["acquired"].dtype == np.int8
    assert info["action_mask"].dtype == np.int8
    np.testing.assert_array_equal(info["action_mask"], vec.action_masks().astype(np.int8))
    for name in METRICS:
        assert info[name].shape == (N,)
        assert info[f"_{name}"].dtype == bool and info[f"_{name}"].all()


def test_seed_list_equals_int_seed(make_vec_env, singlecoil_train):
    a, b = make_vec_env(singlecoil_train, N), make_vec_env(singlecoil_train, N)
    obs_a, info_a = a.reset(seed=40)
    obs_b, info_b = b.reset(seed=[40, 41, 42])
    np.testing.assert_array_equal(info_a["slice_id"], info_b["slice_id"])
    np.testing.assert_array_equal(obs_a["reconstruction"], obs_b["reconstruction"])
    with pytest.raises(ValueError, match="seeds"):
        a.reset(seed=[1, 2])


def test_options_indices_pick_slices(make_env, make_vec_env, singlecoil_train):
    vec = make_vec_env(singlecoil_train, N)
    single = make_env(singlecoil_train)
    indices = [5, 0, 3]
    obs, info = vec.reset(seed=0, options={"indices": indices})
    np.testing.assert_array_equal(info["slice_id"], indices)
    for i, index in enumerate(indices):
        s_obs, s_info = single.reset(options={"index": index})
        np.testing.assert_allclose(obs["reconstruction"][i], s_obs["reconstruction"], rtol=1e-5, atol=1e-6)
        assert info["mse"][i] == pytest.approx(s_info["mse"], rel=1e-6)
    with pytest.raises(ValueError, match="indices"):
        vec.reset(options={"indices": [0, 1]})
    with pytest.raises(ValueError, match="index"):
        vec.reset(options={"indices": [0, 1, 6]})


def test_partial_reset_with_reset_mask(make_env, make_vec_env, singlecoil_train):
    vec = make_vec_env(singlecoil_train, N, budget=5)
    with pytest.raises(RuntimeError):
        vec.reset(seed=0, options={"reset_mask": np.array([True, False, True])})
    singles = [make_env(singlecoil_train, budget=5) for _ in range(N)]
    vec.reset(seed=SEED)
    for i, env in enumerate(singles):
        env.reset(seed=SEED + i)
    actions = np.array([[1, 2, 3], [14, 13, 12]])
    for row in actions:
        obs, _, _, _, info = vec.step(row)
        for i, env in enumerate(singles):
            env.step(row[i])
    before_obs, before_info = obs, info
    obs, info = vec.reset(options={"reset_mask": np.array([False, True, False])})
    # untouched episodes keep their state
    for i in (0, 2):
        assert info["steps"][i] == 2 and before_info["steps"][i] == 2
        np.testing.assert_array_equal(obs["reconstruction"][i], before_obs["reconstruction"][i])
        np.testing.assert_array_equal(obs["acquired"][i], before_obs["acquired"][i])
    # the restarted one is the next episode of its single twin
    s_obs, s_info = singles[1].reset()
    assert info["steps"][1] == 0 and info["slice_id"][1] == s_info["slice_id"]
    np.testing.assert_allclose(obs["reconstruction"][1], s_obs["reconstruction"], rtol=1e-5, atol=1e-6)
    # and stepping continues in step with the single envs: 0 and 2 end after 3 more steps, 1 after 5
    for t in range(5):
        row = np.array([4 + t, 5 + t, 6 + t])
        obs, rewards, terminations, _, info = vec.step(row)
        expected = [singles[i].step(row[i]) for i in range(N)] if t < 3 else None
        if t < 3:
            np.testing.assert_allclose(rewards, [e[1] for e in expected], rtol=1e-6, atol=1e-10)
            np.testing.assert_array_equal(terminations, [e[2] for e in expected])
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([True, False])})


def test_wrong_number_of_actions_and_step_before_reset(make_vec_env, singlecoil_train):
    vec = make_vec_env(singlecoil_train, N)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros(N, dtype=np.int64))
    vec.reset(seed=0)
    for actions in (np.zeros(N - 1, dtype=np.int64), np.zeros(N + 1, dtype=np.int64)):
        with pytest.raises(ValueError, match="actions"):
            vec.step(actions)
    with pytest.raises(ValueError, match="outside"):
        vec.step(np.array([0, 16, 1]))
    _, _, _, _, info = vec.step(np.array([0, 1, 2]))
    np.testing.assert_array_equal(info["steps"], [1, 1, 1])  # the rejected steps spent nothing


BAD_BATCH = "actions must be integer column indices in [0, 16), got"


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.zeros((N, 1), dtype=np.int64), f"expected actions of shape ({N},), got shape ({N}, 1)"),
        (np.zeros((1, N), dtype=np.int64), f"expected actions of shape ({N},), got shape (1, {N})"),
        (np.int64(0), f"expected actions of shape ({N},), got shape ()"),
        ([0, 2.5, 1], f"{BAD_BATCH} 2.5 (dtype float64)"),
        ([0, float("nan"), 1], f"{BAD_BATCH} nan (dtype float64)"),
        (np.array([0, 1, 2], dtype=np.float32), f"{BAD_BATCH} 0.0 (dtype float32)"),
        ([0, True, 1], f"{BAD_BATCH} True (dtype object)"),
        (np.array([True, False, True]), f"{BAD_BATCH} True (dtype bool)"),
        (np.array([0, 16, 1], dtype=np.uint8), "action 16 is outside the k-space columns [0, 16)"),
        (np.array([0, -1, 1], dtype=np.int8), "action -1 is outside the k-space columns [0, 16)"),
        (np.array([0, 2**64 - 1, 1], dtype=np.uint64), "action 18446744073709551615 is outside the k-space columns"),
    ],
    ids=repr,
)
def test_a_bad_action_batch_is_refused_naming_it_and_spends_nothing(make_vec_env, singlecoil_train, actions, message):
    vec = make_vec_env(singlecoil_train, N)
    vec.reset(seed=0)
    with pytest.raises(ValueError) as raised:
        vec.step(actions)
    assert message in str(raised.value)
    _, _, _, _, info = vec.step(np.array([0, 1, 2]))
    np.testing.assert_array_equal(info["steps"], [1, 1, 1])


@pytest.mark.parametrize(
    ("num_envs", "actions"),
    [(4, np.zeros((2, 2), dtype=np.int64)), (4, np.zeros((4, 1), dtype=np.int64)), (1, np.int64(3))],
    ids=["(2, 2) for 4", "(4, 1) for 4", "0-d for 1"],
)
def test_no_action_batch_is_reshaped(make_vec_env, singlecoil_train, num_envs, actions):
    """Only shape (N,), the action space's, is taken: not (2, N/2), not a 0-d array for N = 1."""
    vec = make_vec_env(singlecoil_train, num_envs)
    vec.reset(seed=0)
    assert not vec.action_space.contains(actions)
    with pytest.raises(ValueError) as raised:
        vec.step(actions)
    assert str(raised.value) == f"expected actions of shape ({num_envs},), got shape {actions.shape}"


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64])
def test_action_batches_of_every_integer_dtype_act_like_int64(make_vec_env, singlecoil_train, dtype):
    vec = make_vec_env(singlecoil_train, N, budget=3)
    plan = np.random.default_rng(1).integers(0, 16, (5, N))  # 5 steps of budget 3: every episode restarts

    def drive(columns: np.ndarray) -> tuple[list, list]:
        obs, _ = vec.reset(seed=SEED)
        observations, rewards = [obs], []
        for actions in columns:
            obs, reward, *_ = vec.step(actions)
            observations.append(obs)
            rewards.append(reward)
        return observations, rewards

    expected_obs, expected_rewards = drive(plan)
    observations, rewards = drive(plan.astype(dtype))
    np.testing.assert_array_equal(rewards, expected_rewards)  # identical, not approximately
    for got, want in zip(observations, expected_obs):
        np.testing.assert_array_equal(got["reconstruction"], want["reconstruction"])
        np.testing.assert_array_equal(got["acquired"], want["acquired"])
    candidates = np.array([[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(vec.look_ahead(candidates.astype(dtype)), vec.look_ahead(candidates))
    with pytest.raises(ValueError, match=r"candidates must be integer column indices in \[0, 16\), got 1\.5"):
        vec.look_ahead(np.array([[0, 1.5], [2, 3], [4, 5]]))


@pytest.mark.parametrize(("num_envs", "shown"), [(0, "0"), (-1, "-1"), (2.5, "2.5"), (True, "True")])
def test_num_envs_must_be_a_positive_integer(make_vec_env, singlecoil_train, num_envs, shown):
    with pytest.raises(ValueError) as raised:
        make_vec_env(singlecoil_train, num_envs)
    assert str(raised.value) == f"num_envs: expected an integer >= 1, got {shown}"


def test_batched_look_ahead_equals_single(make_env, make_vec_env, singlecoil_train):
    vec = make_vec_env(singlecoil_train, N, look_ahead_batch_size=4)
    singles = [make_env(singlecoil_train) for _ in range(N)]
    vec.reset(seed=SEED)
    for i, env in enumerate(singles):
        env.reset(seed=SEED + i)
    candidates = np.array([[0, 1, 2, 7], [8, 9, 15, 3], [7, 8, 4, 4]])
    scores = vec.look_ahead(candidates)
    assert scores.shape == (N, 4)
    for i, env in enumerate(singles):
        np.testing.assert_allclose(scores[i], env.unwrapped.look_ahead(candidates[i]), rtol=1e-6, atol=1e-10)
    assert scores[0, 3] == 0.0 and scores[1, 0] == 0.0 and scores[1, 1] != 0.0  # 7, 8 are the initial columns
    assert scores[2, 0] == 0.0 and scores[2, 1] == 0.0 and scores[2, 2] == scores[2, 3]


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "auc_weighted"])
def test_the_look_ahead_of_the_acquired_column_is_the_reward_it_gives(make_vec_env, singlecoil_train, weighted):
    vec = make_vec_env(singlecoil_train, 2, budget=4, reward_metric="ssim", auc_weighted_rewards=weighted)
    _, info = vec.reset(seed=SEED)
    resetting = np.zeros(2, dtype=bool)  # next-step autoreset: these rows only restart
    rng = np.random.default_rng(0)
    compared = 0
    for step in range(10):  # two episodes of 4 steps each, and the restarts between them
        legal = info["action_mask"]
        candidates = np.stack([rng.choice(np.flatnonzero(free), 3, replace=False) for free in legal])
        candidates[:, 2] = 7  # an initial column: a repeat scores 0 and gives 0
        scores = vec.look_ahead(candidates)
        gains = vec.look_ahead_gains(candidates, ("ssim",))[:, 0]
        pick = rng.integers(3, size=2) if step % 3 else np.array([2, 0])
        _, rewards, terminated, _, info = vec.step(candidates[np.arange(2), pick])
        chosen = scores[np.arange(2), pick]
        np.testing.assert_array_equal(chosen[~resetting], rewards[~resetting])
        compared += int((~resetting).sum())
        if weighted:  # the weight (T - j + 1/2) / T, T = 4 free columns within the budget, is below 1
            assert (np.abs(scores[:, :2]) < np.abs(gains[:, :2])).all()
        else:
            np.testing.assert_array_equal(scores, gains)
        resetting = terminated
    assert compared >= 16


def _counting_unet(monkeypatch):
    model = UnetReconstructor(chans=4, num_pool_layers=2, recon_size=(16, 16)).eval()
    calls: list[int] = []
    original = model.forward

    def counted(masked_kspace, mask, output_size):
        calls.append(masked_kspace.shape[0])
        return original(masked_kspace, mask, output_size)

    monkeypatch.setattr(model, "forward", counted)
    return model, calls


@pytest.mark.parametrize("kind", ["generic", "unet"])
def test_one_reconstructor_call_per_step(make_vec_env, singlecoil_train, monkeypatch, kind):
    if kind == "generic":
        reconstructor = CountingIFFT()
        calls = reconstructor.calls
    else:
        reconstructor, calls = _counting_unet(monkeypatch)
    vec = make_vec_env(singlecoil_train, N, budget=None, reconstructor=reconstructor)
    vec.reset(seed=SEED)
    assert calls == [N]
    rng = np.random.default_rng(1)
    info = vec.reset(seed=SEED)[1]
    restarting = np.zeros(N, dtype=bool)
    mixed_steps = 0
    for _ in range(50):
        calls.clear()
        actions = choose_actions(rng, info["action_mask"])
        new_column = info["action_mask"][np.arange(N), actions].astype(bool) & ~restarting
        _, _, terminations, _, info = vec.step(actions)
        changed = int(new_column.sum() + restarting.sum())
        assert calls == ([changed] if changed else [])
        if restarting.any() and new_column.any():
            mixed_steps += 1
        restarting = terminations
    assert mixed_steps > 0
