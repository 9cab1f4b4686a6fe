"""mri_rl: active MRI acquisition with reinforcement learning.

Importing the package first chooses torch's thread policy (:mod:`mri_rl.threads`: on at most 2
CPUs, unless ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set, the thread count follows the CPUs
other programs leave free; ``MRI_RL_THREADS=default`` opts out), recorded in ``THREADS``. Then it
registers the Gymnasium environment ``mri_rl/ActiveAcquisition-v0`` (by name only: the
environment's modules load when it is first made).
"""

from mri_rl.threads import configure_threads

THREADS = configure_threads()

__version__ = "0.1.0"

from mri_rl.envs.registration import ENV_ID  # noqa: E402  (registers the environment)

__all__ = ["ENV_ID", "THREADS", "__version__"]
