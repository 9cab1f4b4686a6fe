"""The edge checks of :mod:`mri_rl.checks`: counts, finite numbers and torch device names, each
refused in one line naming the value and what was expected. No test needs a GPU: CUDA's
presence is monkeypatched both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mri_rl.checks import check_int, check_number, resolve_device, same_device


@pytest.mark.parametrize("value", [3, np.int8(3), np.uint64(3), np.int64(3)])
def test_check_int_accepts_integers_of_any_kind_as_int(value):
    checked = check_int("count", value)
    assert checked == 3 and type(checked) is int


@pytest.mark.parametrize(
    ("value", "minimum", "shown"),
    [
        (0, 1, "0"),
        (-1, 0, "-1"),
        (2.5, 1, "2.5"),
        (2.0, 1, "2.0"),
        (True, 1, "True"),
        (np.bool_(True), 1, "True"),
        ("3", 1, "'3'"),
        (None, 1, "None"),
        (np.float64("nan"), 1, "nan"),
    ],
)
def test_check_int_refuses_naming_the_value(value, minimum, shown):
    with pytest.raises(ValueError) as raised:
        check_int("count", value, minimum)
    assert str(raised.value) == f"count: expected an integer >= {minimum}, got {shown}"


@pytest.mark.parametrize(
    ("value", "minimum", "shown"),
    [
        (float("nan"), None, "nan"),
        (float("inf"), 0, "inf"),
        (-float("inf"), None, "-inf"),
        (np.float32("nan"), 0, "nan"),
        (-0.1, 0, "-0.1"),
        (True, None, "True"),
        ("1", None, "'1'"),
        (10**400, None, str(10**400)),
    ],
)
def test_check_number_refuses_non_finite_and_out_of_range_values(value, minimum, shown):
    with pytest.raises(ValueError) as raised:
        check_number("level", value, minimum)
    wanted = "a finite number" if minimum is None else f"a finite number >= {minimum}"
    assert str(raised.value) == f"level: expected {wanted}, got {shown}"


def test_check_number_accepts_finite_numbers_as_float():
    assert [check_number("level", v, 0) for v in (0, 1, np.float32(0.5), np.int8(2))] == [0.0, 1.0, 0.5, 2.0]


def test_cpu_resolves():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nonsense", "device 'nonsense' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        ("", "device '' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        ("cuda:x", "device 'cuda:x' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        (None, "device None is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        ("meta", "device 'meta' is not supported; expected cpu, cuda, cuda:N or mps"),
    ],
)
def test_a_bad_device_name_is_refused(name, message):
    with pytest.raises(ValueError) as raised:
        resolve_device(name)
    assert str(raised.value) == message


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:7"])
def test_cuda_on_a_machine_without_it_is_refused(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as raised:
        resolve_device(name)
    assert str(raised.value) == (
        f"device '{name}' is not available on this machine: torch.cuda.is_available() is False"
    )


def test_a_cuda_index_beyond_the_machines_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")  # resolving creates nothing on the device
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError) as raised:
        resolve_device("cuda:7")
    assert (
        str(raised.value)
        == "device 'cuda:7' is not available on this machine: it has 2 CUDA device(s), cuda:0 to cuda:1"
    )


def test_cuda_without_an_index_is_the_same_device_as_the_current_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert torch.device("cuda") != torch.device("cuda:1")  # why same_device exists
    assert same_device("cuda", torch.device("cuda:1")) and same_device(torch.device("cuda:1"), "cuda")
    assert not same_device("cuda", "cuda:0") and not same_device("cuda:0", "cpu")
    assert same_device("mps", "mps:0") and same_device("cpu", torch.device("cpu"))


def test_mps_on_a_machine_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'mps' is not available on this machine: torch\.backends\.mps"):
        resolve_device("mps")
