"""Registration of ``mri_rl/ActiveAcquisition-v0`` with Gymnasium, by entry-point strings only."""

from gymnasium.envs.registration import register, registry

ENV_ID = "mri_rl/ActiveAcquisition-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="mri_rl.envs.acquisition:ActiveAcquisitionEnv",
        vector_entry_point="mri_rl.envs.vector:BatchedActiveAcquisitionEnv",
    )
