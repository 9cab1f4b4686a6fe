"""Gymnasium environments of active MRI acquisition; importing registers them."""

from gymnasium.envs.registration import register, registry

from mri_rl.envs.acquisition import ActiveAcquisitionEnv
from mri_rl.envs.vector import BatchedActiveAcquisitionEnv

ENV_ID = "mri_rl/ActiveAcquisition-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="mri_rl.envs.acquisition:ActiveAcquisitionEnv",
        vector_entry_point="mri_rl.envs.vector:BatchedActiveAcquisitionEnv",
    )

__all__ = ["ENV_ID", "ActiveAcquisitionEnv", "BatchedActiveAcquisitionEnv"]
