"""Pure scalar training losses for energy-based models (DESIGN.md §4)."""

from umrf._loss_common import LossInfo
from umrf.crf import crf_negative_log_likelihood
from umrf.losses._contrastive_divergence import ContrastiveDivergenceInfo, contrastive_divergence
from umrf.losses._denoising import (
    denoising_score_matching,
    geometric_sigmas,
    multiscale_denoising_score_matching,
)
from umrf.losses._score_matching import score_matching, sliced_score_matching

__all__ = [
    "ContrastiveDivergenceInfo",
    "LossInfo",
    "contrastive_divergence",
    "crf_negative_log_likelihood",
    "denoising_score_matching",
    "geometric_sigmas",
    "multiscale_denoising_score_matching",
    "score_matching",
    "sliced_score_matching",
]
