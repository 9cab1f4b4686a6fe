"""The env's reconstructor forward: in inference mode, under the task's precision (autocast), with
metrics in float32/64; and observations as torch tensors on the env's device when asked for."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from mri_rl.envs import ENV_ID
from mri_rl.reconstruct.base import Reconstructor, zero_filled_image

KWARGS = {"budget": 4, "initial_lines": 2, "reward_metric": "ssim"}
ACTIONS = ([5, 6, 7], [9, 10, 11], [3, 12, 13])
CANDIDATES = np.array([[0, 1, 8, 14]] * 3)


class BlurReconstructor(Reconstructor):
    """The zero-filled image through a fixed 3x3 blur: a convolution, which autocast runs in its dtype.

    Records, per call, the dtype of the convolution's output and whether inference mode and
    gradients were on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        kernel = torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]])
        with torch.no_grad():
            self.conv.weight.copy_(kernel[None, None])
        self.calls: list[tuple[torch.dtype, bool, bool]] = []

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        image = self.conv(zero_filled_image(masked_kspace, output_size)[:, None])[:, 0]
        self.calls.append((image.dtype, torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return image


def rollout(folder, precision: str, reconstructor: Reconstructor | str) -> tuple[list[dict], np.ndarray, gym.Env]:
    """Infos (metrics) of a reset and three steps of 3 episodes, the look-ahead after them, and the env."""
    env = gym.make_vec(
        ENV_ID,
        num_envs=3,
        vectorization_mode="vector_entry_point",
        data_path=folder,
        reconstructor=reconstructor,
        precision=precision,
        **KWARGS,
    )
    _, info = env.reset(seed=0, options={"indices": [0, 1, 2]})
    infos = [info]
    for actions in ACTIONS:
        *_, info = env.step(np.array(actions))
        infos.append(info)
    return infos, env.unwrapped.look_ahead(CANDIDATES), env


def test_bf16_metrics_are_close_to_float32_and_the_task_records_the_precision(one_volume_folder):
    full, half = BlurReconstructor(), BlurReconstructor()
    infos32, look32, env32 = rollout(one_volume_folder, "32", full)
    infos16, look16, env16 = rollout(one_volume_folder, "bf16", half)
    assert {dtype for dtype, _, _ in full.calls} == {torch.float32}
    assert {dtype for dtype, _, _ in half.calls} == {torch.bfloat16}  # the forward ran under autocast
    for a, b in zip(infos32, infos16):
        for name in ("ssim", "psnr", "nmse", "mse"):
            assert b[name].dtype == np.float64, name  # metrics are computed in float, not bf16
            np.testing.assert_allclose(b[name], a[name], rtol=1e-2, err_msg=name)
        assert not np.array_equal(a["ssim"], b["ssim"])  # the precision changes the numbers
    np.testing.assert_allclose(look16, look32, atol=2e-3)
    assert look16.dtype == np.float64
    assert env32.unwrapped.task.precision == "32" and env16.unwrapped.task.precision == "bf16"
    assert env16.unwrapped.record()["task"]["precision"] == "bf16"
    assert env16.unwrapped.task.differences(env32.unwrapped.task) == ["precision: bf16 vs 32"]
    assert env16.unwrapped.episodes.reconstruction.dtype == torch.float32


def test_zero_filled_gives_the_same_numbers_under_every_precision(one_volume_folder):
    infos32, look32, _ = rollout(one_volume_folder, "32", "zero_filled")
    infos16, look16, _ = rollout(one_volume_folder, "bf16", "zero_filled")
    for a, b in zip(infos32, infos16):
        np.testing.assert_array_equal(a["ssim"], b["ssim"])
    np.testing.assert_array_equal(look16, look32)


def test_float16_on_the_cpu_is_refused_with_one_clear_line(one_volume_folder):
    with pytest.raises(ValueError, match=r"^precision 16 \(float16 autocast\) needs a CUDA or MPS device; on the CPU"):
        gym.make(ENV_ID, data_path=one_volume_folder, precision="16", **KWARGS)


def test_reconstructions_and_look_ahead_run_in_inference_mode_and_track_no_grad(one_volume_folder):
    model = BlurReconstructor()
    _, _, env = rollout(one_volume_folder, "32", model)
    assert model.calls and all(inference and not grad for _, inference, grad in model.calls)
    episodes = env.unwrapped.episodes
    assert not episodes.reconstruction.requires_grad
    assert not any(values.requires_grad for values in episodes.metrics.values())
    model.conv.weight.grad = None
    env.step(np.array([0, 1, 2]))
    assert model.conv.weight.grad is None  # nothing reached the reconstructor's weights


def test_tensor_observations_are_the_numpy_ones_on_the_env_device_and_train_with_autograd(one_volume_folder):
    env = gym.make_vec(
        ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", data_path=one_volume_folder, **KWARGS
    )
    base = env.unwrapped
    assert base.tensor_observations is False and base.device == torch.device("cpu")
    arrays, _ = env.reset(seed=0, options={"indices": [0, 1, 2]})
    base.tensor_observations = True
    tensors, _ = env.reset(seed=0, options={"indices": [0, 1, 2]})
    assert set(tensors) == set(arrays)
    for key, value in tensors.items():
        assert isinstance(value, torch.Tensor) and value.device == base.device, key
        assert not value.is_inference(), key  # a policy may learn from it
        np.testing.assert_array_equal(value.numpy(), arrays[key], err_msg=key)
        assert value.dtype == torch.from_numpy(arrays[key]).dtype, key
    stepped, *_ = env.step(np.array([5, 6, 7]))
    assert isinstance(stepped["reconstruction"], torch.Tensor)
    weight = torch.ones(1, 1, 3, 3, requires_grad=True)
    torch.nn.functional.conv2d(stepped["reconstruction"], weight).sum().backward()  # no inference-tensor error
    assert weight.grad is not None
    base.tensor_observations = False
    assert isinstance(env.step(np.array([8, 9, 10]))[0]["reconstruction"], np.ndarray)


def test_infos_are_not_views_of_the_episodes_state(one_volume_folder):
    infos, _, _ = rollout(one_volume_folder, "32", "zero_filled")
    ssim = [info["ssim"] for info in infos]
    assert all(not np.array_equal(before, after) for before, after in zip(ssim, ssim[1:]))  # each step's own
