"""The per-action head (ActionScorer): a known answer that needs each action's own features and
its neighbours', the value head on its features, and the spaces it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces

from mri_rl.agents.networks import PolicyNetwork, action_aligned_keys, masked_logits

A = 16
SPACE = spaces.Dict(
    {
        "acquired": spaces.MultiBinary(A),
        "energy": spaces.Box(-np.inf, np.inf, (A,), np.float32),
        "image": spaces.Box(-1.0, 1.0, (1, 8, 8), np.float32),
    }
)


def states(n: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Random states and the best action of each: the free action with the most energy summed
    with its neighbours' (one on each side, none past the edges). The energy has mean 0 and a
    scale that changes per state: only its standardised values carry over."""
    acquired = (torch.rand(n, A, generator=generator) < 0.4).to(torch.int8)
    energy = torch.randn(n, A, generator=generator)
    energy = (energy - energy.mean(dim=1, keepdim=True)) * torch.rand(n, 1, generator=generator) * 10
    image = torch.rand(n, 1, 8, 8, generator=generator)
    local = F.conv1d(energy.unsqueeze(1), torch.ones(1, 1, 3), padding=1).squeeze(1)
    best = local.masked_fill(acquired.bool(), float("-inf")).argmax(dim=1)
    return {"acquired": acquired, "energy": energy, "image": image}, best


def test_the_per_action_head_learns_the_free_action_with_the_most_energy_around_it():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    network = PolicyNetwork(SPACE, A, hidden=(16, 16), per_action=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    for _ in range(300):
        obs, best = states(64, generator)
        loss = F.cross_entropy(masked_logits(network(obs), ~obs["acquired"].bool()), best)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    obs, best = states(512, generator)
    with torch.no_grad():
        chosen = masked_logits(network(obs), ~obs["acquired"].bool()).argmax(dim=1)
    assert (chosen == best).float().mean() > 0.9


def test_the_value_head_reads_the_per_action_features_and_the_other_keys():
    network = PolicyNetwork(SPACE, A, hidden=(8,), value_head=True, per_action=True)
    obs, _ = states(3, torch.Generator().manual_seed(1))
    assert network(obs).shape == (3, A)
    assert network.state_value(obs).shape == (3,)
    assert action_aligned_keys(SPACE, A) == ["acquired", "energy"]


def test_a_space_without_per_action_keys_is_refused():
    with pytest.raises(TypeError, match=r"needs observation keys of shape \(4,\)"):
        PolicyNetwork(spaces.Box(0.0, 1.0, (4,), np.float32), 4, per_action=True)
    with pytest.raises(TypeError, match=r"needs observation keys of shape \(5,\)"):
        PolicyNetwork(SPACE, 5, per_action=True)
