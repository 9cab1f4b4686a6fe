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
    """Strided convolutions and average pooling, (B, C, H, W) -> (B, features).

    Args:
        channels, height, width: image shape C, H, W.
        features: output size.
        conv_width: channels of the first convolution (doubled at each of ``depth`` layers).
        depth: strided convolutions.
        keep_columns: average the last feature maps over their rows only and keep their
            ceil(W / 2**depth) columns (where along the image width a feature lies: the axis along
            which column undersampling aliases), instead of over the whole map.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        features: int = 64,
        conv_width: int = 16,
        depth: int = 4,
        keep_columns: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        fan_in = channels
        for i in range(depth):
            fan_out = conv_width * 2**i
            layers += [nn.Conv2d(fan_in, fan_out, 3, stride=2, padding=1), nn.ReLU()]
            fan_in = fan_out
            width = (width - 1) // 2 + 1  # a stride-2 convolution with padding 1
        self.convolutions = nn.Sequential(*layers)
        self.pooled_dims = (-2,) if keep_columns else (-2, -1)
        self.project = nn.Sequential(nn.Linear(fan_in * (width if keep_columns else 1), features), nn.ReLU())
        self.output_dim = features

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.project(self.convolutions(image.float()).mean(dim=self.pooled_dims).flatten(1))


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
        image_columns: the image encoders keep the column axis (:class:`ImageEncoder`'s ``keep_columns``).
    """

    def __init__(self, space: spaces.Space, image_features: int = 64, image_columns: bool = False) -> None:
        super().__init__()
        self.is_dict = isinstance(space, spaces.Dict)
        subspaces = dict(space.spaces) if isinstance(space, spaces.Dict) else {"obs": space}
        encoders: dict[str, ImageEncoder | FlattenEncoder] = {}
        for key, subspace in subspaces.items():
            if not isinstance(subspace, (spaces.Box, spaces.MultiBinary)):
                raise TypeError(f"observation key {key!r}: unsupported space {subspace}; expected Box or MultiBinary")
            if is_image_space(subspace):
                channels, height, width = subspace.shape
                encoders[key] = ImageEncoder(
                    channels, height, width, features=image_features, keep_columns=image_columns
                )
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


def action_aligned_keys(space: spaces.Space, num_actions: int) -> list[str]:
    """The keys of a ``Dict`` space that hold one value per action: a ``Box`` or ``MultiBinary``
    of shape (A,), e.g. which k-space columns are acquired."""
    if not isinstance(space, spaces.Dict):
        return []
    return [
        key
        for key, subspace in space.spaces.items()
        if isinstance(subspace, (spaces.Box, spaces.MultiBinary)) and subspace.shape == (num_actions,)
    ]


class ActionScorer(nn.Module):
    """Logits (B, A) that score each action from what is known of it, its neighbours and the
    whole state, for actions that lie on a line, such as k-space columns.

    The observation keys with one value per action (:func:`action_aligned_keys`) are channels
    along the action axis (real-valued ones standardised over the actions of each state), with
    the action's position in [-1, 1]. The other keys are encoded (:class:`ObservationEncoder`) into
    features given to every action. Dilated 1-D convolutions over the action axis (dilation 1, 2,
    4, ...) let each score depend on the neighbouring actions, and a learned bias per action is a
    fixed preference, such as the order LBCS learns. One shared function scores every action,
    where a dense layer to A outputs learns each action's score apart. (Measured in DAgger on the
    quick-start anatomy, it fits the teacher less well than the dense head; see the README.)

    Args:
        observation_space: a ``Dict`` with at least one key of shape (A,).
        num_actions: A.
        hidden: channels of each convolution (kernel 5).
        image_columns: the other keys' image encoders keep the column axis (:class:`ObservationEncoder`).
    """

    def __init__(
        self, observation_space: spaces.Space, num_actions: int, hidden: Sequence[int], image_columns: bool = False
    ) -> None:
        super().__init__()
        aligned = action_aligned_keys(observation_space, num_actions)
        if not aligned or not hidden:
            raise TypeError(
                f"a per-action head needs observation keys of shape ({num_actions},) and hidden layers; "
                f"got {observation_space} and hidden {tuple(hidden)}"
            )
        assert isinstance(observation_space, spaces.Dict)  # action_aligned_keys found keys
        self.aligned = aligned
        self.standardised = [isinstance(observation_space.spaces[key], spaces.Box) for key in aligned]
        rest = {key: space for key, space in observation_space.spaces.items() if key not in aligned}
        self.encoder = ObservationEncoder(spaces.Dict(rest), image_columns=image_columns) if rest else None
        self.context = nn.Linear(self.encoder.output_dim, hidden[0]) if self.encoder else None
        self.register_buffer("position", torch.linspace(-1.0, 1.0, num_actions))
        self.bias = nn.Parameter(torch.zeros(num_actions))
        widths = [len(aligned) + 1, *hidden]
        self.convolutions = nn.ModuleList(
            nn.Conv1d(fan_in, fan_out, 5, padding=2 * 2**i, dilation=2**i)
            for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.score = nn.Conv1d(hidden[-1], 1, 1)
        self.output_dim = hidden[-1] + (self.encoder.output_dim if self.encoder else 0)

    def features(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(per-action features (B, hidden[-1], A), the other keys' encoding (B, F) or None)."""
        features = cast(dict[str, torch.Tensor], obs)
        channels = []
        for key, standardise in zip(self.aligned, self.standardised):
            values = features[key].float()
            if standardise:
                values = (values - values.mean(dim=1, keepdim=True)) / (values.std(dim=1, keepdim=True) + 1e-6)
            channels.append(values)
        position = cast(torch.Tensor, self.position)
        x = torch.stack([*channels, position.expand_as(channels[0])], dim=1)
        context = self.encoder(obs) if self.encoder is not None else None
        for i, convolution in enumerate(self.convolutions):
            x = convolution(x)
            if i == 0 and context is not None and self.context is not None:
                x = x + self.context(context).unsqueeze(-1)
            x = torch.relu(x)
        return x, context

    def forward(self, obs: Observation) -> torch.Tensor:
        return self.score(self.features(obs)[0]).squeeze(1) + self.bias

    def pooled(self, obs: Observation) -> torch.Tensor:
        """(B, output_dim): the per-action features averaged over actions, with the other keys' encoding."""
        x, context = self.features(obs)
        return x.mean(dim=-1) if context is None else torch.cat([x.mean(dim=-1), context], dim=1)


class PolicyNetwork(nn.Module):
    """Action logits (B, A) and, optionally, a state value (B,) from a shared encoder.

    With ``per_action``, the logits come from an :class:`ActionScorer` and the value from its
    pooled features; otherwise from dense layers on an :class:`ObservationEncoder`. Either way the
    image encoders keep the column axis with ``image_columns``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        num_actions: int,
        hidden: Sequence[int] = (64, 64),
        value_head: bool = False,
        per_action: bool = False,
        image_columns: bool = False,
    ) -> None:
        super().__init__()
        self.encoder: ObservationEncoder | ActionScorer
        self.policy: nn.Sequential | None = None  # dense layers on the encoder's features
        if per_action:
            self.encoder = ActionScorer(observation_space, num_actions, hidden, image_columns)
        else:
            self.encoder = ObservationEncoder(observation_space, image_columns=image_columns)
            self.policy = mlp([self.encoder.output_dim, *hidden, num_actions], activation=nn.Tanh)
        self.value = mlp([self.encoder.output_dim, *hidden, 1], activation=nn.Tanh) if value_head else None

    def forward(self, obs: Observation) -> torch.Tensor:
        if self.policy is None:
            return self.encoder(obs)
        return self.policy(self.encoder(obs))

    def state_value(self, obs: Observation) -> torch.Tensor:
        if self.value is None:
            raise RuntimeError("this policy network has no value head")
        encoder = self.encoder
        features = encoder.pooled(obs) if isinstance(encoder, ActionScorer) else encoder(obs)
        return self.value(features).squeeze(-1)


def masked_logits(logits: torch.Tensor, action_mask: torch.Tensor | None) -> torch.Tensor:
    """Set the logits (or Q-values) of illegal actions to -inf; ``action_mask`` bool (B, A)."""
    if action_mask is None:
        return logits
    return logits.masked_fill(~action_mask, float("-inf"))
