"""Seeded column masks for training and evaluating reconstructors.

A :class:`MaskSampler` draws one bool mask (W,) over the phase-encode columns of a slice,
True where a column is acquired. Like the environment, the zero-filled padding columns
outside ``[padding_left, padding_right)`` always count as acquired (their k-space is zero).
Masks depend only on the seed, so the same (seed, slice) always gets the same mask:

- :class:`AcquisitionMaskSampler`: the masks an acquisition episode passes through, from
  the initial low-frequency lines up to the budget (Pineda et al., MICCAI 2020 trained
  their reconstructor on such masks).
- :class:`FastMRIMaskSampler`: fastMRI's random or equispaced 1-D Cartesian masks at fixed
  accelerations (Zbontar et al., 2018), e.g. the standard 4x and 8x.
- :class:`OrdersMaskSampler`: the masks a recorded policy passes through (``mri-rl orders``), for a
  reconstructor trained on that policy's own masks.
- :class:`MixtureMaskSampler`: one of several samplers, drawn per slice with given weights.

:func:`build_mask_sampler` builds any of them from a config dictionary.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastmri.data.subsample import EquispacedMaskFractionFunc, MaskFunc, RandomMaskFunc

from mri_rl.acquisition_orders import read_orders
from mri_rl.kspace import initial_mask, low_frequency_order
from mri_rl.task import AcquisitionTask

#: A seed: a non-negative int or a tuple of them, e.g. (base_seed, epoch, index).
Seed = int | Sequence[int]


def seed_tuple(seed: Seed) -> tuple[int, ...]:
    """``seed`` as a tuple of non-negative ints (the form numpy's RandomState and SeedSequence accept)."""
    values = (seed,) if isinstance(seed, (int, np.integer)) else tuple(seed)
    if not values or any(not isinstance(v, (int, np.integer)) or v < 0 for v in values):
        raise ValueError(f"a mask seed must be a non-negative int or a tuple of them, got {seed!r}")
    return tuple(int(v) for v in values)


class MaskSampler(ABC):
    """Draws column masks; the same arguments always give the same mask."""

    @abstractmethod
    def __call__(self, width: int, padding_left: int, padding_right: int, seed: Seed) -> np.ndarray:
        """Draw a mask.

        Args:
            width: W, the phase-encode columns of the k-space.
            padding_left, padding_right: measurable columns are [padding_left, padding_right).
            seed: int or tuple of ints; decides the mask.

        Returns:
            bool array (W,), True where acquired (always True on the padding).
        """

    def most_initial_lines(self) -> int | None:
        """The most initial lines (:func:`~mri_rl.kspace.initial_mask`) any of its masks starts from;
        None when its masks start from none (fastMRI's)."""
        return None


class AcquisitionMaskSampler(MaskSampler):
    """Masks that an acquisition episode can reach.

    The padding and the ``initial_lines`` lowest frequencies (the environment's mask at
    reset, :func:`mri_rl.kspace.initial_mask`) are always acquired, plus a uniformly
    random number in ``[0, budget]`` of the other measurable columns: chosen uniformly
    (``extra="random"``) or the lowest frequencies first (``extra="lowest"``, the masks of
    a low-to-high acquisition, which random columns never produce). Training on these
    covers every sampling rate an episode passes through.

    Args:
        initial_lines: lowest-frequency columns acquired at reset.
        budget: most extra columns (None: up to all of them); ``budget=0`` gives the
            initial mask alone.
        extra: "random" or "lowest".
    """

    EXTRA = ("random", "lowest")

    def __init__(self, initial_lines: int, budget: int | None, extra: str = "random") -> None:
        if initial_lines < 1:
            raise ValueError(f"initial_lines must be >= 1, got {initial_lines}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0 (or None), got {budget}")
        if extra not in self.EXTRA:
            raise ValueError(f"extra must be one of {self.EXTRA}, got {extra!r}")
        self.initial_lines = initial_lines
        self.budget = budget
        self.extra = extra

    def most_initial_lines(self) -> int | None:
        return self.initial_lines

    def __call__(self, width: int, padding_left: int, padding_right: int, seed: Seed) -> np.ndarray:
        mask = initial_mask(width, padding_left, padding_right, self.initial_lines)
        free = np.flatnonzero(~mask)
        most = len(free) if self.budget is None else min(self.budget, len(free))
        rng = np.random.default_rng(seed_tuple(seed))
        count = int(rng.integers(most + 1))
        if self.extra == "lowest":
            lowest_first = [c for c in low_frequency_order(width) if not mask[c]]
            mask[lowest_first[:count]] = True
        else:
            mask[rng.choice(free, size=count, replace=False)] = True
        return mask


class FastMRIMaskSampler(MaskSampler):
    """fastMRI's Cartesian masks (``fastmri.data.subsample``).

    As in fastMRI, the mask is drawn over all W columns (the acceleration counts the
    padding) with the centre fraction fully sampled; the padding is then marked acquired.

    Args:
        pattern: "random" (``RandomMaskFunc``) or "equispaced" (``EquispacedMaskFractionFunc``).
        center_fractions: fractions of low-frequency columns always acquired.
        accelerations: under-sampling factors, paired with ``center_fractions``; one
            pair is drawn per mask.
    """

    PATTERNS: dict[str, type[MaskFunc]] = {"random": RandomMaskFunc, "equispaced": EquispacedMaskFractionFunc}

    def __init__(self, pattern: str, center_fractions: Sequence[float], accelerations: Sequence[int]) -> None:
        if pattern not in self.PATTERNS:
            raise ValueError(f"unknown fastMRI mask pattern {pattern!r}; expected one of {sorted(self.PATTERNS)}")
        fractions, factors = _number_list(center_fractions), _number_list(accelerations)
        if not fractions or len(fractions) != len(factors):
            raise ValueError(
                f"center_fractions {center_fractions!r} and accelerations {accelerations!r} must be non-empty "
                "lists of the same length (one pair is drawn per mask)"
            )
        if not all(0 < f < 1 for f in fractions) or not all(a >= 1 and float(a).is_integer() for a in factors):
            raise ValueError(
                f"center_fractions {center_fractions!r} must lie in (0, 1) and accelerations {accelerations!r} "
                "be integers >= 1"
            )
        self.pattern = pattern
        self.mask_func = self.PATTERNS[pattern](fractions, [int(a) for a in factors])

    def __call__(self, width: int, padding_left: int, padding_right: int, seed: Seed) -> np.ndarray:
        sampled, _ = self.mask_func((1, width, 1), seed=seed_tuple(seed))  # float (1, W, 1)
        mask = sampled.reshape(width).numpy() > 0
        mask[:padding_left] = True
        mask[padding_right:] = True
        return mask


class OrdersMaskSampler(MaskSampler):
    """Masks that a recorded policy passes through: the initial lines plus the first k columns of one
    recorded episode, the episode and k in [0, episode length] drawn uniformly.

    A reconstructor trained on random masks rewards the columns it was trained on; trained on these
    (mixed with others), it serves the policy's own mask distribution (one round of alternating
    policy and reconstructor training, as Zhang et al., CVPR 2019, train the two jointly).

    Args:
        path: an orders file (:mod:`mri_rl.acquisition_orders`, written by ``mri-rl orders``).
        initial_lines: the task's initial lines, which the orders must have started from (None: the file's).

    Raises:
        FileNotFoundError, AcquisitionOrdersError: the file is missing or cannot be read.
        ValueError: the orders started from other initial lines.
    """

    def __init__(self, path: str, initial_lines: int | None = None) -> None:
        self.path = path
        self.orders = read_orders(path)
        if initial_lines is not None and initial_lines != self.orders.initial_lines:
            raise ValueError(
                f"the orders in {path} start from {self.orders.initial_lines} initial lines, but the task "
                f"acquires {initial_lines}: record them with the task's policy"
            )

    def most_initial_lines(self) -> int | None:
        return self.orders.initial_lines

    def __call__(self, width: int, padding_left: int, padding_right: int, seed: Seed) -> np.ndarray:
        if width != self.orders.width:
            raise ValueError(
                f"the orders in {self.path} index {self.orders.width} columns, but the k-space has {width}"
            )
        mask = initial_mask(width, padding_left, padding_right, self.orders.initial_lines)
        rng = np.random.default_rng(seed_tuple(seed))
        order = self.orders.orders[int(rng.integers(len(self.orders.orders)))]
        mask[list(order[: int(rng.integers(len(order) + 1))])] = True
        return mask


class MixtureMaskSampler(MaskSampler):
    """Draws each mask from one of several samplers, picked with probability ``weights``.

    Args:
        samplers: the components.
        weights: non-negative, one per component (normalised to sum to 1).
    """

    def __init__(self, samplers: Sequence[MaskSampler], weights: Sequence[float]) -> None:
        probabilities = np.asarray(weights, dtype=np.float64)
        if len(samplers) == 0 or len(samplers) != len(probabilities):
            raise ValueError(
                f"need one weight per sampler, got {len(samplers)} sampler(s) and {len(probabilities)} weight(s)"
            )
        if (probabilities < 0).any() or probabilities.sum() <= 0:
            raise ValueError(f"mixture weights must be non-negative with a positive sum, got {probabilities.tolist()}")
        self.samplers = list(samplers)
        self.weights = probabilities / probabilities.sum()

    def most_initial_lines(self) -> int | None:
        lines = [found for sampler in self.samplers if (found := sampler.most_initial_lines()) is not None]
        return max(lines, default=None)

    def __call__(self, width: int, padding_left: int, padding_right: int, seed: Seed) -> np.ndarray:
        seed = seed_tuple(seed)
        component = int(np.random.default_rng(seed).choice(len(self.samplers), p=self.weights))
        return self.samplers[component](width, padding_left, padding_right, (*seed, component))


def _acquisition_options(options: dict[str, Any], task: AcquisitionTask | None) -> dict[str, Any]:
    """An acquisition component's options with the task's initial lines and budget filled in.

    Raises:
        ValueError: options that contradict the task: other initial lines, or a budget
            that covers fewer columns than an episode acquires.
    """
    if task is None:
        return options
    lines = options.setdefault("initial_lines", task.initial_lines)
    if lines != task.initial_lines:
        raise ValueError(
            f"acquisition masks start from {lines} initial lines, but the task acquires "
            f"{task.initial_lines}: drop initial_lines from the mask config (it comes from the task)"
        )
    budget = options.setdefault("budget", task.budget)
    if budget is not None and 0 < budget and (task.budget is None or budget < task.budget):
        acquired, enough = (
            ("every column (budget all)", "null (up to every column)")
            if task.budget is None
            else (str(task.budget), f"at least {task.budget}")
        )
        raise ValueError(
            f"acquisition masks cover at most {budget} columns beyond the initial lines, but the task "
            f"acquires {acquired}: set the mask budget to {enough} in a copy of the "
            "reconstructor config (the quick start takes it as reconstructor.config=PATH) or drop it "
            "(it defaults to the task's)"
        )
    return options


def _number_list(values: Any) -> list[float]:
    """``values`` as a list of finite real numbers (not bools), or [] when it is not one."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        return []
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return [float(v) for v in numbers] if len(numbers) == len(values) else []


def build_mask_sampler(config: Mapping[str, Any], task: AcquisitionTask | None = None) -> MaskSampler:
    """Build a sampler from a config dictionary.

    Forms (YAML)::

        {kind: acquisition, budget: 28}         # initial_lines (and budget) default to the task's
        {kind: random, center_fractions: [0.08], accelerations: [4]}      # or kind: equispaced
        {kind: orders, path: runs/dagger/orders.json}   # a policy's masks (`mri-rl orders`)
        {kind: mixture, components: [{weight: 0.5, kind: ..., ...}, ...]}

    Args:
        config: the sampler's settings.
        task: the acquisition task the reconstructor serves; acquisition masks take its
            initial lines and (unless set) its budget. ``budget: 0`` gives the initial mask.

    Raises:
        ValueError: an unknown kind, arguments that do not fit it, or that contradict the task.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"a mask sampler config must be a mapping with a 'kind', got {config!r}")
    options = dict(config)
    kind = options.pop("kind", None)
    if not isinstance(kind, str):
        raise ValueError(f"mask kind must be a string, got {kind!r}")
    try:
        if kind == "acquisition":
            return AcquisitionMaskSampler(**_acquisition_options(options, task))
        if kind in FastMRIMaskSampler.PATTERNS:
            return FastMRIMaskSampler(kind, **options)
        if kind == "orders":
            return OrdersMaskSampler(**options, initial_lines=None if task is None else task.initial_lines)
        if kind == "mixture":
            components = [dict(component) for component in options.pop("components")]
            if options:
                raise TypeError(f"unexpected keys {sorted(options)}")
            weights = [component.pop("weight", 1.0) for component in components]
            return MixtureMaskSampler([build_mask_sampler(component, task) for component in components], weights)
    except (TypeError, KeyError) as error:
        raise ValueError(f"bad {kind} mask config {dict(config)}: {error}") from None
    raise ValueError(
        f"unknown mask kind {kind!r}; expected acquisition, orders, mixture or one of "
        f"{sorted(FastMRIMaskSampler.PATTERNS)}"
    )


def orders_files(config: Any) -> list[str]:
    """The paths of the orders files that a mask sampler config (:func:`build_mask_sampler`) reads,
    mixture components included, so that a record can fingerprint what its masks came from."""
    if not isinstance(config, Mapping):
        return []
    if config.get("kind") == "orders":
        return [str(config.get("path"))]
    components = config.get("components") if config.get("kind") == "mixture" else None
    return [path for component in components or [] for path in orders_files(component)]


def build_mask_samplers(
    configs: Mapping[str, Mapping[str, Any]], task: AcquisitionTask | None = None
) -> dict[str, MaskSampler]:
    """Named samplers, e.g. the ``masks.evaluation`` section of a config: name -> :func:`build_mask_sampler`."""
    return {name: build_mask_sampler(config, task) for name, config in configs.items()}
