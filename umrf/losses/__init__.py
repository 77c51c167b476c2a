"""Pure scalar training losses for energy-based models (DESIGN.md §4)."""

from umrf._loss_common import LossInfo
from umrf.crf import crf_negative_log_likelihood
from umrf.losses._contrastive_divergence import ContrastiveDivergenceInfo, contrastive_divergence
from umrf.losses._denoising import (
    denoising_score_matching,
    geometric_sigmas,
    multiscale_denoising_score_matching,
)
from umrf.losses._jem import (
    JEM_BUFFER_CAPACITY,
    JEM_REINIT_PROB,
    JEM_SGLD_NOISE,
    JEM_SGLD_STEP_SIZE,
    JEM_SGLD_STEPS,
    JEMInfo,
    jem,
    jem_class_energy,
    jem_class_position,
    jem_energy,
    jem_replay_buffer,
    jem_sgld,
)
from umrf.losses._score_matching import score_matching, sliced_score_matching

__all__ = [
    "ContrastiveDivergenceInfo",
    "JEM_BUFFER_CAPACITY",
    "JEM_REINIT_PROB",
    "JEM_SGLD_NOISE",
    "JEM_SGLD_STEPS",
    "JEM_SGLD_STEP_SIZE",
    "JEMInfo",
    "LossInfo",
    "contrastive_divergence",
    "crf_negative_log_likelihood",
    "denoising_score_matching",
    "geometric_sigmas",
    "jem",
    "jem_class_energy",
    "jem_class_position",
    "jem_energy",
    "jem_replay_buffer",
    "jem_sgld",
    "multiscale_denoising_score_matching",
    "score_matching",
    "sliced_score_matching",
]
