"""Shared Hypothesis strategies and helpers of the kernel tests (test_kernels_*.py).

No tests live here.  Inputs are laid out as the kernels expect them
(observations grouped by frame, pairs grouped by target, symmetric CSR graph);
the references are in ``naive.py``.
"""
import math

import numba
import numpy as np
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import naive
import licchie.kernels as K

SETTINGS = dict(deadline=None, max_examples=30,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

@st.composite
def recordings(draw, max_sessions=3, max_times=4, max_cells=6):
    """Observation arrays of 1..3 sessions with explicit visibility masks.

    Positions are either generic floats or small integers (duplicate
    positions and distances exactly equal to an integer radius)."""
    s = draw(st.sampled_from([2, 3]))
    grid = draw(st.booleans())
    if grid:
        coord = st.integers(0, 3).map(float)
    else:
        coord = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=64)
    masks, positions = [], []
    for _ in range(draw(st.integers(1, max_sessions))):
        T = draw(st.integers(1, max_times))
        n = draw(st.integers(0, max_cells))
        masks.append(draw(arrays(np.bool_, (n, T))))
        positions.append(draw(arrays(np.float64, (n, T, s), elements=coord)))
    seed = draw(st.integers(0, 2**32 - 1))
    rec = naive.recording(masks, positions, rng=np.random.default_rng(seed))
    if grid:
        radius = draw(st.sampled_from([0.0, 1.0, 2.0, math.sqrt(2.0), math.sqrt(5.0),
                                       3.0, math.inf]))
    else:
        radius = draw(st.one_of(st.just(math.inf), st.just(0.0),
                                st.floats(0.01, 8.0, allow_nan=False)))
    return rec, radius


def _self_src(rec):
    return K.self_sources(rec["cell"], rec["frame"], rec["prev_frame"], rec["n_cells"])


def _unit_columns(M):
    n = np.linalg.norm(M, axis=0)
    n[n == 0] = 1.0
    return np.ascontiguousarray(M / n)


@st.composite
def pair_problems(draw, max_targets=6, max_pairs_per_target=4, max_d=3, max_J=3):
    """A random pair structure, smoothness graph and factors.

    The graph is random (edges between any pairs, those of one target
    included, weights in (0, 1]) and leaves some pairs without neighbours."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = draw(st.integers(1, max_d))
    J = draw(st.integers(1, max_J))
    n_targets = draw(st.integers(1, max_targets))
    S = [draw(st.integers(1, max_pairs_per_target)) for _ in range(n_targets)]
    n_src = draw(st.integers(1, 6))
    n_obs = n_targets + n_src
    E = int(sum(S))
    tgt_obs = np.arange(n_targets, dtype=np.int64)
    tgt_ptr = np.concatenate([[0], np.cumsum(S)]).astype(np.int64)
    src = np.sort(rng.integers(n_targets, n_obs, size=E)).astype(np.int64)
    gain_kind = draw(st.sampled_from(["one", "positive", "with_zero"]))
    gain = np.ones(E) if gain_kind == "one" else rng.uniform(0.2, 1.5, size=E)
    if gain_kind == "with_zero":
        gain[rng.random(E) < 0.3] = 0.0
    p_edge = draw(st.sampled_from([0.0, 0.2, 0.6]))
    ew = {}
    for a in range(E):
        for b in range(a + 1, E):
            if rng.random() < p_edge:
                ew[(a, b)] = float(rng.uniform(0.05, 1.0))
    nbr_ptr, nbr_idx, nbr_w = naive.csr_from_edges(E, ew)
    X = rng.normal(size=(n_obs, d))
    A_old = rng.normal(size=(E, d, d))
    W = rng.normal(size=(E, J))
    C = _unit_columns(rng.normal(size=(d, J)))
    R = _unit_columns(rng.normal(size=(d, J)))
    n_groups = draw(st.integers(1, 3))
    group = rng.integers(0, n_groups, size=E).astype(np.int64)
    Wbar = rng.normal(size=(n_groups, J))
    return dict(A_old=A_old, X=X, tgt_obs=tgt_obs, tgt_ptr=tgt_ptr, src=src, gain=gain,
                nbr_ptr=nbr_ptr, nbr_idx=nbr_idx, nbr_w=nbr_w, W=W, C=C, R=R,
                Wbar=Wbar, group=group, n_groups=n_groups, rng=rng)


def _a_step(p, lam1, lam2, lam3, ridge, cd_max_iter=100000, cd_tol=1e-14, A_old=None):
    A_old = p["A_old"] if A_old is None else A_old
    A_new = np.full_like(A_old, np.nan)
    n_bad = K.a_step(A_old, p["X"], p["tgt_obs"], p["tgt_ptr"], p["src"], p["gain"],
                     p["nbr_ptr"], p["nbr_idx"], p["nbr_w"], p["W"], p["C"], p["R"],
                     lam1, lam2, lam3, ridge, cd_max_iter, cd_tol, A_new)
    return A_new, n_bad


class _threads:
    """Run a block with ``n`` Numba threads, restoring the previous count."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.prev = numba.get_num_threads()
        numba.set_num_threads(min(self.n, numba.config.NUMBA_NUM_THREADS))

    def __exit__(self, *exc):
        numba.set_num_threads(self.prev)
