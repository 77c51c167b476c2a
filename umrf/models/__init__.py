"""Energies and model containers; each model is a pytree that is its own ``params``."""

from umrf.models._discrete_mrf import DiscreteMRF, Factor

__all__ = ["DiscreteMRF", "Factor"]
