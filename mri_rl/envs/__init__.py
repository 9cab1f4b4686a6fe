"""Gymnasium environments of active MRI acquisition.

``ENV_ID`` is registered on import; the environment classes load on first use.
"""

from typing import Any

from mri_rl.envs.registration import ENV_ID

__all__ = ["ENV_ID", "ActiveAcquisitionEnv", "BatchedActiveAcquisitionEnv"]


def __getattr__(name: str) -> Any:
    if name == "ActiveAcquisitionEnv":
        from mri_rl.envs.acquisition import ActiveAcquisitionEnv

        return ActiveAcquisitionEnv
    if name == "BatchedActiveAcquisitionEnv":
        from mri_rl.envs.vector import BatchedActiveAcquisitionEnv

        return BatchedActiveAcquisitionEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
