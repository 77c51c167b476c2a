"""Inference on discrete MRFs: exact (variable elimination), mean-field, loopy BP."""
