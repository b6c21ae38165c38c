"""One place for the compilation options every kernel uses.

fastmath is off: NaN checks on missing data must not be compiled away
(numba#6217), and exact tie-breaking in the neighbour search needs IEEE
arithmetic.

Caching: compiled kernels are cached on disk by default so that a second
process does not pay the compile time again.  Set ``LICCHIE_CACHE=0`` to turn
it off, e.g. when many processes start at once on a fresh install and could
write the same cache files concurrently (numba#4807).
"""
import os

CACHE = os.environ.get("LICCHIE_CACHE", "1") not in ("0", "false", "False", "no")

# Reductions over pairs are split into chunks of this many pairs, each chunk
# writing its own partial sum, merged serially in chunk order: the result is
# then the same for any number of threads.
CHUNK = 2048

JIT = dict(cache=CACHE, nogil=True)
# No kernel uses parallel=True: tasks run on a thread pool (``_parallel``),
# which compiles once instead of through Numba's second, parallel pipeline.
