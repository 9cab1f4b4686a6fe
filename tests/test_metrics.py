"""mri_rl.metrics.image_metrics against fastmri.evaluate (the fastMRI reference); scale-free metrics and rewards."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch
from fastmri import evaluate

from mri_rl.envs.acquisition import ActiveAcquisitionEnv
from mri_rl.metrics import HIGHER_IS_BETTER, image_metrics
from mri_rl.task import METRIC_NAMES


def random_pairs(scale: float, shape=(4, 24, 20), seed=0):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.05, 1.0, shape) * scale
    # smooth-ish structure so SSIM is far from both 0 and 1
    target[:, 6:14, 5:12] += 0.8 * scale
    noise = rng.normal(0.0, 0.5 * scale, shape) * np.linspace(0.1, 1.0, shape[0])[:, None, None]
    reconstruction = np.clip(target + noise, 0.0, None)
    # fastMRI's data range is the maximum of the volume, at least the image maximum
    data_range = target.reshape(shape[0], -1).max(axis=1) * np.array([1.0, 1.3, 1.0, 2.0])[: shape[0]]
    return reconstruction.astype(np.float32), target.astype(np.float32), data_range


@pytest.mark.parametrize("scale", [1.0, 3e-4])
def test_image_metrics_agree_with_fastmri_evaluate(scale):
    reconstruction, target, data_range = random_pairs(scale)
    metrics = image_metrics(torch.from_numpy(reconstruction), torch.from_numpy(target), torch.from_numpy(data_range))
    assert set(metrics) == set(METRIC_NAMES)
    for values in metrics.values():
        assert values.dtype == torch.float64 and values.shape == (4,)
    ssims = []
    for i in range(4):
        gt, pred, maxval = target[i].astype(np.float64), reconstruction[i].astype(np.float64), data_range[i]
        expected_ssim = float(evaluate.ssim(gt[None], pred[None], maxval=maxval)[0])
        ssims.append(expected_ssim)
        assert metrics["ssim"][i].item() == pytest.approx(expected_ssim, abs=1e-5)
        assert metrics["psnr"][i].item() == pytest.approx(evaluate.psnr(gt, pred, maxval=maxval), rel=1e-6)
        assert metrics["nmse"][i].item() == pytest.approx(float(evaluate.nmse(gt, pred)), rel=1e-6)
        assert metrics["mse"][i].item() == pytest.approx(evaluate.mse(gt, pred) / maxval**2, rel=1e-6)
    # the test images span a useful range of quality
    assert 0.2 < min(ssims) and max(ssims) < 0.995 and max(ssims) - min(ssims) > 0.2


def test_psnr_is_minus_ten_log10_mse():
    reconstruction, target, data_range = random_pairs(1.0, seed=1)
    metrics = image_metrics(torch.from_numpy(reconstruction), torch.from_numpy(target), torch.from_numpy(data_range))
    torch.testing.assert_close(metrics["psnr"], -10.0 * torch.log10(metrics["mse"]))


def test_exact_reconstruction():
    _, target, data_range = random_pairs(1e-4, seed=2)
    t = torch.from_numpy(target)
    metrics = image_metrics(t, t.clone(), torch.from_numpy(data_range))
    assert (metrics["mse"] == 0).all() and (metrics["nmse"] == 0).all()
    torch.testing.assert_close(metrics["ssim"], torch.ones(4, dtype=torch.float64))
    assert torch.isfinite(metrics["psnr"]).all()
    torch.testing.assert_close(metrics["psnr"], torch.full((4,), 200.0, dtype=torch.float64))


def test_metrics_are_per_image():
    reconstruction, target, data_range = random_pairs(1.0, seed=3)
    r, t, d = torch.from_numpy(reconstruction), torch.from_numpy(target), torch.from_numpy(data_range)
    batch = image_metrics(r, t, d)
    for i in range(4):
        single = image_metrics(r[i : i + 1], t[i : i + 1], d[i : i + 1])
        for name in METRIC_NAMES:
            assert single[name].item() == pytest.approx(batch[name][i].item(), rel=1e-9, abs=1e-12)
    # a better reconstruction scores better on every metric
    better = image_metrics(0.5 * (r + t), t, d)
    for name in METRIC_NAMES:
        improved = better[name] > batch[name] if HIGHER_IS_BETTER[name] else better[name] < batch[name]
        assert improved.all(), name


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        image_metrics(torch.zeros(2, 8, 8), torch.zeros(2, 8, 9), torch.ones(2))
    with pytest.raises(ValueError, match="shape"):
        image_metrics(torch.zeros(8, 8), torch.zeros(8, 8), torch.ones(1))


@pytest.mark.parametrize("scale", [1e30, 1e12, 1e-12, 1e-30])
def test_metrics_are_scale_free(scale):
    """A volume scaled as a whole (images and data range together) scores the same: the metrics are
    computed on images divided by the data range. In float32, squares of 1e30-scale values overflow
    and of 1e-30-scale ones underflow; the SSIM constants (K L)² of L = 1e30 overflow too."""
    reconstruction, target, data_range = random_pairs(1.0, seed=4)
    unscaled = image_metrics(torch.from_numpy(reconstruction), torch.from_numpy(target), torch.from_numpy(data_range))
    scaled = image_metrics(
        torch.from_numpy(reconstruction * np.float32(scale)),
        torch.from_numpy(target * np.float32(scale)),
        torch.from_numpy(data_range * scale),
    )
    for name in METRIC_NAMES:
        assert torch.isfinite(scaled[name]).all(), name
    torch.testing.assert_close(scaled["ssim"], unscaled["ssim"], rtol=0, atol=1e-6)
    torch.testing.assert_close(scaled["psnr"], unscaled["psnr"], rtol=0, atol=1e-6)
    torch.testing.assert_close(scaled["nmse"], unscaled["nmse"], rtol=1e-6, atol=0)
    torch.testing.assert_close(scaled["mse"], unscaled["mse"], rtol=1e-6, atol=0)


def test_metrics_stay_finite_for_any_positive_data_range():
    """A data range far above the images (a damaged 'max', which the data validation refuses) gives
    finite, if meaningless, numbers: every SSIM near 1, since the images look alike at that scale."""
    reconstruction, target, _ = random_pairs(1e-4, seed=5)
    r, t = torch.from_numpy(reconstruction), torch.from_numpy(target)
    for value in (1e30, 1e300, float(np.finfo(np.float32).max), float(2**64 - 1)):
        metrics = image_metrics(r, t, torch.full((4,), value, dtype=torch.float64))
        for name in METRIC_NAMES:
            assert torch.isfinite(metrics[name]).all(), (value, name)
        assert (metrics["ssim"] > 0.999).all()


def _scaled_copy(source, folder, factor):
    """A copy of ``source`` in ``folder`` with k-space, target and 'max' multiplied by ``factor``."""
    folder.mkdir()
    path = folder / source.name
    shutil.copyfile(source, path)
    with h5py.File(path, "r+") as hf:
        for key in ("kspace", "reconstruction_esc"):
            hf[key][...] = hf[key][()] * factor
        hf.attrs["max"] = hf.attrs["max"] * factor
    return folder


def _episode_numbers(folder, reward_metric):
    """Metrics and rewards of 3 steps from every slice, acquiring the lowest legal column."""
    env = ActiveAcquisitionEnv(folder, challenge="singlecoil", budget=3, initial_lines=2, reward_metric=reward_metric)
    numbers = []
    for index in range(env.num_slices):
        _, info = env.reset(seed=0, options={"index": index})
        numbers += [info[name] for name in METRIC_NAMES]
        for _ in range(3):
            _, reward, _, _, info = env.step(int(np.flatnonzero(env.action_masks())[0]))
            numbers += [reward] + [info[name] for name in METRIC_NAMES]
    return np.array(numbers, dtype=np.float64)


@pytest.mark.parametrize("reward_metric", ["ssim", "mse"])
def test_a_rescaled_volume_gives_the_same_env_metrics_and_rewards(tmp_path, singlecoil_volume, reward_metric):
    """The environment's metrics and rewards (reward_metric "mse": the decrease of MSE in units of the
    data range², so scale-free too) do not change when a volume is rescaled within the accepted data
    ranges (the volume's 'max' of about 7e-5 becomes about 7e7 or 7e-15)."""
    unscaled = _episode_numbers(_scaled_copy(singlecoil_volume, tmp_path / "x1", 1.0), reward_metric)
    assert len(unscaled) == 3 * (4 + 3 * 5) and np.isfinite(unscaled).all()
    for factor in (1e12, 1e-10):
        scaled = _episode_numbers(_scaled_copy(singlecoil_volume, tmp_path / f"x{factor:g}", factor), reward_metric)
        np.testing.assert_allclose(scaled, unscaled, rtol=1e-6, atol=1e-6)
