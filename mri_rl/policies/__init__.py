"""Non-learned acquisition policies (baselines) and the LBCS order learner."""

from mri_rl.policies.baselines import (
    AcquisitionPolicy,
    BalancedOraclePolicy,
    EquispacedPolicy,
    FixedOrderPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    OraclePolicy,
    RandomPolicy,
)
from mri_rl.policies.lbcs import cached_lbcs_order, learn_lbcs_order

__all__ = [
    "AcquisitionPolicy",
    "BalancedOraclePolicy",
    "EquispacedPolicy",
    "FixedOrderPolicy",
    "LBCSPolicy",
    "LowToHighPolicy",
    "OraclePolicy",
    "RandomPolicy",
    "cached_lbcs_order",
    "learn_lbcs_order",
]
