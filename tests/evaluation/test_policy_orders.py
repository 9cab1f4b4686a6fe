"""``mri-rl orders``: a learned policy's acquisition orders, recorded on any folder, are the orders it
takes when evaluated; the file trains a reconstructor's masks; bad inputs are one-line errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from mri_rl.acquisition_orders import read_orders
from mri_rl.agents import REINFORCE
from mri_rl.cli import main
from mri_rl.envs import ENV_ID
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.report import read_rows_csv
from mri_rl.evaluation.rollout import acquisition_orders
from mri_rl.kspace import initial_mask
from mri_rl.provenance import checkpoint_fingerprint
from mri_rl.reconstruct.training_masks import build_mask_sampler
from mri_rl.task import AcquisitionTask

TASK = AcquisitionTask(budget=3, initial_lines=2, reward_metric="ssim")


@pytest.fixture(scope="module")
def policy(singlecoil_root, tmp_path_factory):
    """An untrained REINFORCE checkpoint of TASK (its network is seeded, so its orders differ by slice)."""
    train = singlecoil_root / "singlecoil_train"
    env = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data_path=train, task=TASK)
    return REINFORCE(env, net_arch=(16,), seed=3).save(tmp_path_factory.mktemp("pg") / "pg.pt")


@pytest.fixture(scope="module")
def other_policy(singlecoil_root, tmp_path_factory):
    """Another untrained REINFORCE checkpoint of TASK on the same data: an ensemble member beside ``policy``."""
    train = singlecoil_root / "singlecoil_train"
    env = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data_path=train, task=TASK)
    return REINFORCE(env, net_arch=(16,), seed=4).save(tmp_path_factory.mktemp("pg") / "other.pt")


@pytest.mark.parametrize("form", ["{a}", "{a}+{b}@0.5"], ids=["one checkpoint", "an ensemble with a prior"])
def test_recorded_orders_are_the_orders_the_policy_takes_when_evaluated(
    policy, other_policy, singlecoil_root, tmp_path, capsys, form
):
    text, out = form.format(a=policy, b=other_policy), tmp_path / "orders.json"
    assert main(["orders", "--policy", text, "--data", str(singlecoil_root / "singlecoil_test"),
                 "--out", str(out), "--batch-size", "2", "--no-progress"]) == 0  # fmt: skip
    recorded = read_orders(out)
    episodes = len(recorded.orders)
    assert f"wrote {out}: {episodes} episodes, {3 * episodes} acquisitions" in capsys.readouterr().out
    setup = EvaluationSetup(data=singlecoil_root, task=TASK, seeds=(0,), batch_size=2)
    evaluate_policies(setup, [f"pg={text}"], tmp_path / "results", progress=False)
    evaluated = acquisition_orders(read_rows_csv(tmp_path / "results" / "metrics.csv"))
    assert dict(zip(recorded.names, (list(o) for o in recorded.orders))) == evaluated
    assert recorded.initial_lines == 2
    settings = recorded.record["settings"]
    if "+" in text:
        assert settings["policy_fingerprints"] == [checkpoint_fingerprint(policy), checkpoint_fingerprint(other_policy)]
        assert settings["frequency_prior"] == 0.5
    else:
        assert settings["policy_fingerprint"] == checkpoint_fingerprint(policy)
    mask = build_mask_sampler({"kind": "orders", "path": str(out)}, TASK)(recorded.width, 0, recorded.width, 0)
    acquired = set(np.flatnonzero(mask & ~initial_mask(recorded.width, 0, recorded.width, 2)))
    assert any(acquired == set(order[:k]) for order in recorded.orders for k in range(4))


def test_the_policy_s_training_slices_are_accepted(policy, singlecoil_root, tmp_path):
    out = tmp_path / "orders.json"
    assert main(["orders", "--policy", str(policy), "--data", str(singlecoil_root / "singlecoil_train"),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert all(len(order) == 3 for order in read_orders(out).orders)


@pytest.mark.parametrize("what", ["not a checkpoint", "an empty folder", "a bad prior weight", "a repeated member"])
def test_bad_inputs_are_one_line_errors_and_write_nothing(policy, singlecoil_root, tmp_path, capsys, what):
    text, data = str(policy), singlecoil_root / "singlecoil_test"
    if what == "not a checkpoint":
        text = str(tmp_path / "bogus.pt")
        (tmp_path / "bogus.pt").write_bytes(b"no")
    elif what == "an empty folder":
        data = tmp_path / "empty"
        data.mkdir()
    else:
        text = f"{policy}@-1" if what == "a bad prior weight" else f"{policy}+{policy}"
    out = tmp_path / "orders.json"
    assert main(["orders", "--policy", text, "--data", str(data), "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mri-rl: error:") and len(error.strip().splitlines()) == 1
    assert (str(data) if what == "an empty folder" else text) in error
    assert not out.exists()
