"""``member_agreement``: known answers on hand-made log-probabilities, an ensemble of one agent twice
(alike on every state it reaches, and those are the states its own rollout reaches), and the errors."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from mri_rl.agents import DAgger
from mri_rl.evaluation.member_agreement import MemberAgreement, member_agreement
from mri_rl.evaluation.rollout import acquisition_orders, rollout_policy
from mri_rl.policies.product_of_experts import ProductOfExpertsPolicy

BUDGET = 3


def test_known_answers_on_two_states():
    """State 0: members 0 and 1 put 0.7 on column 0, member 2 on column 1, the ensemble takes 0.
    State 1: column 3 illegal, every member uniform over 0..2 (first choice 0), the ensemble takes 2."""
    sharp, other = np.log([0.7, 0.1, 0.1, 0.1]), np.log([0.1, 0.7, 0.1, 0.1])
    uniform = np.array([math.log(1 / 3)] * 3 + [-np.inf])
    log_p = np.array([[sharp, uniform], [sharp, uniform], [other, uniform]])
    agreement = MemberAgreement.of(log_p, np.array([0, 2]))
    assert agreement.steps == 2
    assert agreement.pairwise_top1 == pytest.approx((1 / 3 + 1) / 2)
    assert agreement.unanimous == 0.5
    assert agreement.member_is_choice == pytest.approx((2 / 3 + 0) / 2)
    sharp_entropy = -(0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1))
    assert agreement.entropy == pytest.approx((sharp_entropy + math.log(3)) / 2)
    assert agreement.top_probability == pytest.approx((0.7 + 1 / 3) / 2)


@pytest.mark.parametrize(
    ("log_p", "choices"),
    [
        (np.zeros((1, 2, 4)), np.zeros(2, dtype=int)),  # one member
        (np.zeros((2, 0, 4)), np.zeros(0, dtype=int)),  # no state
        (np.zeros((2, 2, 4)), np.zeros(3, dtype=int)),  # choices of other states
        (np.zeros((2, 4)), np.zeros(2, dtype=int)),  # no member axis
    ],
)
def test_other_shapes_are_refused(log_p, choices):
    with pytest.raises(ValueError, match="K >= 2 members"):
        MemberAgreement.of(log_p, choices)


def test_one_agent_twice_is_alike_on_the_states_its_own_rollout_reaches(make_test_env):
    env = make_test_env(2, BUDGET)
    agent = DAgger(env, net_arch=(8,), seed=0)
    policy = ProductOfExpertsPolicy([agent, agent], env.single_action_space.n)
    agreement = member_agreement(policy, env, BUDGET, [0, 1, 2])
    assert agreement.steps == 3 * BUDGET  # the short second batch's padding row is not counted
    assert (agreement.pairwise_top1, agreement.unanimous, agreement.member_is_choice) == (1.0, 1.0, 1.0)
    assert 0.0 < agreement.entropy <= math.log(16 - 2) + 1e-9
    assert agreement.top_probability == pytest.approx(agent_top_probability(agent, policy, env), rel=1e-6)


def agent_top_probability(agent: DAgger, policy: ProductOfExpertsPolicy, env: gym.vector.VectorEnv) -> float:
    """The agent's mean largest probability over the states of the policy's own rollout, replayed from
    the rollout's orders one step at a time."""
    orders = acquisition_orders(rollout_policy(policy, env, BUDGET, "e", 0, progress=False))
    unwrapped = env.unwrapped
    tops = []
    for index in range(unwrapped.num_slices):
        obs, _ = env.reset(options={"indices": [index] * env.num_envs})
        for column in orders[unwrapped.slice_name(index)]:
            tops.append(np.exp(agent.log_probabilities(obs, unwrapped.action_masks())[0]).max())
            obs, *_ = env.step(np.full(env.num_envs, column))
    return float(np.mean(tops))


def test_one_member_no_slice_and_no_budget_are_refused(make_test_env):
    env = make_test_env(1, BUDGET)
    agent = DAgger(env, net_arch=(8,), seed=0)
    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        member_agreement(ProductOfExpertsPolicy([agent], env.single_action_space.n), env, BUDGET, [0])
    pair = ProductOfExpertsPolicy([agent, agent], env.single_action_space.n)
    with pytest.raises(ValueError, match="0 slice"):
        member_agreement(pair, env, BUDGET, [])
    with pytest.raises(ValueError, match="budget >= 1, got 1 slice"):
        member_agreement(pair, env, 0, [0])


def test_the_script_refuses_what_it_cannot_roll_in_one_line(tmp_path, script_usage_error, cartpole_run):
    """``scripts/member_agreement.py``: one run, a folder that is no run or a run of another env is one
    usage error."""
    none = str(tmp_path / "none")
    assert "at least 2 run folders, got 1" in script_usage_error("member_agreement.py", none)
    assert "config.yaml does not exist" in script_usage_error("member_agreement.py", none, none)
    assert "trained on CartPole-v1" in script_usage_error("member_agreement.py", str(cartpole_run), none)
