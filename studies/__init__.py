"""One-off research studies of LICCHIE (see studies/README.md); not part of the package."""
