"""Perturbation catalogue and diagnostic-dataset builders (not yet implemented; see the issue tracker)."""
