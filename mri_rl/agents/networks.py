"""Networks that map Gymnasium observations to features, Q-values, logits or values.

The agents know spaces, not MRI: a flat ``Box`` gets an MLP; a ``Dict`` gets one encoder
per key — a small CNN for image-like ``Box`` keys (C, H, W) such as a
reconstruction, flattening for vector keys such as an acquired-column mask — and the
features are concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

Observation = torch.Tensor | dict[str, torch.Tensor]


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, last_activation: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with activations between them."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def is_image_space(space: spaces.Space) -> bool:
    """A ``Box`` of shape (C, H, W) with H, W >= 8."""
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and min(space.shape[1:]) >= 8


class ImageEncoder(nn.Module):
    """Strided convolutions and global average pooling, (B, C, H, W) -> (B, features).

    Args:
        channels, height, width: image shape C, H, W.
        features: output size.
        conv_width: channels of the first convolution (doubled at each of ``depth`` layers).
        depth: strided convolutions.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        features: int = 64,
        conv_width: int = 16,
        depth: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        fan_in = channels
        for i in range(depth):
            fan_out = conv_width * 2**i
            layers += [nn.Conv2d(fan_in, fan_out, 3, stride=2, padding=1), nn.ReLU()]
            fan_in = fan_out
        self.convolutions = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(fan_in, features), nn.ReLU())
        self.output_dim = features

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.project(self.convolutions(image.float()).mean(dim=(-2, -1)))


class FlattenEncoder(nn.Module):
    """Flatten a vector-like observation: (B, *shape) -> (B, prod(shape))."""

    def __init__(self, space: spaces.Box | spaces.MultiBinary) -> None:
        super().__init__()
        self.output_dim = int(np.prod(space.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().flatten(1)


class ObservationEncoder(nn.Module):
    """Features of any supported observation space, (B, output_dim).

    Args:
        space: ``Box`` (flattened), an image ``Box`` (CNN) or a ``Dict`` of those and
            ``MultiBinary``/``Box`` vectors.
        image_features: output size of each image encoder.
    """

    def __init__(self, space: spaces.Space, image_features: int = 64) -> None:
        super().__init__()
        self.is_dict = isinstance(space, spaces.Dict)
        subspaces = dict(space.spaces) if isinstance(space, spaces.Dict) else {"obs": space}
        encoders: dict[str, ImageEncoder | FlattenEncoder] = {}
        for key, subspace in subspaces.items():
            if not isinstance(subspace, (spaces.Box, spaces.MultiBinary)):
                raise TypeError(f"observation key {key!r}: unsupported space {subspace}; expected Box or MultiBinary")
            if is_image_space(subspace):
                channels, height, width = subspace.shape
                encoders[key] = ImageEncoder(channels, height, width, features=image_features)
            else:
                encoders[key] = FlattenEncoder(subspace)
        self.encoders = nn.ModuleDict(encoders)
        self.output_dim = sum(e.output_dim for e in encoders.values())

    def forward(self, obs: Observation) -> torch.Tensor:
        if not self.is_dict:
            return self.encoders["obs"](obs)
        features = cast(dict[str, torch.Tensor], obs)  # a Dict space's observation
        return torch.cat([encoder(features[key]) for key, encoder in self.encoders.items()], dim=1)


class QNetwork(nn.Module):
    """Q-values (B, A) from an observation, with an optional dueling head; with no ``hidden``
    layers the heads are linear in the encoder's features.

    Dueling: Q = V + A - mean(A) (Wang et al., "Dueling Network Architectures for Deep
    Reinforcement Learning", ICML 2016).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        num_actions: int,
        hidden: Sequence[int] = (64, 64),
        dueling: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(observation_space)
        self.body = mlp([self.encoder.output_dim, *hidden], last_activation=True)  # no hidden: the identity
        width = hidden[-1] if hidden else self.encoder.output_dim
        self.dueling = dueling
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: Observation) -> torch.Tensor:
        features = self.body(self.encoder(obs))
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


class PolicyNetwork(nn.Module):
    """Action logits (B, A) and, optionally, a state value (B,) from a shared encoder."""

    def __init__(
        self,
        observation_space: spaces.Space,
        num_actions: int,
        hidden: Sequence[int] = (64, 64),
        value_head: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(observation_space)
        self.policy = mlp([self.encoder.output_dim, *hidden, num_actions], activation=nn.Tanh)
        self.value = mlp([self.encoder.output_dim, *hidden, 1], activation=nn.Tanh) if value_head else None

    def forward(self, obs: Observation) -> torch.Tensor:
        return self.policy(self.encoder(obs))

    def state_value(self, obs: Observation) -> torch.Tensor:
        if self.value is None:
            raise RuntimeError("this policy network has no value head")
        return self.value(self.encoder(obs)).squeeze(-1)


def masked_logits(logits: torch.Tensor, action_mask: torch.Tensor | None) -> torch.Tensor:
    """Set the logits (or Q-values) of illegal actions to -inf; ``action_mask`` bool (B, A)."""
    if action_mask is None:
        return logits
    return logits.masked_fill(~action_mask, float("-inf"))
