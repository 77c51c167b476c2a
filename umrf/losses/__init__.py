"""Pure scalar training losses for energy-based models (DESIGN.md §4)."""
