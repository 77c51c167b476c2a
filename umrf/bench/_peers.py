"""Peer libraries of the suite: which are installed, and how to install the others."""

from __future__ import annotations

import importlib.metadata

__all__ = ["PEERS", "install_hint", "peer_version"]

#: Peer package -> what it is compared on (pins as in umrf's ``[bench]`` extra).
PEERS: dict[str, str] = {
    "blackjax": "MALA and ULA (blackjax.mala, blackjax.sgld) on the Langevin targets",
    "thrml": "checkerboard Gibbs on the Ising lattices (IsingEBM + IsingSamplingProgram)",
}


def peer_version(name: str) -> str | None:
    """The installed version of peer ``name``, or ``None``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def install_hint(names: list[str]) -> str:
    """How to install the missing peers ``names``."""
    return f"pip install 'umrf[bench]'   (or just: pip install {' '.join(sorted(names))})"
