"""Static graph structure: cliques, separation, moralisation, colouring, lattices."""

from umrf.graphs._cliques import cliques, is_clique, maximal_cliques
from umrf.graphs._colouring import colouring
from umrf.graphs._lattice import grid
from umrf.graphs._moralize import moralize
from umrf.graphs._separation import markov_blanket, separated

__all__ = [
    "cliques",
    "colouring",
    "grid",
    "is_clique",
    "markov_blanket",
    "maximal_cliques",
    "moralize",
    "separated",
]
