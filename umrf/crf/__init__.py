"""Conditional random fields: linear-chain CRFs and mean-field grid CRFs."""
