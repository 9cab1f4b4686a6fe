"""mri_rl: active MRI acquisition with reinforcement learning.

Importing the package registers the Gymnasium environment ``mri_rl/ActiveAcquisition-v0``
(by name only: the environment's modules load when it is first made).
"""

__version__ = "0.1.0"

from mri_rl.envs.registration import ENV_ID  # noqa: E402  (registers the environment)

__all__ = ["ENV_ID", "__version__"]
