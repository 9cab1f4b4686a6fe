"""Checks at the package's edge: the counts and numbers of settings, and the torch device a user names.

A bad value is refused where it enters, with one line naming it and what was expected,
instead of a wrong result or a traceback from deep inside torch. Nothing heavy is imported
at module level (the command line's argument types use these checks before torch loads):
torch is imported when a device is resolved.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: Device types the package runs on.
DEVICE_TYPES = ("cpu", "cuda", "mps")
DEVICE_NAMES = "cpu, cuda, cuda:N or mps"


#: The largest seed: every library the package seeds (numpy, torch, Python's random) accepts it.
MAX_SEED = 2**32 - 1


def expected(integer: bool, minimum: float | None = None, maximum: float | None = None) -> str:
    """What :func:`is_valid` accepts, in words: 'an integer >= 1', 'a finite number', 'an integer in [0, 9]'."""
    kind = "an integer" if integer else "a finite number"
    if maximum is not None:
        return f"{kind} in [{minimum}, {maximum}]"
    return kind if minimum is None else f"{kind} >= {minimum}"


def is_valid(value: Any, integer: bool, minimum: float | None = None, maximum: float | None = None) -> bool:
    """Whether ``value`` is an integer (numpy's included; not a bool, not a float such as 2.0) or,
    with ``integer=False``, a finite real number (integers included), within [``minimum``, ``maximum``]."""
    if isinstance(value, bool):
        return False  # numpy's bool_ is neither Integral nor Real
    if integer:
        if not isinstance(value, numbers.Integral):
            return False
        number: float = int(value)
    else:
        if not isinstance(value, numbers.Real):
            return False
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            return False
    within = (minimum is None or number >= minimum) and (maximum is None or number <= maximum)
    return (integer or math.isfinite(number)) and within


def show(value: Any) -> str:
    """``repr`` of a value, a numpy or torch scalar as the Python number it holds (``nan``, not ``np.float64(nan)``)."""
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        value = value.item()
    return repr(value)


def check_int(name: str, value: Any, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` when it is an integer within [``minimum``, ``maximum``].

    Raises:
        ValueError: ``"{name}: expected an integer >= {minimum}, got {value!r}"``.
    """
    if not is_valid(value, True, minimum, maximum):
        raise ValueError(f"{name}: expected {expected(True, minimum, maximum)}, got {show(value)}")
    return int(value)


def check_number(name: str, value: Any, minimum: float | None = None) -> float:
    """``value`` as a ``float`` when it is a finite real number >= ``minimum``.

    Raises:
        ValueError: ``"{name}: expected a finite number >= {minimum}, got {value!r}"`` (nan and inf included).
    """
    if not is_valid(value, False, minimum):
        raise ValueError(f"{name}: expected {expected(False, minimum)}, got {show(value)}")
    return float(value)


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device named ``device`` ("cpu", "cuda", "cuda:1", "mps"), checked to exist on this machine.

    Raises:
        ValueError: not a device name, a device type the package does not run on, or one this
            machine does not have (e.g. "device 'cuda' is not available on this machine:
            torch.cuda.is_available() is False").
    """
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {show(device)} is not a torch device name; expected {DEVICE_NAMES}") from None
    if resolved.type not in DEVICE_TYPES:
        raise ValueError(f"device {str(device)!r} is not supported; expected {DEVICE_NAMES}")
    missing = _why_unavailable(resolved)
    if missing:
        raise ValueError(f"device {str(device)!r} is not available on this machine: {missing}")
    return resolved


def same_device(first: str | torch.device, second: str | torch.device) -> bool:
    """Whether two device names mean the same device: "cuda" is the current CUDA device (as a tensor
    made on "cuda" reports, e.g. "cuda:0"), "mps" is "mps:0"; ``torch.device`` equality says no."""
    import torch

    def indexed(device: str | torch.device) -> tuple[str, int | None]:
        device = torch.device(device)
        if device.index is None and device.type in ("cuda", "mps"):
            return device.type, torch.cuda.current_device() if device.type == "cuda" else 0
        return device.type, device.index

    return indexed(first) == indexed(second)


def _why_unavailable(device: torch.device) -> str | None:
    """Why this machine cannot run on ``device`` (one of :data:`DEVICE_TYPES`), or None when it can."""
    import torch

    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"it has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "torch.backends.mps.is_available() is False"
    return None
