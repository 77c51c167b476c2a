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

__all__ = [
    "ChainMarginals",
    "chain_log_likelihood",
    "chain_log_partition",
    "chain_marginals",
    "chain_sample",
    "chain_score",
    "viterbi",
]
