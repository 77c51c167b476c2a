"""Static graph structure: cliques, separation, moralisation, colouring, lattices."""
