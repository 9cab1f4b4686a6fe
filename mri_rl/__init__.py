"""mri_rl: active MRI acquisition with reinforcement learning.

Importing the package registers the Gymnasium environment ``mri_rl/ActiveAcquisition-v0``.
"""

from mri_rl import envs  # noqa: F401  (registers the environments)

__version__ = "0.1.0"
