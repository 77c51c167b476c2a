"""Inference on discrete MRFs: exact (variable elimination), mean-field, loopy BP."""

from umrf.inference._ais import (
    AISResult,
    AnnealedParams,
    GeometricPath,
    RBMBaseRatePath,
    ais,
    ais_betas,
    geometric_path,
    rbm_base_rate_path,
)
from umrf.inference._elimination import EliminationPlan, EliminationStep
from umrf.inference._enumerate import enumerate_joint, unnormalized_log_joint
from umrf.inference._exact import (
    Marginals,
    elimination_plan,
    log_partition,
    log_partition_and_marginals,
    map_assignment,
    marginals,
)
from umrf.inference._independence import independence_gap, is_independent
from umrf.inference._loopy_bp import BeliefPropagationResult, loopy_belief_propagation
from umrf.inference._mean_field import MeanFieldResult, mean_field

__all__ = [
    "AISResult",
    "AnnealedParams",
    "GeometricPath",
    "RBMBaseRatePath",
    "ais",
    "ais_betas",
    "geometric_path",
    "rbm_base_rate_path",
    "BeliefPropagationResult",
    "MeanFieldResult",
    "loopy_belief_propagation",
    "mean_field",
    "EliminationPlan",
    "EliminationStep",
    "Marginals",
    "elimination_plan",
    "enumerate_joint",
    "independence_gap",
    "is_independent",
    "log_partition",
    "log_partition_and_marginals",
    "map_assignment",
    "marginals",
    "unnormalized_log_joint",
]
