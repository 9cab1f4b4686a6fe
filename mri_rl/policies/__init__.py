"""Non-learned acquisition policies (baselines), the LBCS order learner and the nearest-neighbour
imitation of a teacher's orders."""

from mri_rl.policies.baselines import (
    AcquisitionPolicy,
    BalancedOraclePolicy,
    EquispacedPolicy,
    FixedOrderPolicy,
    LBCSByKindPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    OraclePolicy,
    RandomPolicy,
)
from mri_rl.policies.lbcs import cached_lbcs_order, learn_lbcs_order
from mri_rl.policies.neighbour_orders import NeighbourOrderPolicy, TeacherOrders
from mri_rl.policies.rollout_oracle import RolloutOraclePolicy

__all__ = [
    "AcquisitionPolicy",
    "BalancedOraclePolicy",
    "EquispacedPolicy",
    "FixedOrderPolicy",
    "LBCSByKindPolicy",
    "LBCSPolicy",
    "LowToHighPolicy",
    "NeighbourOrderPolicy",
    "OraclePolicy",
    "RandomPolicy",
    "RolloutOraclePolicy",
    "TeacherOrders",
    "cached_lbcs_order",
    "learn_lbcs_order",
]
