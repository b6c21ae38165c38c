"""Shared pytest configuration.

Hypothesis profiles (select with ``HYPOTHESIS_PROFILE=<name>`` or
``pytest --hypothesis-profile=<name>``):

* ``default``: no deadline (Numba compiles on the first call, and the machine
  may be shared); otherwise Hypothesis' defaults.
* ``ci``: the same, derandomized so that CI runs are reproducible.
* ``thorough``: many more examples, for a local soak.

Tests that keep the suite fast set ``@settings(max_examples=...)``
themselves, which takes precedence over the profile.
"""
import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("default", **_common)
settings.register_profile("ci", derandomize=True, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
