"""An optional training loop for energy-based models: jitted optax steps, checkpoints, resume."""

from umrf.training._checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from umrf.training._epoch import contrastive_divergence_loss, train_epoch
from umrf.training._fit import History, fit
from umrf.training._state import LossFn, TrainState, init_train_state
from umrf.training._step import CPU_COMPILER_OPTIONS, train_step

__all__ = [
    "CPU_COMPILER_OPTIONS",
    "CheckpointError",
    "History",
    "LossFn",
    "TrainState",
    "checkpoint_path",
    "contrastive_divergence_loss",
    "fit",
    "init_train_state",
    "latest_checkpoint",
    "load_checkpoint",
    "prune_checkpoints",
    "save_checkpoint",
    "train_epoch",
    "train_step",
]
