"""Fitting LICCHIE on plain arrays (placeholder on branch r-search; the "fit" helper owns the real one)."""
