"""Tabular reinforcement learning: exact dynamic programming and Q-learning.

Dynamic programming on a known finite MDP (Bellman, 1957; Howard, 1960; Sutton & Barto,
*Reinforcement Learning: An Introduction*, 2nd ed., 2018, ch. 4) and model-free Q-learning
on Gymnasium environments with discrete observation and action spaces (Watkins, 1989;
Sutton & Barto, 2018, sec. 6.5).

Conventions: rewards are received on transitions, so ``V(s) = E[sum_t gamma**t r_{t+1}]``;
terminal states are absorbing with zero reward and value 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mri_rl.schedules import LinearSchedule

#: Tolerance for probabilities summing to one.
PROBABILITY_ATOL = 1e-8


@dataclass(frozen=True)
class FiniteMDP:
    """A finite Markov decision process with expected rewards (Sutton & Barto, 2018, sec. 3.1).

    The arrays are copied to float (bool for ``terminal``) and made read-only on creation.

    Attributes:
        transitions: ``P[s, a, s']``, the probability of moving to ``s'`` after taking ``a``
            in ``s``; shape ``(S, A, S)``, non-negative, each ``P[s, a]`` summing to one.
        rewards: ``R[s, a]``, the expected immediate reward of ``a`` in ``s``; shape ``(S, A)``.
        discount: The discount factor gamma, in ``[0, 1]``. ``1`` is allowed only with at
            least one terminal state; values are then finite only for policies that reach
            a terminal state with probability one.
        terminal: Optional bool mask ``(S,)`` of terminal states. Each must be absorbing
            (``P[t, a, t] == 1``) with zero reward for every action.

    Raises:
        ValueError: If a shape, probability, reward, discount or terminal state is invalid.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    discount: float
    terminal: np.ndarray | None = None

    def __post_init__(self) -> None:
        transitions, rewards = _checked_model(self.transitions, self.rewards)
        discount = float(self.discount)
        if not 0.0 <= discount <= 1.0:  # also rejects NaN
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        terminal = None if self.terminal is None else _checked_terminal(self.terminal, transitions, rewards)
        if discount == 1.0 and (terminal is None or not terminal.any()):
            raise ValueError(
                "discount 1 requires at least one absorbing terminal state (terminal mask); use discount < 1 otherwise"
            )
        for array in (transitions, rewards, terminal):
            if array is not None:
                array.setflags(write=False)
        object.__setattr__(self, "transitions", transitions)
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "discount", discount)
        object.__setattr__(self, "terminal", terminal)

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return self.transitions.shape[1]

    @property
    def terminal_mask(self) -> np.ndarray:
        """Bool mask ``(S,)`` of terminal states (all False when ``terminal`` is None)."""
        if self.terminal is None:
            return np.zeros(self.n_states, dtype=bool)
        return self.terminal

    @classmethod
    def from_gymnasium(cls, env: gym.Env, discount: float = 0.99) -> FiniteMDP:
        """Build the MDP of a Gymnasium toy-text environment from its ``P`` table.

        ``env.unwrapped.P[s][a]`` is a list of ``(prob, next_state, reward, terminated)``
        (FrozenLake-v1, CliffWalking-v1, Taxi-v4, ...). ``R[s, a] = sum prob * reward``.
        Every ``terminated`` transition is redirected to one extra absorbing state with
        index ``S`` (zero reward, marked in ``terminal``), so the value after termination
        is 0 whatever the table lists as ``next_state``; the result has ``S + 1`` states
        and state ``s < S`` is the environment's observation ``s``.

        Args:
            env: An environment (wrapped or not) with Discrete spaces starting at 0.
            discount: The discount factor gamma of the returned MDP.

        Returns:
            The MDP with ``S + 1`` states.

        Raises:
            ValueError: If the environment has no usable ``P`` table or the table is invalid.
        """
        base = env.unwrapped
        n_states = _discrete_size(base.observation_space, "observation space")
        n_actions = _discrete_size(base.action_space, "action space")
        table = getattr(base, "P", None)
        if not isinstance(table, dict):
            raise ValueError(f"{type(base).__name__} has no transition table P (dict)")
        absorbing = n_states
        transitions = np.zeros((n_states + 1, n_actions, n_states + 1))
        rewards = np.zeros((n_states + 1, n_actions))
        transitions[absorbing, :, absorbing] = 1.0
        for s in range(n_states):
            for a in range(n_actions):
                try:
                    outcomes = table[s][a]
                except (KeyError, IndexError) as err:
                    raise ValueError(f"P table has no entry for state {s}, action {a}") from err
                for prob, next_state, reward, terminated in outcomes:
                    if not 0 <= next_state < n_states:
                        raise ValueError(f"P[{s}][{a}] lists next state {next_state}, outside [0, {n_states})")
                    transitions[s, a, absorbing if terminated else next_state] += prob
                    rewards[s, a] += prob * reward
        terminal = np.zeros(n_states + 1, dtype=bool)
        terminal[absorbing] = True
        return cls(transitions, rewards, discount, terminal)


def _checked_model(transitions: Any, rewards: Any) -> tuple[np.ndarray, np.ndarray]:
    """Transitions (S, A, S) and rewards (S, A) as float arrays, checked for shape, finiteness and
    probabilities that sum to one."""
    transitions = np.array(transitions, dtype=float)
    rewards = np.array(rewards, dtype=float)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions must have shape (S, A, S), got {transitions.shape}")
    n_states, n_actions, _ = transitions.shape
    if n_states == 0 or n_actions == 0:
        raise ValueError(f"transitions must have S, A >= 1, got shape {transitions.shape}")
    if rewards.shape != (n_states, n_actions):
        raise ValueError(f"rewards must have shape {(n_states, n_actions)} to match transitions, got {rewards.shape}")
    if not np.all(np.isfinite(transitions)):
        s, a, t = np.argwhere(~np.isfinite(transitions))[0]
        raise ValueError(f"transitions[{s}, {a}, {t}] is not finite: {transitions[s, a, t]}")
    if np.any(transitions < 0):
        s, a, t = np.argwhere(transitions < 0)[0]
        raise ValueError(f"transitions[{s}, {a}, {t}] is a negative probability: {transitions[s, a, t]}")
    sums = transitions.sum(axis=2)
    bad = np.abs(sums - 1.0) > PROBABILITY_ATOL
    if np.any(bad):
        s, a = np.argwhere(bad)[0]
        raise ValueError(
            f"transitions[{s}, {a}] sums to {float(sums[s, a]):.12g}, not 1 (tolerance {PROBABILITY_ATOL})"
        )
    if not np.all(np.isfinite(rewards)):
        s, a = np.argwhere(~np.isfinite(rewards))[0]
        raise ValueError(f"rewards[{s}, {a}] is not finite: {rewards[s, a]}")
    return transitions, rewards


def _checked_terminal(terminal: Any, transitions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """The terminal mask (S,) as a bool array; each terminal state absorbing with zero reward."""
    terminal = np.array(terminal)
    n_states = transitions.shape[0]
    if terminal.dtype != bool or terminal.shape != (n_states,):
        raise ValueError(
            f"terminal must be a bool array of shape {(n_states,)}, "
            f"got dtype {terminal.dtype} and shape {terminal.shape}"
        )
    for t in np.flatnonzero(terminal):
        if np.any(np.abs(transitions[t, :, t] - 1.0) > PROBABILITY_ATOL):
            raise ValueError(f"terminal state {t} is not absorbing: P[{t}, :, {t}] = {transitions[t, :, t]}")
        if np.any(rewards[t] != 0.0):
            raise ValueError(f"terminal state {t} must have zero reward, got R[{t}] = {rewards[t]}")
    return terminal


def _discrete_size(space: spaces.Space[Any], what: str) -> int:
    """Return ``n`` of a ``Discrete`` space starting at 0, else raise ValueError."""
    if not isinstance(space, spaces.Discrete) or int(space.start) != 0:
        raise ValueError(f"{what} must be Discrete starting at 0, got {space}")
    return int(space.n)


def _policy_matrix(mdp: FiniteMDP, policy: np.ndarray, tol: float) -> np.ndarray:
    """Return a deterministic ``(S,)`` or stochastic ``(S, A)`` policy as an ``(S, A)`` matrix."""
    policy = np.asarray(policy)
    shape = (mdp.n_states, mdp.n_actions)
    if policy.shape == (mdp.n_states,):
        if not np.issubdtype(policy.dtype, np.integer):
            raise ValueError(f"a deterministic policy must hold integers, got {policy.dtype}")
        if np.any((policy < 0) | (policy >= mdp.n_actions)):
            raise ValueError(f"policy actions must be in [0, {mdp.n_actions}), got {policy}")
        matrix = np.zeros(shape)
        matrix[np.arange(mdp.n_states), policy] = 1.0
        return matrix
    if policy.shape == shape:
        matrix = policy.astype(float)
        if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
            raise ValueError("a stochastic policy must hold finite non-negative probabilities")
        sums = matrix.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > tol):
            s = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(f"policy[{s}] sums to {float(sums[s]):.12g}, not 1 (tolerance {tol})")
        return matrix
    raise ValueError(
        f"policy must have shape {(mdp.n_states,)} (actions) or {shape} (probabilities), got {policy.shape}"
    )


def policy_evaluation(mdp: FiniteMDP, policy: np.ndarray, tol: float = PROBABILITY_ATOL) -> np.ndarray:
    """Exact state values of a policy by solving the Bellman equation (Sutton & Barto, sec. 4.1).

    Solves ``(I - gamma P_pi) v = r_pi`` on the non-terminal states; terminal states have
    value 0.

    Args:
        mdp: The MDP.
        policy: Actions ``(S,)`` (ints) or action probabilities ``(S, A)``.
        tol: Tolerance for the rows of a stochastic policy summing to one.

    Returns:
        The values ``v_pi``, shape ``(S,)``.

    Raises:
        ValueError: If the policy is malformed, or (discount 1) does not reach a terminal
            state with probability one from every state, so its values are undefined.
    """
    pi = _policy_matrix(mdp, policy, tol)
    p_pi = np.einsum("sa,sat->st", pi, mdp.transitions)
    r_pi = np.einsum("sa,sa->s", pi, mdp.rewards)
    live = ~mdp.terminal_mask
    values = np.zeros(mdp.n_states)
    if not live.any():
        return values
    system = np.eye(int(live.sum())) - mdp.discount * p_pi[np.ix_(live, live)]
    # With gamma < 1 the system is non-singular; with gamma == 1 it is (near) singular
    # exactly when some states never reach a terminal state under the policy.
    if mdp.discount == 1.0 and np.linalg.cond(system) > 1e12:
        raise ValueError(
            "policy does not reach a terminal state with probability 1 from every state, "
            "so its undiscounted value is undefined"
        )
    values[live] = np.linalg.solve(system, r_pi[live])
    return values


def action_values(mdp: FiniteMDP, values: np.ndarray) -> np.ndarray:
    """One-step look-ahead ``Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s']``.

    Args:
        mdp: The MDP.
        values: State values ``(S,)``.

    Returns:
        The action values, shape ``(S, A)``.
    """
    return mdp.rewards + mdp.discount * (mdp.transitions @ np.asarray(values, dtype=float))


def policy_iteration(
    mdp: FiniteMDP, tol: float = 1e-9, max_iterations: int = 1_000
) -> tuple[np.ndarray, np.ndarray, int]:
    """Howard's policy iteration (Howard, 1960; Sutton & Barto, 2018, sec. 4.3).

    Starts from the policy that takes action 0 everywhere, evaluates it exactly and
    improves greedily. A state changes action only if the greedy action's value beats
    the current one by more than ``tol`` (ties go to the lowest action index), so the
    policy strictly improves at every change and the loop terminates.

    Args:
        mdp: The MDP. With discount 1 every visited policy must be proper (see
            `policy_evaluation`); prefer `value_iteration` there.
        tol: Minimum action-value improvement for changing a state's action.
        max_iterations: Maximum number of policy evaluations.

    Returns:
        ``(policy, values, iterations)``: the optimal actions ``(S,)``, their values
        ``(S,)`` and the number of policy evaluations done (the last confirms stability).

    Raises:
        RuntimeError: If the policy is still changing after ``max_iterations``.
    """
    policy = np.zeros(mdp.n_states, dtype=np.int64)
    states = np.arange(mdp.n_states)
    for iteration in range(1, max_iterations + 1):
        values = policy_evaluation(mdp, policy)
        q = action_values(mdp, values)
        greedy = np.argmax(q, axis=1)
        improves = q[states, greedy] > q[states, policy] + tol
        if not improves.any():
            return policy, values, iteration
        policy = np.where(improves, greedy, policy)
    raise RuntimeError(f"policy iteration did not converge in {max_iterations} iterations")


def value_iteration(
    mdp: FiniteMDP, tol: float = 1e-10, max_iterations: int = 100_000
) -> tuple[np.ndarray, np.ndarray, int]:
    """Value iteration (Bellman, 1957; Sutton & Barto, 2018, sec. 4.4).

    Iterates ``V <- max_a Q(V)`` from ``V = 0`` until the sup-norm change is below
    ``tol * (1 - gamma) / (2 * gamma)``, so that the greedy policy is ``tol``-optimal and
    the returned values are within ``tol / 2`` of optimal (Puterman, 1994, thm. 6.3.1).
    With discount 1 (stochastic shortest path) it stops when the change is below ``tol``.

    Args:
        mdp: The MDP.
        tol: Target accuracy (see above).
        max_iterations: Maximum number of Bellman backups.

    Returns:
        ``(policy, values, iterations)``: greedy actions ``(S,)`` (ties to the lowest
        index), the final values ``(S,)`` and the number of backups done.

    Raises:
        RuntimeError: If the stopping rule is not met within ``max_iterations``.
    """
    gamma = mdp.discount
    if gamma == 0.0:
        threshold = math.inf
    elif gamma == 1.0:
        threshold = tol
    else:
        threshold = tol * (1.0 - gamma) / (2.0 * gamma)
    values = np.zeros(mdp.n_states)
    change = math.inf
    for iteration in range(1, max_iterations + 1):
        new_values = action_values(mdp, values).max(axis=1)
        change = float(np.max(np.abs(new_values - values)))
        values = new_values
        if change < threshold:
            policy = np.argmax(action_values(mdp, values), axis=1)
            return policy, values, iteration
    raise RuntimeError(
        f"value iteration did not converge in {max_iterations} iterations "
        f"(last change {change:.3g}, threshold {threshold:.3g})"
    )


def _check_q_learning_settings(episodes: int, alpha: float, gamma: float, epsilon: tuple[float, ...]) -> None:
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not all(0.0 <= x <= 1.0 for x in epsilon):
        raise ValueError(f"epsilon (start, end, fraction) must each be in [0, 1], got {epsilon}")


def q_learning(
    env: gym.Env,
    episodes: int,
    alpha: float = 0.1,
    gamma: float = 0.99,
    epsilon: tuple[float, float, float] = (1.0, 0.05, 0.5),
    seed: int | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Tabular Q-learning with epsilon-greedy exploration (Watkins, 1989; Sutton & Barto, sec. 6.5).

    Update: ``Q[s, a] += alpha * (r + gamma * max_a' Q[s', a'] - Q[s, a])``, without the
    bootstrap term when the step is ``terminated`` and with it when it is only
    ``truncated`` (a time limit is not a terminal state). Epsilon decays linearly from
    ``start`` to ``end`` over the first ``fraction * episodes`` episodes, then stays at
    ``end``. Exploration and greedy tie-breaking use ``numpy.random.default_rng(seed)``,
    and the first ``env.reset`` gets ``seed``. Episodes end only when the environment
    terminates or truncates, so bound their length (e.g. a ``TimeLimit``).

    Args:
        env: Environment with Discrete observation and action spaces starting at 0.
        episodes: Number of episodes, >= 1.
        alpha: Step size in ``(0, 1]``.
        gamma: Discount factor in ``[0, 1]``.
        epsilon: ``(start, end, fraction)``, each in ``[0, 1]``.
        seed: Seed for the exploration generator and the first reset.

    Returns:
        ``(Q, episode_returns)``: action values ``(S, A)`` and the undiscounted return of
        each episode.

    Raises:
        ValueError: If the spaces or a hyper-parameter are invalid.
    """
    n_states = _discrete_size(env.observation_space, "observation space")
    n_actions = _discrete_size(env.action_space, "action space")
    _check_q_learning_settings(episodes, alpha, gamma, epsilon)
    schedule = LinearSchedule(*epsilon)

    rng = np.random.default_rng(seed)
    q = np.zeros((n_states, n_actions))
    returns: list[float] = []
    for episode in range(episodes):
        eps = schedule(episode / episodes)
        state, _ = env.reset(seed=seed if episode == 0 else None)
        total = 0.0
        while True:
            if rng.random() < eps:
                action = int(rng.integers(n_actions))
            else:
                best = np.flatnonzero(q[state] == q[state].max())
                action = int(best[0] if best.size == 1 else rng.choice(best))
            next_state, reward, terminated, truncated, _ = env.step(action)
            target = reward if terminated else reward + gamma * q[next_state].max()
            q[state, action] += alpha * (target - q[state, action])
            total += float(reward)
            if terminated or truncated:
                break
            state = next_state
        returns.append(total)
    return q, returns
