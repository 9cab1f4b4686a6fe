"""DAgger: a policy that imitates a greedy look-ahead teacher on the states it visits itself
(Ross, Gordon & Bagnell, "A reduction of imitation learning and structured prediction to no-regret
online learning", AISTATS 2011).

The teacher is greedy with the env's one-step look-ahead (``look_ahead_gains``): at each visited
state it scores every legal action by its gains on ``teacher_metrics``, each standardised over the
legal actions and summed (for SSIM and PSNR, the ``oracle_ssim_psnr`` baseline's score). The
policy network learns by cross-entropy towards ``softmax(score / temperature)`` over the legal
actions: soft targets keep the teacher's ranking, not only its choice (distillation, Hinton, Vinyals
& Dean 2015). Pineda et al. (MICCAI 2020) gave their DDQN an evaluator of each column's
look-ahead score for the same reason: it is a far less noisy signal than one-step rewards; with
``imitation_loss="score_regression"`` the policy's logits are such an evaluator, regressed on the
scores (divided by the temperature), so its first choice estimates ``argmax E[score | observation]``
where cross-entropy's estimates the teacher's likeliest first choice. With
``weigh_states_by``, each state's loss counts in proportion to what is at stake there, the spread of
one metric's gains over the scored actions, so that a costly error counts more than a cheap one
(cost-sensitive imitation, as in AggreVaTe: Ross & Bagnell, "Reinforcement and imitation learning via
interactive no-regret learning", 2014).

Each row of the vector env follows the teacher's choice with probability beta and the policy's
own greedy choice otherwise; beta falls linearly from ``beta_start`` to 0 over the first
``beta_fraction`` of training, so the policy comes to learn on its own state distribution. Every
labelled state is kept (dataset aggregation) up to ``buffer_size``, then the oldest are dropped;
after each vector step, ``gradient_steps`` minibatches are drawn from the whole aggregate. The
aggregate is saved with resumable checkpoints (``checkpoint.pt`` of a run, not ``model.pt``): a
resumed run keeps the labels it paid for.

Each step costs one reconstruction per legal action per row (the teacher), so this trains on
fewer, far better labelled steps than RL does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from mri_rl.agents.base import AgentSettings, Callback
from mri_rl.agents.look_ahead import balanced_action_scores, check_metric_weights, look_ahead_gains_of
from mri_rl.agents.networks import is_image_space, masked_logits
from mri_rl.agents.policy_agent import PolicyNetworkAgent
from mri_rl.agents.replay import storage_dtype
from mri_rl.checkpointing import entry_error, entry_errors
from mri_rl.schedules import LinearSchedule

#: What the policy network is fitted with (:attr:`DAggerSettings.imitation_loss`).
IMITATION_LOSSES = ("cross_entropy", "score_regression")


@dataclass(frozen=True)
class DAggerSettings(AgentSettings):
    """DAgger's settings.

    Attributes:
        teacher_metrics: metrics whose look-ahead gains the teacher sums (standardised), e.g.
            ``["ssim", "psnr"]``; names the env's ``look_ahead_gains`` knows.
        teacher_weights: the weight of each teacher metric's standardised gains in the sum, one
            per ``teacher_metrics`` (empty: 1 each), e.g. ``[2, 1]`` with ``["ssim", "psnr"]``
            counts SSIM twice: where the greedy teacher trades one metric for the other.
        temperature: of the softmax over the teacher's standardised scores (smaller: closer
            to its argmax); with ``score_regression``, the logits' targets are the scores divided by it.
        imitation_loss: "cross_entropy" towards the teacher's softmax, or "score_regression": the
            squared error between the logits and ``score / temperature``, both centred over the
            scored actions (:func:`score_regression_losses`). Where the observation does not
            determine the teacher's scores, regression learns their expectation (and its argmax
            the best choice on average), cross-entropy the chance of each action being best.
        weigh_states_by: one of ``teacher_metrics``, e.g. ``"ssim"``: each state's cross-entropy is
            weighted by the standard deviation of that metric's look-ahead gains over the actions
            the teacher scored there (the scale its standardisation divided away), relative to the
            minibatch's sum, so states where the choice is worth more of that metric count more.
            Empty: every state counts the same.
        teacher_candidates: K, the legal actions the teacher scores per state (0: all of them):
            the policy's K // 2 most likely and K - K // 2 others drawn at random. The labels
            cost K reconstructions instead of one per legal action; the loss compares the
            policy with the teacher on those K only.
        beta_start: probability that a row follows the teacher at the start of training.
        beta_fraction: share of training over which beta falls linearly to 0.
        learning_rate: Adam step size.
        weight_decay: decoupled weight decay of the policy network (AdamW, Loshchilov & Hutter,
            ICLR 2019): each gradient step shrinks the weights by ``learning_rate * weight_decay`` of
            themselves (0: off), against a policy that fits its training slices' labels but not new slices'.
        buffer_size: labelled states kept (the aggregate).
        batch_size: states per gradient step.
        gradient_steps: gradient steps after each vector step.
        learning_starts: labelled states before the first gradient step.
        max_grad_norm: gradient clipping threshold.
        net_arch: hidden layer sizes after the observation encoder (with ``per_action_head``: the
            channels of its convolutions).
        per_action_head: score each action with one shared network over the action axis
            (:class:`~mri_rl.agents.networks.ActionScorer`; needs observation keys of shape (A,)),
            instead of dense layers from a pooled encoding.
        image_columns: the image encoder keeps the column axis of its last feature maps
            (:class:`~mri_rl.agents.networks.ImageEncoder`'s ``keep_columns``) instead of pooling
            them over the whole image.
        compact_images: keep image observations in float16 in the aggregate.
        flip_rows: turn the image observations (C, H, W) of a random half of each minibatch upside
            down (rows reversed), labels unchanged: an augmentation for teachers whose scores do not
            depend on the order of the image rows, as column acquisition in MRI nearly so (reversing
            the rows of the image leaves every k-space column where it is; only a reconstructor
            that is not exactly flip-equivariant tells the two apart). Every image key is turned,
            the env's ``reconstructor_features`` too, which is only near what a U-Net computes for
            the turned image (its kernels are not symmetric).
        shift_images: roll the image observations (C, H, W) of each minibatch state circularly by a
            random number of pixels in [-k, k] along its rows and another along its columns, labels
            unchanged (0: off). Moving the object in the image multiplies its k-space by a phase
            ramp, which leaves every column's magnitude where it is, so a teacher of a magnitude
            reconstructor nearly does not see it; only the reconstructor's response at the image's
            edges and to the wrapped part tells the two apart.
        flip_columns: mirror k-space about its centre in a random half of each minibatch: column
            c becomes W - 1 - c in the observations of one value per column (shape (A,), e.g.
            ``acquired``, ``column_energy``) and in the teacher's scores, and the images (C, H, w)
            are mirrored as the magnitude images of the mirrored k-space are
            (:func:`mirror_k_space_columns`). An augmentation for teachers whose scores a mirrored
            slice mirrors, as column acquisition nearly does: a magnitude reconstructor sees the
            mirrored image, and only one that is not exactly mirror-equivariant, or a set of
            legal columns that is not symmetric (padding), tells the two apart. The column
            spectrum of a mirrored image is its own, so it is kept.
    """

    teacher_metrics: tuple[str, ...] = ("ssim", "psnr")
    teacher_weights: tuple[float, ...] = field(default=(), metadata={"min": 0})
    temperature: float = field(default=0.5, metadata={"above": 0})
    imitation_loss: str = "cross_entropy"
    weigh_states_by: str = ""
    teacher_candidates: int = field(default=0, metadata={"min": 0})
    beta_start: float = field(default=1.0, metadata={"min": 0, "max": 1})
    beta_fraction: float = field(default=0.5, metadata={"min": 0, "max": 1})
    learning_rate: float = field(default=1e-3, metadata={"above": 0})
    weight_decay: float = field(default=0.0, metadata={"min": 0})
    buffer_size: int = field(default=20_000, metadata={"min": 1})
    batch_size: int = field(default=64, metadata={"min": 1})
    gradient_steps: int = field(default=1, metadata={"min": 1})
    learning_starts: int = field(default=256, metadata={"min": 0})
    max_grad_norm: float = field(default=1.0, metadata={"above": 0})
    net_arch: tuple[int, ...] = field(default=(128, 128), metadata={"min": 1})
    per_action_head: bool = False
    image_columns: bool = False
    compact_images: bool = True
    flip_rows: bool = False
    flip_columns: bool = False
    shift_images: int = field(default=0, metadata={"min": 0})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.teacher_metrics:
            raise ValueError("DAggerSettings: teacher_metrics must name at least one metric")
        if self.teacher_weights:  # empty: 1 each
            check_metric_weights("DAggerSettings: teacher_weights", self.teacher_weights, self.teacher_metrics)
        if self.weigh_states_by and self.weigh_states_by not in self.teacher_metrics:
            raise ValueError(
                f"DAggerSettings: weigh_states_by must be empty or one of teacher_metrics "
                f"{list(self.teacher_metrics)}, got {self.weigh_states_by!r}"
            )
        if self.imitation_loss not in IMITATION_LOSSES:
            raise ValueError(
                f"DAggerSettings: imitation_loss must be one of {list(IMITATION_LOSSES)}, got {self.imitation_loss!r}"
            )
        if self.teacher_candidates == 1:
            raise ValueError("DAggerSettings: teacher_candidates must be 0 (every legal action) or at least 2, got 1")


class LabelledStates:
    """The aggregate: observations, the teacher's scores and each state's stake (its weight in the
    loss, see ``weigh_states_by``), in a circular store.

    Args:
        capacity: states kept.
        observation_space: one state's Box or Dict of Boxes.
        num_actions: A.
        compact_images: float16 for image-like observations.
    """

    def __init__(self, capacity: int, observation_space: spaces.Space, num_actions: int, compact_images: bool) -> None:
        subspaces = observation_space.spaces if isinstance(observation_space, spaces.Dict) else {"": observation_space}
        self.observations = {
            key: np.zeros((capacity, *(space.shape or ())), dtype=storage_dtype(space, compact_images))
            for key, space in subspaces.items()
        }
        self.scores = np.zeros((capacity, num_actions), dtype=np.float32)  # -inf: illegal
        self.stakes = np.ones(capacity, dtype=np.float32)
        self.image_keys = tuple(key for key, space in subspaces.items() if is_image_space(space))
        self.column_keys = tuple(key for key, space in subspaces.items() if space.shape == (num_actions,))
        self.capacity = capacity
        self.size = 0
        self.next = 0

    def add(self, observations: Any, scores: np.ndarray, stakes: np.ndarray, rows: np.ndarray) -> None:
        """Keep ``rows`` of a batch: observations (N, ...) per key, scores float (N, A) and stakes
        float (N,)."""
        batch = observations if isinstance(observations, dict) else {"": observations}
        for row in rows:
            for key, store in self.observations.items():
                value = batch[key][row]
                store[self.next] = value.cpu().numpy() if isinstance(value, torch.Tensor) else value
            self.scores[self.next] = scores[row]
            self.stakes[self.next] = stakes[row]
            self.next = (self.next + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def state(self) -> dict[str, Any]:
        """The kept states as tensors: ``observations`` per key (S, ...), ``scores`` (S, A), ``stakes``
        (S,), ``next``."""
        kept = slice(0, self.size)
        observations = {key: torch.from_numpy(store[kept].copy()) for key, store in self.observations.items()}
        scores, stakes = (torch.from_numpy(values[kept].copy()) for values in (self.scores, self.stakes))
        return {"observations": observations, "scores": scores, "stakes": stakes, "next": self.next}

    def load_state(self, state: dict[str, Any], path: str | Path, entry: str) -> None:
        """Keep the states of :meth:`state`, read from entry ``entry`` of the checkpoint ``path``
        (an aggregate kept before states had stakes counts each state the same: stakes 1).

        Raises:
            CheckpointError: naming the file and the entry, when they do not fit this store
                (other keys, shapes or dtypes, more states than its capacity).
        """
        with entry_errors(path, entry):
            observations = {key: value.cpu().numpy() for key, value in dict(state["observations"]).items()}
            scores, next_slot = state["scores"].cpu().numpy(), int(state["next"])
            size = len(scores)
            stakes = state["stakes"].cpu().numpy() if "stakes" in state else np.ones(size, dtype=np.float32)
            expected = {key: (store.shape[1:], store.dtype) for key, store in self.observations.items()}
            found = {key: (value.shape[1:], value.dtype) for key, value in observations.items()}
            fits = found == expected and all(len(value) == size for value in observations.values())
            if not fits or tuple(scores.shape[1:]) != self.scores.shape[1:] or size > self.capacity:
                raise ValueError(
                    f"holds {size} states of {found} and scores {tuple(scores.shape)}; expected at most "
                    f"{self.capacity} states of {expected} and scores (S, {self.scores.shape[1]})"
                )
            if stakes.shape != (size,) or not (np.isfinite(stakes) & (stakes >= 0)).all():
                raise ValueError(f"has stakes of shape {tuple(stakes.shape)}; expected ({size},), finite and >= 0")
            if not 0 <= next_slot < self.capacity or (size < self.capacity and next_slot != size % self.capacity):
                raise ValueError(f"has next slot {next_slot} for {size} states of {self.capacity}")
            for key, store in self.observations.items():
                store[:size] = observations[key]
            self.scores[:size] = scores
            self.stakes[:size] = stakes
            self.size, self.next = size, next_slot

    @classmethod
    def of_checkpoint(
        cls, checkpoint: dict[str, Any], path: str | Path, observation_space: spaces.Space, compact_images: bool
    ) -> LabelledStates:
        """The labelled states kept in a resumable DAgger ``checkpoint`` read from ``path``, in a store
        of their own size (``observation_space``: the agent's; A from the scores).

        Raises:
            CheckpointError: naming the file, when it keeps no labelled states (a ``model.pt``, or not a
                DAgger checkpoint) or they do not fit ``observation_space``.
        """
        state = checkpoint.get("training_state")
        aggregate = state.get("aggregate") if isinstance(state, dict) else None
        if not isinstance(aggregate, dict) or not isinstance(aggregate.get("scores"), torch.Tensor):
            raise entry_error(
                path,
                "training_state.aggregate",
                "is missing: the labelled states are kept in the resumable "
                "checkpoint.pt of a DAgger run, not in its model.pt",
            )
        scores = aggregate["scores"]
        store = cls(max(len(scores), 1), observation_space, int(scores.shape[-1]), compact_images)
        store.load_state({**aggregate, "next": 0}, path, "training_state.aggregate")  # full: the next slot is 0
        return store

    def subset(self, indices: np.ndarray) -> LabelledStates:
        """A new store of the kept states ``indices`` int (N,), N >= 1, in that order."""
        indices = np.asarray(indices)
        store = copy.copy(self)  # the same keys and settings, new arrays
        store.observations = {key: values[indices].copy() for key, values in self.observations.items()}
        store.scores = self.scores[indices].copy()
        store.stakes = self.stakes[indices].copy()
        store.capacity = store.size = len(indices)
        store.next = 0
        return store

    @classmethod
    def joined(cls, stores: list[LabelledStates]) -> LabelledStates:
        """One store of the kept states of ``stores`` (at least one), in order: e.g. the aggregates of
        several runs of one task and teacher.

        Raises:
            ValueError: when the stores' observation keys, shapes or dtypes, or their numbers of actions, differ.
        """
        if not stores:
            raise ValueError("joined: expected at least one store of labelled states, got none")
        first = stores[0]
        layout = {key: (values.shape[1:], values.dtype) for key, values in first.observations.items()}
        for index, store in enumerate(stores[1:], start=1):
            found = {key: (values.shape[1:], values.dtype) for key, values in store.observations.items()}
            if found != layout or store.scores.shape[1:] != first.scores.shape[1:]:
                raise ValueError(
                    f"joined: store {index} holds states of {found} and scores (S, {store.scores.shape[1]}); "
                    f"expected those of store 0: {layout} and scores (S, {first.scores.shape[1]})"
                )
        union = copy.copy(first)  # the same keys and settings, new arrays
        union.observations = {
            key: np.concatenate([store.observations[key][: store.size] for store in stores]) for key in layout
        }
        union.scores = np.concatenate([store.scores[: store.size] for store in stores])
        union.stakes = np.concatenate([store.stakes[: store.size] for store in stores])
        union.capacity = union.size = len(union.scores)
        union.next = 0
        return union

    def sample(
        self, batch_size: int, rng: np.random.Generator, device: torch.device
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """(observations, scores (B, A), stakes (B,)) of ``batch_size`` states drawn uniformly, as tensors."""
        picked = rng.integers(self.size, size=batch_size)
        observations = {key: torch.as_tensor(store[picked], device=device) for key, store in self.observations.items()}
        scores, stakes = (torch.as_tensor(values[picked], device=device) for values in (self.scores, self.stakes))
        return (observations[""] if "" in observations else observations), scores, stakes


class DAgger(PolicyNetworkAgent):
    """DAgger with a greedy look-ahead teacher, e.g. ``DAgger(env, teacher_metrics=("ssim",))`` on an
    env with ``look_ahead_gains`` (settings: :class:`DAggerSettings`; arguments:
    :class:`~mri_rl.agents.base.Agent`). It acts by its policy's most likely legal action, or samples
    it when not deterministic.

    Raises:
        TypeError: an env without ``look_ahead_gains``.
    """

    algorithm = "dagger"
    settings_class = DAggerSettings
    settings: DAggerSettings

    def _build(self) -> None:
        s = self.settings
        self._build_policy(
            s.net_arch,
            s.learning_rate,
            per_action=s.per_action_head,
            image_columns=s.image_columns,
            weight_decay=s.weight_decay,
        )
        self.beta_schedule = LinearSchedule(s.beta_start, 0.0, s.beta_fraction)
        self.beta = s.beta_start
        self.labelled: LabelledStates | None = None
        if self.env is not None:
            self._look_ahead_gains = look_ahead_gains_of(self.env)
            self.labelled = LabelledStates(s.buffer_size, self.observation_space, self.num_actions, s.compact_images)

    def _training_state(self) -> dict[str, Any]:
        return {} if self.labelled is None else {"aggregate": self.labelled.state()}

    def _load_training_state(self, state: dict[str, Any], path: str | Path) -> None:
        if "aggregate" in state and self.labelled is not None:
            self.labelled.load_state(state["aggregate"], path, "training_state.aggregate")

    def teacher_labels(self, legal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's labels of each row now, for the actions ``legal`` bool (N, A): its score of
        each, float (N, A), -inf elsewhere, and the state's stake float (N,): the spread of the
        ``weigh_states_by`` metric's gains over them (1 without it)."""
        s = self.settings
        scores, spreads = balanced_action_scores(
            self._look_ahead_gains, legal, s.teacher_metrics, s.teacher_weights or None
        )
        if not s.weigh_states_by:
            return scores, np.ones(len(scores))
        return scores, spreads[:, s.teacher_metrics.index(s.weigh_states_by)]

    def teacher_subset(self, logits: np.ndarray | torch.Tensor, legal: np.ndarray) -> np.ndarray:
        """bool (N, A): the legal actions the teacher scores (see ``teacher_candidates``), from the
        policy's ``logits`` float (N, A) (-inf where illegal; read only when K > 0, so a tensor on
        the agent's device is copied to the host only then) and ``legal`` bool (N, A)."""
        k = self.settings.teacher_candidates
        if k == 0:
            return legal
        if isinstance(logits, torch.Tensor):
            logits = logits.cpu().numpy()
        likely = np.zeros_like(legal)
        np.put_along_axis(likely, np.argsort(-logits, axis=1, kind="stable")[:, : k // 2], True, axis=1)
        likely &= legal
        draws = np.where(legal & ~likely, self.rng.random(legal.shape), -1.0)
        drawn = np.zeros_like(legal)
        np.put_along_axis(drawn, np.argsort(-draws, axis=1, kind="stable")[:, : k - k // 2], True, axis=1)
        return likely | (drawn & (draws >= 0))

    def learn(
        self,
        total_timesteps: int,
        callback: Callback = None,
        progress_bar: bool = True,
        reset_num_timesteps: bool = True,
    ) -> DAgger:
        """Train for ``total_timesteps`` env steps (see :class:`~mri_rl.agents.base.TrainingRun`),
        or until the callback returns False."""
        s = self.settings
        with self._training(total_timesteps, callback, progress_bar, reset_num_timesteps) as run:
            assert self.labelled is not None  # _training checked there is an env, so _build made the store
            obs, legal = run.start()
            while run.running():
                self.beta = self.beta_schedule(run.progress)
                with torch.no_grad():
                    logits = masked_logits(self.policy(self.to_tensor(obs)), torch.as_tensor(legal, device=self.device))
                own = logits.argmax(dim=1).cpu().numpy()
                scores, stakes = self.teacher_labels(self.teacher_subset(logits, legal))
                follow = self.rng.random(len(own)) < self.beta
                step = run.step(np.where(follow, scores.argmax(axis=1), own))
                self.labelled.add(obs, scores, stakes, np.flatnonzero(step.valid))
                obs, legal = step.observations, step.legal
                if self.labelled.size >= max(s.learning_starts, 1):
                    self.fit(self.labelled, s.gradient_steps)
                run.report()
        return self

    def fit(self, labelled: LabelledStates, gradient_steps: int) -> float:
        """``gradient_steps`` cross-entropy steps towards the teacher's softmax on minibatches of
        ``labelled`` alone, with no env step (DAgger's learning step; also to refit a kept aggregate,
        see :mod:`mri_rl.evaluation.aggregate_fit`). Returns the last minibatch's loss."""
        for _ in range(gradient_steps):
            self.last_loss = self._train_step(labelled)
        return self.last_loss

    def _train_step(self, labelled: LabelledStates) -> float:
        """One step of the imitation loss (cross-entropy towards the teacher's softmax, or score
        regression) on a minibatch of ``labelled`` (each state weighted by its stake with ``weigh_states_by``)."""
        obs, scores, stakes = labelled.sample(self.settings.batch_size, self.rng, self.device)
        if self.settings.flip_rows:
            obs = flip_image_rows(obs, labelled.image_keys, self.rng.random(len(scores)) < 0.5)
        if self.settings.shift_images:
            k = self.settings.shift_images
            obs = roll_images(obs, labelled.image_keys, self.rng.integers(-k, k + 1, size=(len(scores), 2)))
        if self.settings.flip_columns:
            which = self.rng.random(len(scores)) < 0.5
            obs, scores = mirror_k_space_columns(obs, scores, labelled.image_keys, labelled.column_keys, which)
        legal = torch.isfinite(scores)
        logits, temperature = self.policy(obs), self.settings.temperature
        if self.settings.imitation_loss == "score_regression":
            losses = score_regression_losses(logits, scores / temperature, legal)
        else:
            target = torch.softmax(scores.masked_fill(~legal, float("-inf")) / temperature, dim=1)
            log_probs = F.log_softmax(masked_logits(logits, legal), dim=1)
            losses = -(target * log_probs.masked_fill(~legal, 0.0)).sum(dim=1)
        if self.settings.weigh_states_by:
            loss = (stakes * losses).sum() / stakes.sum().clamp_min(torch.finfo(stakes.dtype).tiny)
        else:
            loss = losses.mean()
        self._gradient_step(loss, self.settings.max_grad_norm)
        return float(loss.detach())


def score_regression_losses(logits: torch.Tensor, targets: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Per state, the mean squared difference between ``logits`` and ``targets`` float (B, A), each
    centred by its mean over the ``legal`` bool (B, A) actions, over those actions: float (B,). A
    softmax policy ignores a constant added to the logits, so only their differences are fitted."""
    count = legal.sum(dim=1, keepdim=True).clamp_min(1)

    def centred(values: torch.Tensor) -> torch.Tensor:
        kept = torch.where(legal, values, torch.zeros_like(values))
        return kept - kept.sum(dim=1, keepdim=True) / count

    squared = (centred(logits) - centred(targets)).square()
    return torch.where(legal, squared, torch.zeros_like(squared)).sum(dim=1) / count.squeeze(1)


def transform_images(
    observations: Any, image_keys: tuple[str, ...], transform: Callable[[torch.Tensor], torch.Tensor]
) -> Any:
    """``observations`` (a tensor, key "", or a dict of tensors with B rows) with ``transform`` applied
    to the images (B, C, H, W) of ``image_keys``, the other keys as they are, in the same form."""
    batch = observations if isinstance(observations, dict) else {"": observations}
    changed = {key: transform(value) if key in image_keys else value for key, value in batch.items()}
    return changed if isinstance(observations, dict) else changed[""]


def flip_image_rows(observations: Any, image_keys: tuple[str, ...], which: np.ndarray) -> Any:
    """``observations`` (see :func:`transform_images`) with the images of ``image_keys`` reversed along H
    in the rows where ``which`` bool (B,) is True."""

    def flipped(value: torch.Tensor) -> torch.Tensor:
        rows = torch.as_tensor(which, device=value.device)[:, None, None, None]
        return torch.where(rows, value.flip(-2), value)

    return transform_images(observations, image_keys, flipped)


def roll_images(observations: Any, image_keys: tuple[str, ...], shifts: np.ndarray) -> Any:
    """``observations`` (see :func:`transform_images`) with each image of ``image_keys`` rolled
    circularly by ``shifts`` int (B, 2): row b by ``shifts[b, 0]`` pixels along H and ``shifts[b, 1]``
    along W (``torch.roll`` of each image on its own)."""

    def rolled(value: torch.Tensor) -> torch.Tensor:
        b, c, h, w = value.shape
        by = torch.as_tensor(shifts, device=value.device)
        rows = (torch.arange(h, device=value.device) - by[:, :1]) % h  # (B, H): the source row of each row
        columns = (torch.arange(w, device=value.device) - by[:, 1:]) % w
        value = value.gather(2, rows[:, None, :, None].expand(b, c, h, w))
        return value.gather(3, columns[:, None, None, :].expand(b, c, h, w))

    return transform_images(observations, image_keys, rolled)


def mirror_k_space_columns(
    observations: Any,
    scores: torch.Tensor,
    image_keys: tuple[str, ...],
    column_keys: tuple[str, ...],
    which: np.ndarray,
) -> tuple[Any, torch.Tensor]:
    """``observations`` (a tensor, key "", or a dict of tensors with B rows) and ``scores`` float (B, A)
    as they would be for k-space mirrored about its centre, in the rows where ``which`` bool (B,) is True.

    Column c of A becomes A - 1 - c in ``scores`` and in the values (B, A) of ``column_keys``. With the
    centred FFT, that k-space holds frequency -u - 1 where the original holds u, so its magnitude
    image is the original's mirrored about the centre column, x -> -x: along the width w, pixel j
    becomes (w - j) mod w for an even w and w - 1 - j for an odd one (exact when the image is not
    cropped along its width). The images (B, C, H, w) of ``image_keys`` are mirrored so.
    """
    batch = observations if isinstance(observations, dict) else {"": observations}
    rows = torch.as_tensor(which, device=scores.device)

    def mirrored(key: str, value: torch.Tensor) -> torch.Tensor:
        if key in image_keys:
            width = value.shape[-1]
            return torch.where(rows[:, None, None, None], value.flip(-1).roll(1 - width % 2, dims=-1), value)
        if key in column_keys:
            return torch.where(rows[:, None], value.flip(-1), value)
        return value

    changed = {key: mirrored(key, value) for key, value in batch.items()}
    scores = torch.where(rows[:, None], scores.flip(-1), scores)
    return (changed if isinstance(observations, dict) else changed[""]), scores
