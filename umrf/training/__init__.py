"""An optional training loop for energy-based models: jitted optax steps, checkpoints, resume."""

from umrf.training._checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from umrf.training._fit import History, fit
from umrf.training._state import LossFn, TrainState, init_train_state
from umrf.training._step import CPU_COMPILER_OPTIONS, train_step

__all__ = [
    "CPU_COMPILER_OPTIONS",
    "History",
    "LossFn",
    "TrainState",
    "fit",
    "init_train_state",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "train_step",
]
