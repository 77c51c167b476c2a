"""Conditional random fields: linear-chain CRFs and mean-field grid CRFs."""

from umrf.crf._chain import (
    ChainMarginals,
    chain_log_likelihood,
    chain_log_partition,
    chain_marginals,
    chain_sample,
    chain_score,
    viterbi,
)
from umrf.crf._mean_field import (
    GridKernels,
    grid_crf_energy,
    mean_field,
    mean_field_free_energy,
    mean_field_update,
    potts_compatibility,
)

__all__ = [
    "ChainMarginals",
    "GridKernels",
    "chain_log_likelihood",
    "chain_log_partition",
    "chain_marginals",
    "chain_sample",
    "chain_score",
    "grid_crf_energy",
    "mean_field",
    "mean_field_free_energy",
    "mean_field_update",
    "potts_compatibility",
    "viterbi",
]
