"""Human-judgment loaders and correlation statistics (not yet implemented; see the issue tracker)."""
