"""The single environment ``mri_rl/ActiveAcquisition-v0``: API, known answers, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from mri_rl.data import TARGET_KEYS
from mri_rl.envs import ActiveAcquisitionEnv
from mri_rl.envs.episodes import default_look_ahead_batch_size
from mri_rl.evaluation.report import curve_auc

METRICS = ("mse", "nmse", "ssim", "psnr")
LOWER_IS_BETTER = {"mse": True, "nmse": True, "ssim": False, "psnr": False}
INFINITE_BOX_WARNINGS = (
    "A Box observation space minimum value is -infinity",
    "A Box observation space maximum value is infinity",
)


def read_target(path: Path, challenge: str, slice_index: int) -> np.ndarray:
    with h5py.File(path, "r") as hf:
        return hf[TARGET_KEYS[challenge]][slice_index]


def only_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.h5"))
    assert len(files) == 1
    return files[0]


def free_columns(info: dict) -> list[int]:
    return [int(c) for c in np.flatnonzero(info["action_mask"])]


def run_episode(env: gym.Env, actions, **reset_kwargs):
    """Reset, then step ``actions`` until terminated; returns (observations, rewards, infos, terminated flags)."""
    obs, info = env.reset(**reset_kwargs)
    observations, rewards, infos, terminations = [obs], [], [info], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert truncated is False
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        terminations.append(terminated)
        if terminated:
            break
    return observations, rewards, infos, terminations


# ------------------------------------------------------------------- env checker
@pytest.mark.parametrize(
    "folder_fixture, challenge",
    [
        ("singlecoil_train", "singlecoil"),
        ("multicoil_train", "multicoil"),
        ("knee_geometry_file", "singlecoil"),
        ("padded_folder", "singlecoil"),
    ],
)
def test_check_env_passes(request, make_env, folder_fixture, challenge):
    env = make_env(request.getfixturevalue(folder_fixture), challenge=challenge, budget=3, initial_lines=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    messages = [str(w.message) for w in caught]
    unexpected = [m for m in messages if not any(allowed in m for allowed in INFINITE_BOX_WARNINGS)]
    assert unexpected == []
    # the two warnings about the unbounded reconstruction Box are the only ones, by design
    assert sum(any(allowed in m for m in messages) for allowed in INFINITE_BOX_WARNINGS) == 2


# ------------------------------------------------------------------- spaces
def test_spaces_of_small_data(make_env, singlecoil_train):
    env = make_env(singlecoil_train)
    assert env.action_space == spaces.Discrete(16)
    space = env.observation_space
    assert isinstance(space, spaces.Dict) and set(space.spaces) == {"reconstruction", "acquired"}
    box = space["reconstruction"]
    assert isinstance(box, spaces.Box) and box.shape == (1, 16, 16) and box.dtype == np.float32
    assert space["acquired"] == spaces.MultiBinary(16)


def test_spaces_of_knee_geometry(make_env, knee_geometry_file):
    env = make_env(knee_geometry_file)
    assert env.action_space == spaces.Discrete(368)
    assert env.observation_space["reconstruction"].shape == (1, 320, 320)
    assert env.observation_space["acquired"] == spaces.MultiBinary(368)


def test_observation_and_info_types(make_env, singlecoil_train):
    env = make_env(singlecoil_train, budget=3)
    obs, info = env.reset(seed=0)
    for step in range(4):
        assert env.observation_space.contains(obs)
        assert obs["reconstruction"].dtype == np.float32 and obs["reconstruction"].shape == (1, 16, 16)
        assert obs["acquired"].dtype == np.int8 and obs["acquired"].shape == (16,)
        assert np.isfinite(obs["reconstruction"]).all()
        assert info["action_mask"].dtype == np.int8
        np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks().astype(np.int8))
        np.testing.assert_array_equal(info["action_mask"], 1 - obs["acquired"])
        assert env.unwrapped.action_masks().dtype == bool
        for name in METRICS:
            assert isinstance(info[name], float)
        assert info["steps"] == step
        if step == 3:
            break
        obs, reward, terminated, truncated, info = env.step(free_columns(info)[0])
        assert isinstance(reward, float) and isinstance(terminated, bool) and truncated is False


def test_observation_is_reconstruction_scaled_by_initial_zero_filled_max(make_env, one_volume_folder):
    env = make_env(one_volume_folder, budget=None)
    obs, info = env.reset(seed=0, options={"index": 0})
    episodes = env.unwrapped.episodes
    # zero-filled: at reset the observation is the zero-filled image divided by its own maximum
    assert obs["reconstruction"].max() == pytest.approx(1.0, abs=1e-6)
    scale = float(episodes.reconstruction[0].max())
    for column in free_columns(info)[:3]:
        obs, *_ = env.step(column)
        np.testing.assert_allclose(
            obs["reconstruction"][0] * scale, episodes.reconstruction[0].numpy(), rtol=1e-5, atol=1e-7 * scale
        )


# ------------------------------------------------------------------- known answers
@pytest.mark.parametrize("metric", METRICS)
def test_rewards_are_metric_improvements_and_telescope(make_env, singlecoil_train, metric):
    env = make_env(singlecoil_train, budget=6, reward_metric=metric)
    obs, info = env.reset(seed=11)
    free = free_columns(info)
    rng = np.random.default_rng(0)
    actions = list(rng.choice(free, size=5, replace=False))
    actions.insert(2, actions[1])  # one repeated column
    _, rewards, infos, terminations = run_episode(env, actions, seed=11)
    assert terminations == [False] * 5 + [True]
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
    for t, reward in enumerate(rewards):
        assert reward == pytest.approx(sign * (infos[t][metric] - infos[t + 1][metric]), rel=1e-9, abs=1e-12)
    assert rewards[2] == 0.0
    assert sum(rewards) == pytest.approx(sign * (infos[0][metric] - infos[-1][metric]), rel=1e-9, abs=1e-12)
    assert sum(abs(r) for r in rewards) > 0  # the episode did change the metric


@pytest.mark.parametrize(
    ("folder_fixture", "budget", "metric"),
    [("singlecoil_train", 6, "ssim"), ("singlecoil_train", 6, "mse"), ("padded_folder", None, "psnr")],
)
def test_auc_weighted_rewards_sum_to_the_auc_the_actions_decide(request, make_env, folder_fixture, budget, metric):
    # the evaluation's AUC over the sampling rate, less the initial value's area, is the weighted rewards'
    # sum times the rate of one column; with budget None the horizon is every free column
    env = make_env(
        request.getfixturevalue(folder_fixture), budget=budget, reward_metric=metric, auc_weighted_rewards=True
    )
    _, info = env.reset(seed=5)
    actions = list(np.random.default_rng(1).permutation(free_columns(info)))
    _, rewards, infos, terminations = run_episode(env, actions, seed=5)
    assert terminations[-1] and len(rewards) == (budget or len(actions))
    rates = np.array([i["sampling_rate"] for i in infos])
    curve = np.array([i[metric] for i in infos])
    sign = -1.0 if LOWER_IS_BETTER[metric] else 1.0
    decided = sign * (curve_auc(rates, curve) - curve[0] * (rates[-1] - rates[0]))
    column_rate = (rates[-1] - rates[0]) / len(rewards)
    assert decided == pytest.approx(column_rate * len(rewards) * sum(rewards), rel=1e-6)
    plain = make_env(request.getfixturevalue(folder_fixture), budget=budget, reward_metric=metric)
    _, plain_rewards, _, _ = run_episode(plain, actions, seed=5)
    weights = (len(rewards) - np.arange(1, len(rewards) + 1) + 0.5) / len(rewards)
    np.testing.assert_allclose(rewards, np.array(plain_rewards) * weights, rtol=1e-9, atol=1e-15)


def test_auc_weights_count_new_columns_not_repeated_steps(make_env, padded_folder):
    # without a budget an episode may take more steps than free columns; a repeat gives 0 and moves no weight
    env = make_env(padded_folder, budget=None, reward_metric="ssim", auc_weighted_rewards=True)
    plain = make_env(padded_folder, budget=None, reward_metric="ssim")
    _, info = env.reset(seed=2, options={"index": 0})
    free = free_columns(info)
    actions = [free[0], free[0], *free[1:]]
    _, rewards, _, terminations = run_episode(env, actions, seed=2, options={"index": 0})
    _, plain_rewards, _, _ = run_episode(plain, actions, seed=2, options={"index": 0})
    assert terminations[-1] and len(rewards) == len(free) + 1 and rewards[1] == 0.0
    new_columns = np.array([1, 1, *range(2, len(free) + 1)])
    weights = (len(free) - new_columns + 0.5) / len(free)
    np.testing.assert_allclose(rewards, np.array(plain_rewards) * weights, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    "folder_fixture, challenge",
    [
        ("one_volume_folder", "singlecoil"),
        ("one_multicoil_folder", "multicoil"),
        ("padded_folder", "singlecoil"),
    ],
)
def test_zero_filled_with_every_column_reproduces_target(request, make_env, folder_fixture, challenge):
    folder = request.getfixturevalue(folder_fixture)
    env = make_env(folder, challenge=challenge, budget=None, initial_lines=2)
    obs, info = env.reset(seed=0, options={"index": 1})
    free = free_columns(info)
    assert info["mse"] > 1e-4 and info["ssim"] < 0.95  # two columns are far from the target
    for i, column in enumerate(free):
        obs, reward, terminated, truncated, info = env.step(column)
        assert terminated == (i == len(free) - 1)
    assert obs["acquired"].all() and not info["action_mask"].any()
    assert info["sampling_rate"] == pytest.approx(1.0)
    assert info["mse"] < 1e-10 and info["nmse"] < 1e-8
    assert info["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert info["psnr"] > 80
    target = read_target(only_file(folder), challenge, 1)
    reconstruction = env.unwrapped.episodes.reconstruction[0].numpy()
    np.testing.assert_allclose(reconstruction, target, rtol=1e-4, atol=1e-5 * target.max())
    with pytest.raises(RuntimeError):
        env.unwrapped.step(free[0])


def test_knee_geometry_reset_mask(make_env, knee_geometry_file):
    env = make_env(knee_geometry_file, initial_lines=8, budget=2)
    obs, info = env.reset(seed=0)
    mask = obs["acquired"]
    assert mask.shape == (368,)
    assert mask[:17].all() and mask[351:].all()  # zero-filled edges count as acquired
    assert mask[180:188].all()  # the 8 lowest frequencies around the centre column 184
    assert mask.sum() == 17 + 17 + 8
    expected = np.zeros(368, dtype=np.int8)
    expected[:17] = expected[351:] = expected[180:188] = 1
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(info["action_mask"], 1 - expected)
    np.testing.assert_array_equal(env.unwrapped.action_masks(), expected == 0)
    assert info["acquired_columns"] == 8
    assert info["sampling_rate"] == pytest.approx(8 / 334)
    # a padded column is already acquired: reward 0, nothing changes, a step is spent
    obs2, reward, terminated, _, info2 = env.step(0)
    assert reward == 0.0 and not terminated and info2["steps"] == 1
    np.testing.assert_array_equal(obs2["reconstruction"], obs["reconstruction"])
    obs3, reward, terminated, _, info3 = env.step(200)
    assert terminated and reward != 0.0 and obs3["acquired"][200] == 1 and info3["acquired_columns"] == 9


def test_initial_lines_on_odd_width(make_env, tmp_path):
    from mri_rl.data import SyntheticSpec, write_synthetic_dataset

    spec = SyntheticSpec(challenge="singlecoil", size=16, kspace_width=17, num_slices=1)
    write_synthetic_dataset(tmp_path, spec, {"train": 1}, progress=False)
    env = make_env(tmp_path / "singlecoil_train", initial_lines=3)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(np.flatnonzero(obs["acquired"]), [7, 8, 9])


def test_repeated_column_gives_zero_and_spends_budget(make_env, singlecoil_train):
    env = make_env(singlecoil_train, budget=3)
    obs0, info0 = env.reset(seed=5)
    column = free_columns(info0)[0]
    obs1, reward1, terminated, _, info1 = env.step(column)
    assert reward1 != 0.0 and not terminated
    obs2, reward2, terminated, _, info2 = env.step(column)
    assert reward2 == 0.0 and not terminated
    for key in obs1:
        np.testing.assert_array_equal(obs2[key], obs1[key])
    for name in METRICS:
        assert info2[name] == info1[name]
    assert info2["steps"] == 2 and info2["acquired_columns"] == info1["acquired_columns"]
    initial_column = int(np.flatnonzero(obs0["acquired"])[0])  # acquired at reset
    _, reward3, terminated, _, info3 = env.step(initial_column)
    assert reward3 == 0.0 and terminated and info3["steps"] == 3


def test_out_of_range_action_raises_without_spending_budget(make_env, singlecoil_train):
    env = make_env(singlecoil_train, budget=2)
    _, info = env.reset(seed=0)
    for bad in (-1, 16, 1000):
        with pytest.raises(ValueError, match="outside"):
            env.unwrapped.step(bad)
    with pytest.raises(ValueError):
        env.unwrapped.step(1.5)
    free = free_columns(info)
    _, _, terminated, _, info = env.step(free[0])
    assert not terminated and info["steps"] == 1
    _, _, terminated, _, _ = env.step(free[1])
    assert terminated


INTEGER_DTYPES = [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("zero_d_array", [False, True], ids=["scalar", "0-d array"])
@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=lambda dtype: np.dtype(dtype).name)
def test_actions_of_every_integer_dtype_act_like_int64(make_env, singlecoil_train, dtype, zero_d_array):
    columns = [3, 12, 3, 0, 9, 15]
    env = make_env(singlecoil_train, budget=6)
    expected_obs, expected_rewards, expected_infos, _ = run_episode(env, [np.int64(c) for c in columns], seed=42)
    cast = (lambda c: np.array(c, dtype=dtype)) if zero_d_array else dtype
    observations, rewards, infos, _ = run_episode(env, [cast(c) for c in columns], seed=42)
    assert rewards == expected_rewards  # identical, not approximately
    assert [info["steps"] for info in infos] == [info["steps"] for info in expected_infos] == list(range(7))
    for got, want in zip(observations, expected_obs):
        np.testing.assert_array_equal(got["reconstruction"], want["reconstruction"])
        np.testing.assert_array_equal(got["acquired"], want["acquired"])


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (2.5, "actions must be integer column indices in [0, 16), got 2.5 (dtype float64)"),
        (float("nan"), "actions must be integer column indices in [0, 16), got nan (dtype float64)"),
        (3.0, "actions must be integer column indices in [0, 16), got 3.0 (dtype float64)"),
        (np.complex128(3 + 0j), "actions must be integer column indices in [0, 16), got (3+0j) (dtype complex128)"),
        (True, "actions must be integer column indices in [0, 16), got True (dtype bool)"),
        (np.bool_(False), "actions must be integer column indices in [0, 16), got False (dtype bool)"),
        (np.array([3]), "expected actions of shape () (one integer), got shape (1,)"),
        (np.array([[3]]), "expected actions of shape () (one integer), got shape (1, 1)"),
        (np.int8(-1), "action -1 is outside the k-space columns [0, 16)"),
        (np.int16(-300), "action -300 is outside the k-space columns [0, 16)"),
        (np.uint8(16), "action 16 is outside the k-space columns [0, 16)"),
        (np.array(200, dtype=np.uint8), "action 200 is outside the k-space columns [0, 16)"),
        (np.uint64(2**64 - 1), "action 18446744073709551615 is outside the k-space columns [0, 16)"),
    ],
    ids=repr,
)
@pytest.mark.filterwarnings("error")  # numpy's ComplexWarning too: a complex action is refused, not cast
def test_a_bad_action_is_refused_naming_it_and_spends_nothing(make_env, singlecoil_train, action, message):
    env = make_env(singlecoil_train, budget=2)
    _, info = env.reset(seed=0)
    with pytest.raises(ValueError) as raised:
        env.unwrapped.step(action)
    assert str(raised.value) == message
    _, _, terminated, _, info = env.step(free_columns(info)[0])
    assert not terminated and info["steps"] == 1


def test_look_ahead_takes_integer_candidates_of_any_dtype_and_refuses_others(make_env, singlecoil_train):
    env = make_env(singlecoil_train)
    env.reset(seed=0)
    candidates = np.array([0, 3, 9, 15])
    scores = env.unwrapped.look_ahead(candidates)
    np.testing.assert_array_equal(env.unwrapped.look_ahead(candidates.astype(np.uint8)), scores)
    for bad, message in [
        ([1.5, 2], "candidates must be integer column indices in [0, 16), got 1.5 (dtype float64)"),
        ([[0, 3]], "expected candidates of shape (K,), got shape (1, 2)"),
        (np.array([0, 16], dtype=np.uint8), "candidate 16 is outside the k-space columns [0, 16)"),
    ]:
        with pytest.raises(ValueError) as raised:
            env.unwrapped.look_ahead(bad)
        assert str(raised.value) == message


def test_same_seed_same_episode(make_env, singlecoil_train):
    actions = [3, 12, 3, 0, 9, 15]
    first = run_episode(make_env(singlecoil_train, budget=6), actions, seed=42)
    second = run_episode(make_env(singlecoil_train, budget=6), actions, seed=42)
    assert first[1] == second[1]
    assert [i["slice_id"] for i in first[2]] == [i["slice_id"] for i in second[2]]
    for a, b in zip(first[0], second[0]):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # seeding fixes the whole sequence of slices of later unseeded resets too
    env_a, env_b = make_env(singlecoil_train), make_env(singlecoil_train)
    env_a.reset(seed=3)
    env_b.reset(seed=3)
    slices_a = [env_a.reset()[1]["slice_id"] for _ in range(8)]
    slices_b = [env_b.reset()[1]["slice_id"] for _ in range(8)]
    assert slices_a == slices_b
    assert len(set(slices_a)) > 1
    # and different seeds do not all draw the same slice
    assert len({make_env(singlecoil_train).reset(seed=s)[1]["slice_id"] for s in range(12)}) > 1


def test_options_index_selects_slice(make_env, one_volume_folder):
    env = make_env(one_volume_folder)
    assert env.unwrapped.num_slices == 3
    path = only_file(one_volume_folder)
    for index in (2, 0, 1, 2):
        obs, info = env.reset(seed=index, options={"index": index})
        assert info["slice_id"] == index
        np.testing.assert_array_equal(env.unwrapped.episodes.target[0].numpy(), read_target(path, "singlecoil", index))
        obs_again, _ = env.reset(seed=100 + index, options={"index": np.int64(index)})
        np.testing.assert_array_equal(obs_again["reconstruction"], obs["reconstruction"])
    for bad in (-1, 3, 1.0, "1", [0], True, np.bool_(False)):
        with pytest.raises(ValueError, match="index"):
            env.reset(options={"index": bad})


def test_terminates_after_exactly_budget_steps(make_env, singlecoil_train):
    env = make_env(singlecoil_train, budget=5)
    _, info = env.reset(seed=1)
    free = free_columns(info)
    actions = [free[0], free[1], free[1], free[2], free[3]]  # one repeat: still a step
    for t, action in enumerate(actions, start=1):
        _, _, terminated, truncated, info = env.step(action)
        assert terminated == (t == 5) and truncated is False
        assert info["steps"] == t
    assert info["acquired_columns"] == 2 + 4
    with pytest.raises(RuntimeError):
        env.unwrapped.step(free[5])


@pytest.mark.parametrize("budget", [100, None])
def test_terminates_when_no_column_is_left(make_env, one_volume_folder, budget):
    env = make_env(one_volume_folder, budget=budget, initial_lines=3)
    _, info = env.reset(seed=0)
    free = free_columns(info)
    assert len(free) == 13
    for t, column in enumerate(free, start=1):
        _, _, terminated, _, info = env.step(column)
        assert terminated == (t == 13)
    assert info["steps"] == 13


def test_step_before_reset_and_after_termination_raises(one_volume_folder):
    env = ActiveAcquisitionEnv(one_volume_folder, budget=1, initial_lines=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    _, _, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)
    env.reset()
    env.step(1)  # a new episode steps again


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"reward_metric": "foo"}, "reward_metric"),
        ({"budget": 0}, "budget"),
        ({"budget": -3}, "budget"),
        ({"initial_lines": 0}, "initial_lines"),
        ({"initial_lines": 16}, "initial_lines"),
        ({"initial_lines": 40}, "initial_lines"),
        ({"challenge": "tricoil"}, "challenge"),
        ({"on_bad_file": "ignore"}, "on_bad_file"),
        ({"look_ahead_batch_size": 0}, "look_ahead_batch_size"),
        ({"kspace_shape": (64, 64)}, "shape"),
    ],
)
def test_invalid_config_raises(make_env, singlecoil_train, overrides, match):
    with pytest.raises(ValueError, match=match):
        make_env(singlecoil_train, **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"look_ahead_batch_size": 2.5}, "look_ahead_batch_size: expected an integer >= 1, got 2.5"),
        ({"look_ahead_batch_size": True}, "look_ahead_batch_size: expected an integer >= 1, got True"),
        ({"slice_cache_mb": float("nan")}, "slice_cache_mb: expected a finite number >= 0, got nan"),
        ({"slice_cache_mb": float("inf")}, "slice_cache_mb: expected a finite number >= 0, got inf"),
        ({"slice_cache_mb": -1}, "slice_cache_mb: expected a finite number >= 0, got -1"),
        ({"column_spectrum": "yes"}, "column_spectrum: expected True or False, got 'yes'"),
        ({"auc_weighted_rewards": 1}, "auc_weighted_rewards: expected True or False, got 1"),
        ({"device": "nonsense"}, "device 'nonsense' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        ({"device": "meta"}, "device 'meta' is not supported; expected cpu, cuda, cuda:N or mps"),
        ({"device": "cuda"}, "device 'cuda' is not available on this machine: torch.cuda.is_available() is False"),
    ],
)
def test_bad_options_are_refused_before_any_data_is_read(make_env, tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    with pytest.raises(ValueError) as raised:
        make_env(tmp_path / "no_such_folder", **overrides)  # a ValueError, not the missing folder's error
    assert str(raised.value) == message


def test_initial_lines_filling_every_measurable_column_raises(make_env, padded_folder):
    # 18 measurable columns of 24: 18 initial lines leave nothing to acquire
    with pytest.raises(ValueError, match="initial_lines"):
        make_env(padded_folder, initial_lines=18)
    env = make_env(padded_folder, initial_lines=17, budget=None)
    _, info = env.reset(seed=0)
    assert free_columns(info) == [3]  # measurable [3, 21) around the centre 12: column 3 is the farthest
    _, _, terminated, _, info = env.step(3)
    assert terminated and info["sampling_rate"] == pytest.approx(1.0)


def test_wrong_challenge_for_data_raises(make_env, multicoil_train):
    with pytest.raises(ValueError):
        make_env(multicoil_train, challenge="singlecoil")


def test_missing_folder_raises(make_env, tmp_path):
    with pytest.raises(FileNotFoundError):
        make_env(tmp_path / "does_not_exist")
    with pytest.raises(FileNotFoundError):
        make_env(tmp_path)  # exists, but holds no .h5 file


# ------------------------------------------------------------------- hidden state
def test_observation_does_not_depend_on_ground_truth(make_env, singlecoil_volume, copy_volume, tmp_path):
    original = copy_volume(singlecoil_volume, tmp_path / "original" / singlecoil_volume.name)
    doubled = copy_volume(singlecoil_volume, tmp_path / "doubled" / singlecoil_volume.name)
    key = TARGET_KEYS["singlecoil"]
    with h5py.File(doubled, "r+") as hf:
        hf[key][...] = 2.0 * hf[key][()]
        hf.attrs["max"] = 2.0 * hf.attrs["max"]
    with h5py.File(original, "r") as a, h5py.File(doubled, "r") as b:
        np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
        np.testing.assert_allclose(b[key][()], 2.0 * a[key][()])
    actions = [0, 15, 5, 5, 11]
    runs = [
        run_episode(make_env(path.parent, budget=5), actions, seed=0, options={"index": 1})
        for path in (original, doubled)
    ]
    (obs_a, rewards_a, infos_a, _), (obs_b, rewards_b, infos_b, _) = runs
    assert len(obs_a) == len(obs_b) == 6
    for a, b in zip(obs_a, obs_b):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    for a, b in zip(infos_a, infos_b):
        np.testing.assert_array_equal(a["action_mask"], b["action_mask"])
        assert a["mse"] != pytest.approx(b["mse"], rel=1e-3)
        assert a["nmse"] != pytest.approx(b["nmse"], rel=1e-3)
    assert rewards_a != pytest.approx(rewards_b, rel=1e-3)


# ------------------------------------------------------------------- look-ahead
@pytest.mark.parametrize("metric", ["mse", "ssim"])
def test_look_ahead_equals_reward_of_stepping(make_env, singlecoil_train, metric):
    env = make_env(singlecoil_train, budget=8, reward_metric=metric)
    prefix = [2, 13]

    def start():
        env.reset(seed=21)
        for action in prefix:
            env.step(action)

    start()
    unwrapped = env.unwrapped
    candidates = list(range(16))
    obs_before = unwrapped._observation()
    info_before = unwrapped._info()
    mask_before = unwrapped.action_masks().copy()
    scores = unwrapped.look_ahead(candidates)
    assert scores.dtype == np.float64 and scores.shape == (16,)
    # the state is unchanged
    for key, value in unwrapped._observation().items():
        np.testing.assert_array_equal(value, obs_before[key])
    after = unwrapped._info()
    for name in METRICS + ("steps", "acquired_columns"):
        assert after[name] == info_before[name]
    np.testing.assert_array_equal(unwrapped.action_masks(), mask_before)
    # acquired columns score exactly 0
    assert (scores[~mask_before] == 0.0).all()
    assert (scores[mask_before] != 0.0).all()
    # each score is the reward that stepping the column gives
    for column in candidates:
        start()
        _, reward, *_ = env.step(column)
        assert scores[column] == pytest.approx(reward, rel=1e-5, abs=1e-9)


def test_look_ahead_gains_are_the_stepped_changes_of_every_metric(make_env, singlecoil_train):
    """One reconstruction per candidate serves all metrics: each gain is what stepping that column
    changes the metric by (a decrease for mse/nmse, an increase for psnr/ssim); the reward
    metric's row is look_ahead's."""
    env = make_env(singlecoil_train, budget=8, reward_metric="psnr")
    names = ("mse", "ssim", "psnr", "nmse")

    def start() -> dict:
        env.reset(seed=5)
        _, _, _, _, info = env.step(3)
        return info

    before = start()
    legal = np.flatnonzero(before["action_mask"])
    candidates = [int(legal[0]), 3, int(legal[-1])]  # 3 is acquired: gains 0
    gains = env.unwrapped.look_ahead_gains(candidates, names)
    assert gains.shape == (4, 3) and gains.dtype == np.float64
    np.testing.assert_array_equal(gains[:, 1], 0.0)
    np.testing.assert_allclose(gains[2], env.unwrapped.look_ahead(candidates), rtol=1e-12, atol=0)
    for k in (0, 2):
        start()
        _, _, _, _, after = env.step(candidates[k])
        expected = [
            before["mse"] - after["mse"],
            after["ssim"] - before["ssim"],
            after["psnr"] - before["psnr"],
            before["nmse"] - after["nmse"],
        ]
        np.testing.assert_allclose(gains[:, k], expected, rtol=1e-5, atol=1e-9)
    assert gains[0, 0] > 0 and gains[3, 0] > 0  # acquiring data lowers the zero-filled error
    with pytest.raises(ValueError, match="metrics: expected one or more of"):
        env.unwrapped.look_ahead_gains(candidates, ("ssim", "sharpness"))
    with pytest.raises(ValueError, match="metrics"):
        env.unwrapped.look_ahead_gains(candidates, ())


def test_look_ahead_batch_size_does_not_matter(make_env, singlecoil_train):
    results = []
    for batch_size in (1, 3, 1000, None):
        env = make_env(singlecoil_train, look_ahead_batch_size=batch_size, reward_metric="psnr")
        env.reset(seed=4)
        env.step(1)
        results.append(env.unwrapped.look_ahead([0, 1, 5, 9, 14, 15, 7, 8]))
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-6, atol=1e-9)
    assert results[0][1] == 0.0


def test_default_look_ahead_batch_size_by_device_and_image_size(make_env, singlecoil_train):
    """On a CPU, 16 images of 64 x 64 per call (4 of 128 x 128, one 320 x 320 knee image);
    elsewhere 256; an env given no size takes the rule's."""
    cpu = torch.device("cpu")
    assert default_look_ahead_batch_size(cpu, (64, 64)) == 16
    assert default_look_ahead_batch_size(cpu, (128, 128)) == 4
    assert default_look_ahead_batch_size(cpu, (320, 320)) == 1
    assert default_look_ahead_batch_size(cpu, (640, 640)) == 1
    assert default_look_ahead_batch_size(torch.device("cuda", 1), (320, 320)) == 256
    assert default_look_ahead_batch_size(torch.device("mps"), (64, 64)) == 256
    env = make_env(singlecoil_train)
    episodes = env.unwrapped.episodes
    assert episodes.look_ahead_batch_size == default_look_ahead_batch_size(cpu, episodes.recon_size)
    assert make_env(singlecoil_train, look_ahead_batch_size=5).unwrapped.episodes.look_ahead_batch_size == 5


def test_look_ahead_rejects_bad_columns(make_env, singlecoil_train):
    env = make_env(singlecoil_train)
    env.reset(seed=0)
    for bad in ([-1], [0, 16]):
        with pytest.raises(ValueError):
            env.unwrapped.look_ahead(bad)


def test_single_env_reconstructs_once_per_new_column(make_env, singlecoil_train):
    from mri_rl.reconstruct import Reconstructor, zero_filled_image

    class Counting(Reconstructor):  # not linear: the env calls it for every new column
        calls = 0

        def forward(self, masked_kspace, mask, output_size):
            Counting.calls += 1
            return zero_filled_image(masked_kspace, output_size)

    env = make_env(singlecoil_train, reconstructor=Counting(), budget=4)
    _, info = env.reset(seed=0)
    assert Counting.calls == 1
    column = free_columns(info)[0]
    env.step(column)
    assert Counting.calls == 2
    env.step(column)  # a repeat changes nothing: no reconstruction
    assert Counting.calls == 2
    env.unwrapped.look_ahead([column, free_columns(info)[1], free_columns(info)[2]])
    assert Counting.calls == 3  # one batched call for all the candidates


def test_zero_filled_steps_update_the_kept_images_like_a_full_transform(make_env, singlecoil_train):
    """The zero-filled env adds each new column to kept coil images; after every step the
    reconstruction must equal the IFFT of all acquired k-space, up to float32 rounding."""
    from mri_rl.kspace import apply_mask
    from mri_rl.reconstruct import zero_filled_image

    env = make_env(singlecoil_train, budget=None)
    _, info = env.reset(seed=3)
    episodes = env.unwrapped.episodes
    order = np.random.default_rng(0).permutation(free_columns(info))
    for column in order:
        env.step(int(column))
        rows = torch.zeros(1, dtype=torch.long)
        expected = zero_filled_image(apply_mask(episodes.kspace[rows], episodes.acquired[rows]), episodes.recon_size)
        scale = float(expected.abs().max())
        assert torch.allclose(episodes.reconstruction, expected, atol=2e-6 * scale, rtol=0)
    assert episodes.acquired.all()


# ------------------------------------------------------------------------ rendering
def picture_panels(picture: np.ndarray, zoom: int, width: int, image_width: int) -> list[np.ndarray]:
    """The reconstruction, mask and target panels of a rendered picture, back at their size (h, ., 3)."""
    from mri_rl.envs.acquisition import PICTURE_GAP

    starts = [0, zoom * image_width + PICTURE_GAP, zoom * (image_width + width) + 2 * PICTURE_GAP]
    sizes = [image_width, width, image_width]
    return [picture[::zoom, start : start + zoom * size : zoom] for start, size in zip(starts, sizes)]


def test_render_rgb_array_shows_reconstruction_mask_and_target(make_env, one_volume_folder):
    from mri_rl.envs.acquisition import PICTURE_GAP, PICTURE_MIN_HEIGHT

    env = make_env(one_volume_folder, render_mode="rgb_array", budget=3)
    assert "rgb_array" in env.metadata["render_modes"] and env.render_mode == "rgb_array"
    _, info = env.reset(options={"index": 1})
    picture = env.render()
    zoom = PICTURE_MIN_HEIGHT // 16  # 16 x 16 targets, 16 k-space columns: enlarged 8 times
    assert picture.dtype == np.uint8
    assert picture.shape == (16 * zoom, zoom * (16 + 16 + 16) + 2 * PICTURE_GAP, 3)
    reconstruction, mask, target = picture_panels(picture, zoom, 16, 16)
    episodes = env.unwrapped.episodes
    scale = float(episodes.data_range[0])
    expected_target = np.clip(read_target(only_file(one_volume_folder), "singlecoil", 1) / scale, 0, 1) * 255
    np.testing.assert_allclose(target[:, :, 0], expected_target, atol=0.51)
    expected_reconstruction = np.clip(episodes.reconstruction[0].numpy() / scale, 0, 1) * 255
    np.testing.assert_allclose(reconstruction[:, :, 1], expected_reconstruction, atol=0.51)
    acquired = mask[0, :, 0] == 255  # amber (255, 200, 0) where acquired, dark grey elsewhere
    np.testing.assert_array_equal(acquired, info["action_mask"] == 0)
    assert (mask == mask[:1]).all()  # one row repeated: a column strip

    column = free_columns(info)[0]
    env.step(column)
    after = env.render()
    assert after.shape == picture.shape and not np.array_equal(after, picture)
    _, mask_after, target_after = picture_panels(after, zoom, 16, 16)
    assert mask_after[0, column, 0] == 255 and mask[0, column, 0] != 255  # the new column shows
    np.testing.assert_array_equal(target_after, target)  # the same target


def test_render_of_knee_geometry_is_not_enlarged(make_env, knee_geometry_file):
    env = make_env(knee_geometry_file, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (320, 320 + 368 + 320 + 4, 3)


def test_render_without_a_render_mode_returns_none(make_env, singlecoil_train):
    env = make_env(singlecoil_train)
    env.reset(seed=0)
    assert env.render_mode is None
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert env.render() is None


@pytest.mark.parametrize("render_mode", ["ansi", "rgb", "depth_array"])
def test_an_unknown_render_mode_is_refused(singlecoil_train, render_mode):
    with pytest.raises(ValueError, match=rf"render_mode: expected None or one of \['rgb_array'\], got '{render_mode}'"):
        ActiveAcquisitionEnv(singlecoil_train, render_mode=render_mode)


def test_the_batched_env_renders_one_picture_per_episode(make_vec_env, one_volume_folder):
    env = make_vec_env(one_volume_folder, 2, render_mode="rgb_array")
    env.reset(options={"indices": [0, 2]})
    pictures = env.render()
    assert isinstance(pictures, tuple) and len(pictures) == 2
    single = gym.make(
        "mri_rl/ActiveAcquisition-v0",
        data_path=one_volume_folder,
        render_mode="rgb_array",
        budget=4,
        initial_lines=2,
        reward_metric="mse",
    )
    for picture, index in zip(pictures, (0, 2)):
        single.reset(options={"index": index})
        np.testing.assert_array_equal(picture, single.render())
    with pytest.raises(ValueError, match="render_mode"):
        make_vec_env(one_volume_folder, 2, render_mode="human")
