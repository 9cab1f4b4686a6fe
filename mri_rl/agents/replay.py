"""Replay memory that stores every observation once.

Each of the N environments of a vector env writes one slot per step into its own
column: the observation seen before acting, its action mask, the action, the reward and
whether that step terminated or truncated. The next observation of the transition in
slot t is the observation in slot t + 1 of the same column, so observations are not
stored twice (as SB3's ``optimize_memory_usage``). With Gymnasium's next-step autoreset
the step after an episode's end only resets (its action is ignored); such slots are
flagged invalid and never sampled, while their observation (the terminal one) still
serves as the previous slot's next observation. Image-like observations are kept in
float16, which is exact to 1e-3 relative for the MRI reconstructions (of order one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from gymnasium import spaces

from mri_rl.agents.networks import is_image_space


@dataclass
class ReplaySample:
    """A batch of (n-step) transitions as tensors.

    Attributes:
        observations: (B, ...) per key, or a tensor.
        actions: int64 (B,).
        returns: float32 (B,), discounted sum of up to n rewards.
        next_observations: observation to bootstrap from.
        next_action_masks: bool (B, A), legal actions in the next observation.
        bootstrap_discounts: float32 (B,), gamma^k, or 0 where the episode terminated.
    """

    observations: torch.Tensor | dict[str, torch.Tensor]
    actions: torch.Tensor
    returns: torch.Tensor
    next_observations: torch.Tensor | dict[str, torch.Tensor]
    next_action_masks: torch.Tensor
    bootstrap_discounts: torch.Tensor


def storage_dtype(space: spaces.Space, compact_images: bool) -> np.dtype:
    """float16 for image-like Box spaces when ``compact_images``, else the space's dtype."""
    if compact_images and is_image_space(space) and np.issubdtype(space.dtype, np.floating):
        return np.dtype(np.float16)
    return np.dtype(space.dtype)


class ReplayBuffer:
    """Circular replay memory of ``capacity`` transitions over ``num_envs`` streams.

    Args:
        capacity: total transitions kept (slots per stream = capacity // num_envs).
        num_envs: N parallel environments.
        observation_space: single-environment observation space (Box or Dict).
        num_actions: size of the Discrete action space.
        compact_images: store image-like observations in float16.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        observation_space: spaces.Space,
        num_actions: int,
        compact_images: bool = True,
    ) -> None:
        self.slots = max(capacity // num_envs, 2)
        self.num_envs = num_envs
        self.is_dict = isinstance(observation_space, spaces.Dict)
        subspaces = (
            dict(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else {"obs": observation_space}
        )
        shape = (self.slots, num_envs)
        self.observations = {  # Box/MultiBinary subspaces: their shape is a tuple
            key: np.zeros(shape + cast(tuple[int, ...], space.shape), dtype=storage_dtype(space, compact_images))
            for key, space in subspaces.items()
        }
        self.action_masks = np.zeros(shape + (num_actions,), dtype=bool)
        self.actions = np.zeros(shape, dtype=np.int32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.valid = np.zeros(shape, dtype=bool)
        self.position = 0
        self.full = False
        self.num_added = 0  # valid transitions written since the memory was made, overwritten ones included
        self.has_illegal_actions = False  # lets learners skip masking when every action was always legal

    @property
    def bytes_per_transition(self) -> int:
        """Bytes of memory one stored transition takes."""
        arrays = [
            *self.observations.values(),
            self.action_masks,
            self.actions,
            self.rewards,
            self.terminated,
            self.truncated,
            self.valid,
        ]
        return sum(a.nbytes for a in arrays) // (self.slots * self.num_envs)

    def __len__(self) -> int:
        return (self.slots if self.full else self.position) * self.num_envs

    def add(
        self,
        observations: np.ndarray | torch.Tensor | dict[str, np.ndarray] | dict[str, torch.Tensor],
        action_masks: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray,
    ) -> None:
        """Write one step of all N streams (arrays with leading dimension N); observations may be
        torch tensors on any device (copied to the host memory of the buffer)."""
        slot = self.position
        for key, store in self.observations.items():
            value = cast(dict, observations)[key] if self.is_dict else observations
            store[slot] = value.cpu().numpy() if isinstance(value, torch.Tensor) else value
        self.action_masks[slot] = action_masks
        self.has_illegal_actions = self.has_illegal_actions or not action_masks.all()
        self.actions[slot] = actions
        self.rewards[slot] = rewards
        self.terminated[slot] = terminated
        self.truncated[slot] = truncated
        self.valid[slot] = valid
        self.num_added += int(np.count_nonzero(valid))
        self.position = (slot + 1) % self.slots
        self.full = self.full or self.position == 0

    def end_streams(
        self,
        observations: np.ndarray | torch.Tensor | dict[str, np.ndarray] | dict[str, torch.Tensor],
        action_masks: np.ndarray,
    ) -> None:
        """End every stream where its steps stop (a training run ends): ``observations`` (N, ...), those
        after the last steps written, and their legal actions (N, A) go into an invalid slot, and the last
        steps bootstrap from them as after a truncation. Steps written later (a new run, from a reset)
        then start new streams instead of following on from the last ones; nothing is done to an empty memory."""
        if self.position == 0 and not self.full:
            return
        last = (self.position - 1) % self.slots
        self.truncated[last] |= self.valid[last]
        zeros = np.zeros(self.num_envs, dtype=np.int64)
        none = np.zeros(self.num_envs, dtype=bool)
        self.add(observations, action_masks, zeros, zeros, none, none, none)

    def can_sample(self, n_step: int) -> bool:
        """Whether :meth:`sample` has a valid transition to draw for ``n_step`` returns: one in the
        slots whose n following slots are written (not the n newest)."""
        oldest, count = self._sampleable_slots(n_step)
        if count <= 0:
            return False
        end = oldest + count  # the window may wrap around the end of the memory
        return bool(self.valid[oldest:end].any() or self.valid[: max(end - self.slots, 0)].any())

    def _sampleable_slots(self, n_step: int) -> tuple[int, int]:
        """(oldest slot, count) of the slots whose n following slots are written, oldest first."""
        written = self.slots if self.full else self.position
        return (self.position if self.full else 0), written - n_step

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        n_step: int = 1,
        gamma: float = 0.99,
        device: torch.device | str = "cpu",
    ) -> ReplaySample:
        """Uniform sample of valid transitions with n-step returns (Sutton, 1988).

        Returns are cut at the first terminated or truncated step; after truncation the
        value of the final observation is bootstrapped, after termination it is not.

        Raises:
            ValueError: no valid transition to draw (:meth:`can_sample` is False).
        """
        if not self.can_sample(n_step):  # else the draws below would never end
            raise ValueError(
                f"no valid transition stored for {n_step}-step returns: each of the oldest slots that have "
                f"{n_step} following ones is an autoreset slot, or there are none (check can_sample first)"
            )
        oldest, count = self._sampleable_slots(n_step)
        chosen_t, chosen_e = [], []
        needed = batch_size
        while needed > 0:  # draws of slots and envs, the autoreset ones left out
            t = (oldest + rng.integers(count, size=2 * needed)) % self.slots
            e = rng.integers(self.num_envs, size=2 * needed)
            keep = self.valid[t, e]
            chosen_t.append(t[keep][:needed])
            chosen_e.append(e[keep][:needed])
            needed -= len(chosen_t[-1])
        t, e = np.concatenate(chosen_t), np.concatenate(chosen_e)

        returns = np.zeros(batch_size, dtype=np.float32)
        discount = np.ones(batch_size, dtype=np.float32)
        alive = np.ones(batch_size, dtype=bool)
        terminal = np.zeros(batch_size, dtype=bool)
        bootstrap_slot = (t + 1) % self.slots
        for k in range(n_step):
            slot = (t + k) % self.slots
            returns += np.where(alive, discount * self.rewards[slot, e], 0.0)
            bootstrap_slot = np.where(alive, (slot + 1) % self.slots, bootstrap_slot)
            discount = np.where(alive, discount * gamma, discount)
            terminal |= alive & self.terminated[slot, e]
            alive &= ~(self.terminated[slot, e] | self.truncated[slot, e])
        discount[terminal] = 0.0

        def observation(slots: np.ndarray) -> torch.Tensor | dict[str, torch.Tensor]:
            batch = {key: torch.as_tensor(store[slots, e], device=device) for key, store in self.observations.items()}
            return batch if self.is_dict else batch["obs"]

        return ReplaySample(
            observations=observation(t),
            actions=torch.as_tensor(self.actions[t, e], dtype=torch.int64, device=device),
            returns=torch.as_tensor(returns, device=device),
            next_observations=observation(bootstrap_slot),
            next_action_masks=torch.as_tensor(self.action_masks[bootstrap_slot, e], device=device),
            bootstrap_discounts=torch.as_tensor(discount, device=device),
        )
