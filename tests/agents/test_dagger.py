"""DAgger with a greedy look-ahead teacher: known answers on a toy env and on the MRI env, its
scores, and the errors it must raise."""

from __future__ import annotations

import functools
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mri_rl.agents import DAgger, DAggerSettings
from mri_rl.agents.dagger import (
    LabelledStates,
    flip_image_rows,
    mirror_k_space_columns,
    roll_images,
    score_regression_losses,
)
from mri_rl.agents.look_ahead import balanced_scores, legal_candidates, scores_over_actions, spreads
from mri_rl.agents.networks import ImageEncoder
from mri_rl.checkpointing import CheckpointError, save_checkpoint
from mri_rl.policies import BalancedOraclePolicy
from mri_rl.reconstruct.base import zero_filled_image


class HiddenIndexEnv(gym.Env):
    """One-step episodes: a hidden index s in [0, A) is drawn at reset and shown one-hot; action s
    pays 1, others 0. ``look_ahead_gains`` reports those payoffs for metric ``"hit"`` and their
    negatives for ``"miss"`` (smaller is better), so a teacher on ``hit`` picks s."""

    def __init__(self, num_actions: int = 4) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (num_actions,), dtype=np.float32)
        self.action_space = spaces.Discrete(num_actions)
        self.hidden = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.hidden = int(self.np_random.integers(self.action_space.n))
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._observation(), float(action == self.hidden), True, False, {}

    def look_ahead_gains(self, candidates: np.ndarray, metrics: Any) -> np.ndarray:
        hits = (np.asarray(candidates) == self.hidden).astype(np.float64)
        return np.stack([{"hit": hits, "miss": -hits}[m] for m in metrics])  # (M, K)

    def _observation(self) -> np.ndarray:
        return np.eye(self.action_space.n, dtype=np.float32)[self.hidden]


@pytest.mark.parametrize("candidates", [0, 2])  # 2: the teacher scores the policy's first choice and one other
def test_dagger_learns_the_teachers_choice_on_every_state(candidates):
    env = SyncVectorEnv([HiddenIndexEnv, HiddenIndexEnv], autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(
        env,
        teacher_metrics=("hit",),
        teacher_candidates=candidates,
        temperature=0.1,
        learning_starts=8,
        batch_size=16,
        net_arch=(16,),
        seed=0,
    )
    agent.learn(400, progress_bar=False)
    assert agent.beta == 0.0  # the second half of training followed the policy alone
    states = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(agent.predict(states)[0], np.arange(4))
    # ... and the teacher with gains of the opposite sign learns to avoid it
    avoid = DAgger(env, teacher_metrics=("miss",), temperature=0.1, learning_starts=8, batch_size=16, net_arch=(16,))
    avoid.learn(400, progress_bar=False)
    assert (avoid.predict(states)[0] != np.arange(4)).all()


class HiddenColumnEnv(HiddenIndexEnv):
    """:class:`HiddenIndexEnv` seen as an image (1, 8, ``spacing`` * A) with one pixel lit in row
    ``row``, column ``spacing`` * s + ``spacing`` // 2: the teacher's choice is where along the
    width the pixel lies. With the defaults (1, 8, 8), the top row is lit at column s, so the
    image upside down (bottom row lit) asks for the same action."""

    def __init__(self, num_actions: int = 8, spacing: int = 1, row: int = 0) -> None:
        super().__init__(num_actions=num_actions)
        self.observation_space = spaces.Box(0.0, 1.0, (1, 8, spacing * num_actions), dtype=np.float32)
        self.spacing, self.row = spacing, row

    def _observation(self) -> np.ndarray:
        image = np.zeros(self.observation_space.shape, dtype=np.float32)
        image[0, self.row, self.spacing * self.hidden + self.spacing // 2] = 1.0
        return image


def test_flipped_rows_teach_the_upside_down_images_too():
    """Trained on top rows only, the policy with ``flip_rows`` also knows the bottom rows' answers."""
    env = SyncVectorEnv([HiddenColumnEnv, HiddenColumnEnv], autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(
        env, teacher_metrics=("hit",), temperature=0.1, learning_starts=8, batch_size=32, flip_rows=True, seed=0
    )
    agent.learn(800, progress_bar=False)
    upside_down = np.zeros((8, 1, 8, 8), dtype=np.float32)
    upside_down[np.arange(8), 0, 7, np.arange(8)] = 1.0
    np.testing.assert_array_equal(agent.predict(upside_down)[0], np.arange(8))
    np.testing.assert_array_equal(agent.predict(upside_down[:, :, ::-1].copy())[0], np.arange(8))


class LeftHalfIndexEnv(HiddenIndexEnv):
    """:class:`HiddenIndexEnv` whose hidden index is drawn from the left half of the actions only."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.hidden = int(self.np_random.integers(self.action_space.n // 2))
        return self._observation(), {}


@pytest.mark.parametrize("flip_columns", [False, True])
def test_mirrored_columns_teach_the_other_half_of_k_space(flip_columns):
    """The one-hot observation is a value per column, so its mirror asks for the mirrored action:
    trained on the left half only, the policy knows the right half's answers with ``flip_columns``."""
    env = SyncVectorEnv([lambda: LeftHalfIndexEnv(8)] * 2, autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(
        env,
        teacher_metrics=("hit",),
        temperature=0.1,
        learning_starts=8,
        batch_size=32,
        flip_columns=flip_columns,
        seed=0,
    )
    agent.learn(800, progress_bar=False)
    states = np.eye(8, dtype=np.float32)
    np.testing.assert_array_equal(agent.predict(states[:4])[0], np.arange(4))
    right_half = agent.predict(states[4:])[0]
    assert (right_half == np.arange(4, 8)).all() == flip_columns


@pytest.mark.parametrize("width", [8, 7])
def test_mirrored_images_are_the_magnitude_images_of_the_mirrored_k_space(width):
    """Known answer: the zero-filled magnitude image (cropped along H only) of k-space whose columns
    are reversed is what ``mirror_k_space_columns`` makes of the original's."""
    generator = torch.Generator().manual_seed(0)
    kspace = torch.randn(2, 1, 12, width, dtype=torch.complex64, generator=generator)
    kspace[:, :, :, [1, 4]] = 0  # unacquired columns
    images = zero_filled_image(kspace, (6, width)).unsqueeze(1)  # (B, 1, h, w)
    acquired = (kspace[:, 0, 0] != 0).to(torch.int8)  # (B, W)
    scores = torch.randn(2, width, generator=generator)
    which = np.array([True, False])
    obs, mirrored_scores = mirror_k_space_columns(
        {"reconstruction": images, "acquired": acquired}, scores, ("reconstruction",), ("acquired",), which
    )
    expected = zero_filled_image(kspace.flip(-1), (6, width))
    torch.testing.assert_close(obs["reconstruction"][0, 0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(obs["reconstruction"][1], images[1])
    np.testing.assert_array_equal(obs["acquired"][0].numpy(), acquired[0].flip(-1).numpy())
    torch.testing.assert_close(mirrored_scores, torch.stack([scores[0].flip(-1), scores[1]]))


def test_an_image_encoder_that_keeps_its_columns_learns_where_along_the_width_the_answer_lies():
    """Four blocks of 16 columns, one per action, in a (1, 8, 64) image."""
    block = functools.partial(HiddenColumnEnv, num_actions=4, spacing=16, row=4)
    env = SyncVectorEnv([block, block], autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(
        env, teacher_metrics=("hit",), temperature=0.1, learning_starts=8, batch_size=32, image_columns=True, seed=0
    )
    agent.learn(400, progress_bar=False)
    images = np.zeros((4, 1, 8, 64), dtype=np.float32)
    images[np.arange(4), 0, 4, 16 * np.arange(4) + 8] = 1.0
    np.testing.assert_array_equal(agent.predict(images)[0], np.arange(4))


@pytest.mark.parametrize(("width", "columns"), [(64, 4), (37, 3), (8, 1)])
def test_an_image_encoder_that_keeps_its_columns_has_one_block_of_features_per_column(width, columns):
    encoder = ImageEncoder(2, 16, width, features=5, keep_columns=True)
    assert encoder.project[0].in_features == 128 * columns  # 16 * 2**3 channels after 4 layers
    assert encoder(torch.zeros(3, 2, 16, width)).shape == (3, 5)
    assert ImageEncoder(2, 16, width, features=5).project[0].in_features == 128


def test_flip_image_rows_reverses_the_chosen_images_only():
    images = torch.arange(2 * 1 * 3 * 2, dtype=torch.float32).reshape(2, 1, 3, 2)
    acquired = torch.tensor([[1, 0], [0, 1]])
    which = np.array([False, True])
    flipped = flip_image_rows({"image": images, "acquired": acquired}, ("image",), which)
    torch.testing.assert_close(flipped["image"][0], images[0])
    torch.testing.assert_close(flipped["image"][1], images[1, :, [2, 1, 0]])
    assert flipped["acquired"] is acquired
    torch.testing.assert_close(flip_image_rows(images, ("",), which), flipped["image"])  # a Box observation


def test_roll_images_rolls_each_image_by_its_own_shift():
    images = torch.randn(3, 2, 5, 7)
    shifts = np.array([[1, -2], [0, 3], [-4, 0]])
    acquired = torch.ones(3, 7)
    rolled = roll_images({"image": images, "acquired": acquired}, ("image",), shifts)
    for b, (rows, columns) in enumerate(shifts.tolist()):
        torch.testing.assert_close(rolled["image"][b], torch.roll(images[b], (rows, columns), dims=(-2, -1)))
    assert rolled["acquired"] is acquired
    torch.testing.assert_close(roll_images(images, ("",), shifts), rolled["image"])  # a Box observation


def test_with_shift_images_the_network_learns_on_rolled_copies_of_each_image():
    """One kept state; every image of the minibatches the network is fitted on is that image rolled
    by at most k pixels each way, and not all by zero."""
    env = SyncVectorEnv([HiddenColumnEnv], autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(env, teacher_metrics=("hit",), batch_size=16, shift_images=2, net_arch=(8,), seed=0)
    labelled = LabelledStates(4, env.single_observation_space, 8, compact_images=False)
    image = np.random.default_rng(0).random((1, 1, 8, 8)).astype(np.float32)
    labelled.add(image, np.zeros((1, 8), dtype=np.float32), np.ones(1), np.array([0]))
    seen: list[torch.Tensor] = []
    agent.policy.register_forward_pre_hook(lambda _module, inputs: seen.append(inputs[0].detach().clone()))
    agent.fit(labelled, 2)
    rolls = {
        (r, c): torch.roll(torch.from_numpy(image[0]), (r, c), dims=(-2, -1))
        for r in range(-2, 3)
        for c in range(-2, 3)
    }
    shifts = [next(shift for shift, rolled in rolls.items() if torch.equal(x, rolled)) for x in torch.cat(seen)]
    assert len(shifts) == 32 and len(set(shifts)) > 1


def test_the_teacher_standardises_each_metric_before_summing():
    gains = np.array([[[1.0, 2.0, 3.0, 9.0], [300.0, 100.0, 200.0, -5.0]]])  # (1, M=2, K=4); K=4 is padding
    valid = np.array([[True, True, True, False]])
    z = np.sqrt(1.5)  # the z-score of the largest of three evenly spaced values
    np.testing.assert_allclose(balanced_scores(gains, valid), [[0.0, -z, z, 0.0]])  # raw sums favour column 0
    np.testing.assert_allclose(spreads(gains, valid), [[np.sqrt(2 / 3), 100 * np.sqrt(2 / 3)]])  # what was divided
    candidates, valid = legal_candidates(np.array([[False, True, False, True], [True, False, False, False]]))
    np.testing.assert_array_equal(candidates, [[1, 3], [0, 0]])
    np.testing.assert_array_equal(valid, [[True, True], [True, False]])
    scores = scores_over_actions(candidates, np.array([[0.5, 2.0], [1.0, 7.0]]), valid, 4)
    np.testing.assert_array_equal(scores, [[-np.inf, 0.5, -np.inf, 2.0], [1.0, -np.inf, -np.inf, -np.inf]])


def test_the_teacher_weighs_each_standardised_metric():
    gains = np.array([[[1.0, 2.0, 3.0, 9.0], [300.0, 100.0, 200.0, -5.0]]])  # as above: z-scores (-z, 0, z), (z, -z, 0)
    valid = np.array([[True, True, True, False]])
    z = np.sqrt(1.5)
    np.testing.assert_allclose(balanced_scores(gains, valid, [2.0, 1.0]), [[-z, -z, 2 * z, 0.0]])
    np.testing.assert_allclose(balanced_scores(gains, valid, [0.0, 1.0]), [[z, -z, 0.0, 0.0]])
    np.testing.assert_array_equal(balanced_scores(gains, valid, [1.0, 1.0]), balanced_scores(gains, valid))
    with pytest.raises(ValueError, match=re.escape("weights: expected one per metric (2), got [1.0]")):
        balanced_scores(gains, valid, [1.0])


@pytest.mark.parametrize(("weights", "picks_hidden"), [((3.0, 1.0), True), ((1.0, 3.0), False), ((1.0, 0.0), True)])
def test_dagger_teacher_follows_its_metric_weights(weights, picks_hidden):
    env = SyncVectorEnv([HiddenIndexEnv] * 3)
    agent = DAgger(env, teacher_metrics=("hit", "miss"), teacher_weights=weights, net_arch=(8,), seed=0)
    env.reset(seed=1)
    hidden = np.array([e.unwrapped.hidden for e in env.envs])
    choices = agent.teacher_labels(np.ones((3, 4), dtype=bool))[0].argmax(axis=1)
    assert (choices == hidden).all() == picks_hidden and (choices != hidden).all() != picks_hidden


def test_the_teacher_scores_the_policys_likeliest_actions_and_random_others():
    agent = DAgger(SyncVectorEnv([HiddenIndexEnv]), teacher_candidates=4, teacher_metrics=("hit",), seed=0)
    logits = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, -np.inf, 0.0], [1.0, 2.0, -np.inf, -np.inf, -np.inf, -np.inf, 0.0]])
    legal = np.isfinite(logits)
    drawn = set()
    for draw in range(20):  # the logits as the policy's tensor or as an array
        subset = agent.teacher_subset(torch.as_tensor(logits) if draw % 2 else logits, legal)
        assert subset[0, :2].all() and subset[0].sum() == 4 and not subset[0, 5]  # the two likeliest and two others
        drawn |= set(np.flatnonzero(subset[0, 2:]) + 2)
        np.testing.assert_array_equal(subset[1], legal[1])  # three legal actions: all of them
    assert drawn == {2, 3, 4, 6}
    np.testing.assert_array_equal(DAgger(SyncVectorEnv([HiddenIndexEnv])).teacher_subset(logits, legal), legal)


class UnseenStakesEnv(HiddenIndexEnv):
    """:class:`HiddenIndexEnv` whose observation says nothing (all zeros): index 1 is hidden three
    times in four and pays ``small``, index 0 once in four and pays ``large``. A policy that counts
    every state the same picks 1, the common case; one that weighs each state by what is at stake
    there picks 0 when 0.25 * ``large`` > 0.75 * ``small``."""

    small, large = 0.1, 10.0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.hidden = int(self.np_random.random() < 0.25) ^ 1
        return self._observation(), {}

    def look_ahead_gains(self, candidates: np.ndarray, metrics: Any) -> np.ndarray:
        return super().look_ahead_gains(candidates, metrics) * (self.large if self.hidden == 0 else self.small)

    def _observation(self) -> np.ndarray:
        return np.zeros(self.action_space.n, dtype=np.float32)


@pytest.mark.parametrize(("weigh_states_by", "picked"), [("", 1), ("hit", 0)])
def test_states_weighed_by_their_stake_teach_the_costly_choice(weigh_states_by, picked):
    env = SyncVectorEnv([UnseenStakesEnv] * 4, autoreset_mode=AutoresetMode.NEXT_STEP)
    settings = {"teacher_metrics": ("hit",), "temperature": 0.1, "learning_starts": 16, "batch_size": 32}
    agent = DAgger(env, weigh_states_by=weigh_states_by, net_arch=(8,), seed=0, **settings)
    agent.learn(400, progress_bar=False)
    assert agent.predict(np.zeros((1, 4), dtype=np.float32))[0][0] == picked
    kept = agent.labelled.stakes[: agent.labelled.size]
    hidden_is_zero = agent.labelled.scores[: agent.labelled.size].argmax(axis=1) == 0
    one_hit_in_four = np.sqrt(0.1875)  # the standard deviation of (1, 0, 0, 0)
    expected = np.where(hidden_is_zero, 10.0, 0.1) * one_hit_in_four if weigh_states_by else np.ones(len(kept))
    np.testing.assert_allclose(kept, expected, rtol=1e-6)


class NearTieEnv(HiddenIndexEnv):
    """One-step episodes whose observation says nothing (all zeros). Three times in five the teacher
    scores action 1 just above action 0 (gains 1.0 and 0.9), else action 0 alone (gain 1): the
    teacher's likeliest first choice is 1, its best choice on average (the highest expected score) 0."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.hidden = int(self.np_random.random() < 0.6)
        return self._observation(), {}

    def look_ahead_gains(self, candidates: np.ndarray, metrics: Any) -> np.ndarray:
        gains = np.array([0.9, 1.0, 0.0, 0.0]) if self.hidden else np.array([1.0, 0.0, 0.0, 0.0])
        return gains[np.asarray(candidates)][None]  # (1 metric, K)

    def _observation(self) -> np.ndarray:
        return np.zeros(self.action_space.n, dtype=np.float32)


@pytest.mark.parametrize(
    ("imitation_loss", "temperature", "picked"),
    [("cross_entropy", 0.05, 1), ("score_regression", 0.05, 0), ("score_regression", 0.5, 0)],
)
def test_score_regression_learns_the_expected_score_and_cross_entropy_the_likeliest_choice(
    imitation_loss, temperature, picked
):
    env = SyncVectorEnv([NearTieEnv] * 4, autoreset_mode=AutoresetMode.NEXT_STEP)
    settings = {
        "teacher_metrics": ("hit",),
        "learning_starts": 16,
        "batch_size": 32,
        "learning_rate": 0.01,
        "gradient_steps": 8,
    }
    agent = DAgger(env, imitation_loss=imitation_loss, temperature=temperature, net_arch=(8,), seed=0, **settings)
    agent.learn(400, progress_bar=False)
    state = np.zeros((1, 4), dtype=np.float32)
    assert agent.predict(state)[0][0] == picked
    if imitation_loss == "score_regression":  # the centred logits are the mean kept score / temperature
        expected = agent.labelled.scores[: agent.labelled.size].mean(axis=0)
        logits = agent.policy(torch.as_tensor(state))[0].detach().numpy() * temperature
        np.testing.assert_allclose(logits - logits.mean(), expected - expected.mean(), atol=0.05)


def test_score_regression_losses_fit_the_centred_scores_of_the_legal_actions_only():
    legal = torch.tensor([[True, True, False], [True, True, True]])
    targets = torch.tensor([[2.0, 0.0, float("-inf")], [1.0, 2.0, 3.0]])
    logits = torch.tensor([[5.0, 3.0, 100.0], [0.0, 0.0, 0.0]])  # row 0: the targets plus 3, and an illegal 100
    losses = score_regression_losses(logits, targets, legal)
    assert losses[0].item() == 0.0
    assert losses[1].item() == pytest.approx(2.0 / 3.0)  # centred targets (-1, 0, 1), logits all 0


class FirstSlice(gym.Wrapper):
    """Every episode on slice 0 of the data."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={"index": 0})


def test_dagger_on_one_mri_slice_acquires_what_the_ssim_psnr_oracle_would_at_every_step(make_mri_env, make_mri_vec_env):
    """Trained on one slice, the policy's own episode there takes, at every step, a column that
    ``oracle_ssim_psnr`` scores highest (ties allowed: mirrored columns can score alike)."""
    agent = DAgger(
        FirstSlice(make_mri_env(reward_metric="ssim")),
        temperature=0.05,
        learning_starts=16,
        batch_size=32,
        gradient_steps=4,
        net_arch=(32,),
        seed=0,
    )
    agent.learn(240, progress_bar=False)
    env = make_mri_vec_env(1, reward_metric="ssim")
    oracle = BalancedOraclePolicy(env)
    obs, info = env.reset(options={"indices": [0]})
    legal = info["action_mask"].astype(bool)
    np.testing.assert_allclose(DAgger(env).teacher_labels(legal)[0], oracle.scores(obs, legal))  # the same teacher
    for _ in range(4):  # budget 4
        teacher = oracle.scores(obs, legal)[0]
        action = agent.predict(obs, action_mask=legal)[0]
        assert teacher[action] == pytest.approx(teacher.max()), (action, teacher)
        obs, _, _, _, info = env.step(action)
        legal = info["action_mask"].astype(bool)


def test_an_env_without_look_ahead_gains_is_refused():
    with pytest.raises(TypeError, match="needs an env with look_ahead_gains"):
        DAgger(gym.make("CartPole-v1"))


def test_bad_teacher_settings_are_refused(make_mri_vec_env):
    with pytest.raises(ValueError, match="teacher_metrics must name at least one metric"):
        DAggerSettings(teacher_metrics=())
    with pytest.raises(ValueError, match=re.escape("DAggerSettings: temperature")):
        DAggerSettings(temperature=0.0)
    with pytest.raises(ValueError, match="teacher_candidates must be 0 .* or at least 2, got 1"):
        DAggerSettings(teacher_candidates=1)
    with pytest.raises(
        ValueError, match=re.escape("imitation_loss must be one of ['cross_entropy', 'score_regression'], got 'mse'")
    ):
        DAggerSettings(imitation_loss="mse")
    expected = (
        "DAggerSettings: teacher_weights: expected one finite weight >= 0 per metric of ['ssim', 'psnr'], not all 0"
    )
    with pytest.raises(ValueError, match=re.escape(f"{expected}, got [2.0]")):
        DAggerSettings(teacher_weights=(2.0,))
    with pytest.raises(ValueError, match=re.escape(f"{expected}, got [0.0, 0.0]")):
        DAggerSettings(teacher_weights=(0.0, 0.0))
    with pytest.raises(ValueError, match=re.escape("DAggerSettings: teacher_weights: must be >= 0")):
        DAggerSettings(teacher_weights=(1.0, -1.0))
    with pytest.raises(ValueError, match=re.escape("weigh_states_by must be empty or one of teacher_metrics ['ssim']")):
        DAggerSettings(teacher_metrics=("ssim",), weigh_states_by="psnr")
    agent = DAgger(make_mri_vec_env(2), teacher_metrics=("sharpness",), net_arch=(8,))
    with pytest.raises(ValueError, match=re.escape("got ['sharpness']")):  # the env names what it knows
        agent.learn(8, progress_bar=False)


def hidden_index_dagger(env_count: int = 2, **settings: Any) -> DAgger:
    env = SyncVectorEnv([HiddenIndexEnv] * env_count, autoreset_mode=AutoresetMode.NEXT_STEP)
    return DAgger(env, teacher_metrics=("hit",), learning_starts=8, batch_size=8, net_arch=(8,), seed=0, **settings)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_weight_decay_shrinks_every_weight_by_the_step_times_the_decay(weight_decay):
    """A loss with zero gradients leaves Adam's step at 0, so only the decoupled decay moves the
    weights: each becomes (1 - learning_rate * weight_decay) of itself, exactly; 0 leaves them."""
    agent = hidden_index_dagger(learning_rate=0.01, weight_decay=weight_decay)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent._gradient_step(sum(p.sum() for p in agent.policy.parameters()) * 0.0, max_grad_norm=1.0)
    for old, new in zip(before, agent.policy.parameters(), strict=True):
        torch.testing.assert_close(new.detach(), old * (1 - 0.01 * weight_decay), rtol=0, atol=1e-7)


def test_a_negative_weight_decay_is_refused():
    with pytest.raises(ValueError, match=re.escape("DAggerSettings: weight_decay")):
        DAggerSettings(weight_decay=-0.1)


@pytest.mark.parametrize("buffer_size", [1000, 24])  # 24: the store has wrapped around
def test_a_resumable_checkpoint_keeps_the_labelled_states_and_a_model_does_not(tmp_path, buffer_size):
    agent = hidden_index_dagger(buffer_size=buffer_size, weigh_states_by="hit")
    agent.learn(40, progress_bar=False)
    agent.save(tmp_path / "checkpoint.pt", resumable=True)
    agent.save(tmp_path / "model.pt")
    resumed = DAgger.load(tmp_path / "checkpoint.pt", env=agent.env)
    kept, back = agent.labelled, resumed.labelled
    assert (back.size, back.next) == (kept.size, kept.next) == (min(40, buffer_size), 40 % buffer_size)
    np.testing.assert_array_equal(back.scores, kept.scores)
    np.testing.assert_array_equal(back.stakes, kept.stakes)
    assert (kept.stakes[: kept.size] == np.float32(np.sqrt(0.1875))).all()  # one hit in four legal actions
    np.testing.assert_array_equal(back.observations[""], kept.observations[""])
    fresh = DAgger.load(tmp_path / "model.pt", env=agent.env)  # a final model: no labels in it
    assert fresh.labelled.size == 0
    assert "training_state" not in torch.load(tmp_path / "model.pt", weights_only=True)
    assert DAgger.load(tmp_path / "checkpoint.pt").labelled is None  # without an env, nothing to keep them in


def test_labelled_states_that_do_not_fit_the_store_are_refused_naming_the_entry(tmp_path):
    agent = hidden_index_dagger()
    agent.learn(16, progress_bar=False)
    checkpoint = agent.checkpoint(resumable=True)
    checkpoint["training_state"]["aggregate"]["scores"] = torch.zeros(16, 5)  # 5 actions, not 4
    save_checkpoint(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"entry 'training_state.aggregate' is unusable .*scores \(16, 5\)"):
        DAgger.load(tmp_path / "checkpoint.pt", env=agent.env)
    checkpoint = agent.checkpoint(resumable=True)
    checkpoint["training_state"]["aggregate"]["stakes"] = -torch.ones(16)
    save_checkpoint(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"unusable .*stakes of shape \(16,\); expected \(16,\), finite"):
        DAgger.load(tmp_path / "checkpoint.pt", env=agent.env)


def test_labelled_states_kept_before_states_had_stakes_count_the_same(tmp_path):
    agent = hidden_index_dagger(weigh_states_by="hit")
    agent.learn(16, progress_bar=False)
    checkpoint = agent.checkpoint(resumable=True)
    del checkpoint["training_state"]["aggregate"]["stakes"]
    save_checkpoint(checkpoint, tmp_path / "checkpoint.pt")
    resumed = DAgger.load(tmp_path / "checkpoint.pt", env=agent.env).labelled
    np.testing.assert_array_equal(resumed.stakes[:16], np.ones(16))
    np.testing.assert_array_equal(resumed.scores[:16], agent.labelled.scores[:16])
