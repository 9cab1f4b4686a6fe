"""The acquisition task: the one place where the problem's settings and their defaults live.

An :class:`AcquisitionTask` is everything that decides what a number measured on the
acquisition POMDP means (DESIGN.md): the challenge and k-space geometry, the budget and
initial lines, the reward metric and the reconstructor (the emission function) with a
fingerprint of its weights. The environments, evaluation, LBCS, the reconstructor's
training masks, the quick start and the CLI defaults all take one, and every artifact
records the task it was made under (:mod:`mri_rl.provenance`), so a result cannot be
reused or compared under another task without a word.

This module imports nothing heavy: the CLI reads its defaults from here.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

CHALLENGES = ("singlecoil", "multicoil")
SPLITS = ("train", "val", "test")
#: Metrics of a reconstruction against its target; any of them can be the reward.
METRIC_NAMES = ("mse", "nmse", "psnr", "ssim")
ZERO_FILLED = "zero_filled"
#: Precisions of the reconstructor's forward in the environment: "32" (float32, no autocast),
#: "bf16" (bfloat16 autocast: CPU and CUDA), "16" (float16 autocast: CUDA and MPS only).
PRECISIONS = ("32", "bf16", "16")


class TaskError(ValueError):
    """A task setting of the wrong type or out of range; the message names the field."""


def _check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int: an integer of any type (numpy's included, not a bool) or an
    integer-valued float (as YAML or JSON may give), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # numpy bool_ is not Integral
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise TaskError(f"task {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise TaskError(f"task {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_precision(value: Any) -> str:
    """``value`` as one of :data:`PRECISIONS`; the integers 32 and 16 (as YAML reads them) too."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and str(int(value)) in PRECISIONS:
        return str(int(value))
    return _check_choice("precision", value, PRECISIONS)


def _length(value: Any) -> int | None:
    """``len(value)``, or None for a value without one (a number, a 0-d numpy array)."""
    try:
        return len(value)
    except TypeError:
        return None


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise TaskError(f"task {name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class AcquisitionTask:
    """The acquisition problem: what an episode is and how it is scored.

    Attributes:
        challenge: "singlecoil" or "multicoil" (fastMRI's challenges).
        budget: columns acquired per episode; None acquires until every column is.
        initial_lines: lowest-frequency columns acquired before the first action.
        reward_metric: "mse", "nmse" (reward = decrease), "ssim" or "psnr" (increase).
        reconstructor: "zero_filled" or the path of an exported reconstructor.
        kspace_shape: per-slice k-space shape, (rows, cols) single-coil or (coils, rows,
            cols) multi-coil; None until bound to data (the folder's most common shape).
        reconstructor_fingerprint: "zero_filled", or a hash of the exported file (or of
            an in-memory model's weights); None until the reconstructor is loaded.
        precision: arithmetic of the reconstructor's forward in the environment (its
            reconstructions and look-ahead): "32" (float32), "bf16" or "16" (autocast to
            bfloat16 or float16; metrics and rewards are still computed in float32/64).
            It changes the numbers, so it belongs to the task and to every record; the
            device does not (it changes where, not what). "16" needs a CUDA or MPS
            device; zero-filled reconstruction (FFTs) is the same under every precision.
    """

    challenge: str = "singlecoil"
    budget: int | None = 16
    initial_lines: int = 4
    reward_metric: str = "ssim"
    reconstructor: str = ZERO_FILLED
    kspace_shape: tuple[int, ...] | None = None
    reconstructor_fingerprint: str | None = None
    precision: str = "32"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, at construction
        set_(self, "challenge", _check_choice("challenge", self.challenge, CHALLENGES))
        set_(self, "reward_metric", _check_choice("reward_metric", self.reward_metric, METRIC_NAMES))
        if self.budget is not None:
            set_(self, "budget", _check_int("budget", self.budget, 1))
        set_(self, "initial_lines", _check_int("initial_lines", self.initial_lines, 1))
        set_(self, "precision", _check_precision(self.precision))
        if isinstance(self.reconstructor, Path):
            set_(self, "reconstructor", str(self.reconstructor))
        if not isinstance(self.reconstructor, str) or not self.reconstructor:
            raise TaskError(
                f"task reconstructor must be 'zero_filled' or a checkpoint path, got {self.reconstructor!r}"
            )
        if self.kspace_shape is not None:
            shape = self.kspace_shape
            if isinstance(shape, (str, bytes)) or _length(shape) not in (2, 3):
                raise TaskError(f"task kspace_shape must be (rows, cols) or (coils, rows, cols), got {shape!r}")
            set_(self, "kspace_shape", tuple(_check_int("kspace_shape", n, 1) for n in shape))
        if self.reconstructor_fingerprint is not None and not isinstance(self.reconstructor_fingerprint, str):
            raise TaskError(f"task reconstructor_fingerprint must be a string, got {self.reconstructor_fingerprint!r}")

    # ------------------------------------------------------------------ building
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "task") -> AcquisitionTask:
        """A task from a mapping of its fields (missing ones take the defaults).

        Raises:
            TaskError: an unknown key or a bad value; the message names ``source``.
        """
        if not isinstance(values, Mapping):
            raise TaskError(f"{source}: the task must be a mapping of its fields, got {type(values).__name__}")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise TaskError(f"{source}: unknown task key(s) {unknown}; known: {list(cls.field_names())}")
        try:
            return cls(**values)
        except TaskError as error:
            raise TaskError(f"{source}: {error}") from None

    def with_changes(self, **changes: Any) -> AcquisitionTask:
        """A copy with some fields changed; unknown names raise :class:`TaskError`."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise TaskError(f"unknown task setting(s) {unknown}; known: {list(self.field_names())}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON- and ``weights_only``-friendly values (tuples as lists)."""
        values = asdict(self)
        if values["kspace_shape"] is not None:
            values["kspace_shape"] = list(values["kspace_shape"])
        return values

    # ---------------------------------------------------------------- comparing
    def differences(self, other: AcquisitionTask) -> list[str]:
        """What differs between two tasks, one ``"field: this vs other"`` per field.

        The reconstructor is compared by fingerprint when both have one (a moved or
        copied file is the same reconstructor), else by path. A geometry not yet bound
        to data (None) matches any.
        """
        found = []
        for name in ("challenge", "kspace_shape", "budget", "initial_lines", "reward_metric", "precision"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "kspace_shape" and (mine is None or theirs is None):
                continue
            if mine != theirs:
                found.append(f"{name}: {_show(mine)} vs {_show(theirs)}")
        if self.reconstructor_fingerprint and other.reconstructor_fingerprint:
            if self.reconstructor_fingerprint != other.reconstructor_fingerprint:
                found.append(
                    f"reconstructor: {self.reconstructor} ({self.reconstructor_fingerprint}) vs "
                    f"{other.reconstructor} ({other.reconstructor_fingerprint})"
                )
        elif self.reconstructor != other.reconstructor:
            found.append(f"reconstructor: {self.reconstructor} vs {other.reconstructor}")
        return found

    def describe(self) -> str:
        """One line for report titles, e.g. ``singlecoil 128x64, budget 16 from 4 initial lines, ssim reward,
        reconstructor runs/x/reconstructor.pt``."""
        geometry = "" if self.kspace_shape is None else " " + "x".join(str(n) for n in self.kspace_shape)
        budget = "every column" if self.budget is None else f"budget {self.budget}"
        precision = "" if self.precision == "32" else f" in {self.precision} precision"
        return (
            f"{self.challenge}{geometry}, {budget} from {self.initial_lines} initial lines, "
            f"{self.reward_metric} reward, {self.reconstructor} reconstructor{precision}"
        )


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(str(n) for n in value)
    return "every column" if value is None else str(value)


#: The task every command uses unless told otherwise.
DEFAULT_TASK = AcquisitionTask()
