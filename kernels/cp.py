"""CP contractions of the interaction tensor A (n_pairs, d, d).

The component and weight steps only ever need A through these contractions,
each one pass over A in O(n_pairs J d^2).  Sums over pairs are taken in fixed
chunks of ``CHUNK`` pairs merged in order, so the result does not depend on
the number of threads.

The component step's two contractions share one pass:
``sum_e W[e,j] A_e r_j = S_j r_j`` and ``sum_e W[e,j] A_e^T c_j = S_j^T c_j``
with ``S_j = sum_e W[e,j] A_e`` (:func:`weighted_sum`), an update of d*d
contiguous entries per pair and component that vectorises; the products
with ``r_j`` or ``c_j`` then cost O(J d^2) once.

Both contractions are matrix products of a chunk of ``vec A_e`` rows with
a small matrix (``(CHUNK, d*d) x (d*d, J)`` and its transpose), and each
chunk calls BLAS (``np.dot`` in nopython mode).  At the paper's size that is
2-3 times faster than loops that keep the J running sums in memory.  A
float32 chunk is widened to float64 first, so the sums are exactly the
float64 sums of the float32 values.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import CHUNK, JIT


@njit(**JIT)
def _weighted_sum_chunks(ch0, ch1, Af, W, part):
    """Chunks ``ch0:ch1`` (``CHUNK`` pairs each) of :func:`weighted_sum`
    (``Af`` = A as (n_pairs, d*d)): ``part[ch] = W[chunk]^T Af[chunk]``."""
    E = Af.shape[0]
    for ch in range(ch0, ch1):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        # a view for float64, a widened copy for float32
        np.dot(W[e0:e1].T, np.asarray(Af[e0:e1], dtype=np.float64), part[ch])


def weighted_sum(A, W):
    """``S[j] = sum_e W[e, j] A_e``.

    Parameters
    ----------
    A : float64 or float32 (n_pairs, d, d), C-contiguous
    W : float64 (n_pairs, J)

    Returns
    -------
    float64 (J, d, d)
        Summed in float64 whatever the dtype of ``A``.
    """
    E, d, _ = A.shape
    J = W.shape[1]
    n_chunks = (E + CHUNK - 1) // CHUNK
    part = np.zeros((n_chunks, J, d * d))
    _parallel.run(_weighted_sum_chunks, n_chunks, A.reshape(E, d * d),
                  np.ascontiguousarray(W, dtype=np.float64), part)
    out = np.zeros((J, d * d))
    for ch in range(n_chunks):  # in chunk order, whatever the threads
        out += part[ch]
    return out.reshape(J, d, d)


@njit(**JIT)
def _times_columns(S, F, transpose):
    """``out[:, j] = S[j] F[:, j]`` (or ``S[j]^T F[:, j]``)."""
    J, d, _ = S.shape
    out = np.zeros((d, J))
    for j in range(J):
        for i in range(d):
            for m in range(d):
                if transpose:
                    out[m, j] += S[j, i, m] * F[i, j]
                else:
                    out[i, j] += S[j, i, m] * F[m, j]
    return out


@njit(**JIT)
def _unit_sphere_sweep(P, G, FF, F):
    """Core of :func:`unit_sphere_sweep` (in place)."""
    d, J = F.shape
    v = np.empty(d)
    for j in range(J):
        for k in range(d):
            v[k] = P[k, j]
        for i in range(J):
            if i != j:
                s = G[j, i] * FF[i, j]
                for k in range(d):
                    v[k] -= s * F[k, i]
        nv = 0.0
        for k in range(d):
            nv += v[k] * v[k]
        nv = np.sqrt(nv)
        if nv > 0.0:
            for k in range(d):
                F[k, j] = v[k] / nv


def unit_sphere_sweep(P, G, FF, F):
    """One Gauss-Seidel sweep of the component step's exact unit-sphere updates.

    For ``j = 0, ..., J-1`` in turn (each update sees the previous ones),
    ``F[:, j] <- v / ||v||`` with ``v = P[:, j] - sum_{i != j} G[j, i] FF[i, j]
    F[:, i]``; a column with ``v = 0`` is kept.  With ``F = C``,
    ``P = times_columns(S, R)``, ``G = W^T W`` and ``FF = R^T R`` this is the
    update of every ``c_j`` (MODEL.md, "Fitting", step 2); likewise for ``R``
    with ``P = times_columns(S, C, transpose=True)`` and ``FF = C^T C``.

    Parameters
    ----------
    P : float64 (d, J)
    G, FF : float64 (J, J)
    F : float64 (d, J)

    Returns
    -------
    float64 (d, J)
        The updated copy of ``F``.
    """
    F = np.array(F, dtype=np.float64, order="C")
    _unit_sphere_sweep(np.ascontiguousarray(P, dtype=np.float64),
                       np.ascontiguousarray(G, dtype=np.float64),
                       np.ascontiguousarray(FF, dtype=np.float64), F)
    return F


def times_columns(S, F, transpose=False):
    """``out[:, j] = S[j] F[:, j]`` (``S[j]^T F[:, j]`` with ``transpose``).

    With ``S = weighted_sum(A, W)`` this is ``sum_e W[e, j] A_e F[:, j]``
    (or ``A_e^T``) without another pass over ``A``.

    Parameters
    ----------
    S : float64 (J, d, d)
    F : float (d, J)
    transpose : bool

    Returns
    -------
    float64 (d, J)
    """
    return _times_columns(np.ascontiguousarray(S, dtype=np.float64),
                          np.ascontiguousarray(F, dtype=np.float64), bool(transpose))


@njit(**JIT)
def _bilinear_chunks(ch0, ch1, Af, MT, out):
    """Chunks ``ch0:ch1`` of :func:`bilinear_cr`: ``out[chunk] = Af[chunk] MT``."""
    E = Af.shape[0]
    for ch in range(ch0, ch1):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        np.dot(np.asarray(Af[e0:e1], dtype=np.float64), MT, out[e0:e1])


def bilinear_cr(A, C, R):
    """``out[e, j] = C[:, j]^T A_e R[:, j]`` (= ``<vec A_e, vec M_j>``).

    Parameters
    ----------
    A : float64 or float32 (n_pairs, d, d), C-contiguous
    C, R : float64 (d, J)

    Returns
    -------
    float64 (n_pairs, J)
        Summed in float64 whatever the dtype of ``A``.
    """
    E = A.shape[0]
    J = C.shape[1]
    # MT[k, j] = vec(M_j)[k]
    MT = np.ascontiguousarray((C[:, None, :] * R[None, :, :]).reshape(-1, J))
    out = np.zeros((E, J))
    n_chunks = (E + CHUNK - 1) // CHUNK
    _parallel.run(_bilinear_chunks, n_chunks, A.reshape(E, MT.shape[0]), MT, out)
    return out


@njit(**JIT)
def _lowrank_into(W, C, R, out):
    """Core of :func:`lowrank_reconstruct`: sums in float64, one rounding
    per entry when ``out`` is float32."""
    n, J = W.shape
    d = C.shape[0]
    dd = d * d
    M = np.empty((J, dd))
    for j in range(J):
        for i in range(d):
            for m in range(d):
                M[j, i * d + m] = C[i, j] * R[m, j]
    of = out.reshape((n, dd))
    acc = np.empty(dd)
    for e in range(n):
        for k in range(dd):
            acc[k] = 0.0
        for j in range(J):
            w = W[e, j]
            Mj = M[j]
            for k in range(dd):
                acc[k] += w * Mj[k]
        oe = of[e]
        for k in range(dd):
            oe[k] = acc[k]


def lowrank_reconstruct(W, C, R, dtype=np.float64):
    """``B_e = sum_j W[e, j] C[:, j] R[:, j]^T`` for every row of ``W``.

    Parameters
    ----------
    W : float (n, J)
    C, R : float (d, J)
    dtype : float64 or float32
        Of the result (the sums are taken in float64 either way).

    Returns
    -------
    (n, d, d) of ``dtype``
    """
    n = W.shape[0]
    d = C.shape[0]
    out = np.empty((n, d, d), dtype=dtype)
    _lowrank_into(W, C, R, out)
    return out


def _sq_norm(A):
    """``sum A**2`` in float64, one chunk at a time (no temporary of A's size)."""
    E = A.shape[0]
    Af = A.reshape(E, -1) if E else A.reshape(0, 0)
    s = 0.0
    for e0 in range(0, E, CHUNK):
        c = np.asarray(Af[e0:e0 + CHUNK], dtype=np.float64)
        s += float(np.einsum("ij,ij->", c, c))
    return s


def cp_als(A, W, C, R, n_iter_max, tol):
    """CP-ALS of ``A_e ~ sum_j W[e, j] c_j r_j^T`` from the factors given.

    The algorithm of tensorly's ``parafac`` with ``normalize_factors=False``,
    no line search and its default stopping rule (the relative reconstruction
    error changed by less than ``tol`` between iterations): each iteration
    solves for ``W``, then ``C``, then ``R`` with the other two fixed.  The
    three MTTKRPs are :func:`bilinear_cr` and :func:`times_columns` of one
    :func:`weighted_sum` (``C`` and ``R`` both use the new ``W``), two passes
    over ``A`` per iteration.  tensorly forms them from unfoldings of ``A``
    and explicit Khatri-Rao products of ``n_pairs * d`` rows, copies of
    ``A``'s size per mode, which made its PARAFAC the slowest part of a fit
    at a million pairs.

    Parameters
    ----------
    A : float64 or float32 (n_pairs, d, d), C-contiguous
    W : float (n_pairs, J)
    C, R : float (d, J)
        Starting factors.
    n_iter_max : int
    tol : float

    Returns
    -------
    W : float64 (n_pairs, J), C, R : float64 (d, J), n_iter : int
        The factors after ``n_iter`` iterations.

    Raises
    ------
    numpy.linalg.LinAlgError
        When a normal-equation matrix is singular (as tensorly).
    """
    W = np.asarray(W, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    norm = np.sqrt(_sq_norm(A))
    errors = []
    it = 0
    for it in range(1, int(n_iter_max) + 1):
        CC, RR = C.T @ C, R.T @ R
        W = np.linalg.solve((CC * RR).T, bilinear_cr(A, C, R).T).T
        WW = W.T @ W
        S = weighted_sum(A, W)
        C = np.linalg.solve((WW * RR).T, times_columns(S, R).T).T
        CC = C.T @ C
        m2 = times_columns(S, C, transpose=True)
        R = np.linalg.solve((WW * CC).T, m2.T).T
        if tol:
            # ||A - rec||^2 = ||A||^2 + ||rec||^2 - 2 <A, rec>, <A, rec> from
            # the last MTTKRP
            rec2 = float(np.sum(WW * CC * (R.T @ R)))
            err = np.sqrt(abs(norm ** 2 + rec2 - 2.0 * float(np.sum(m2 * R)))) / norm
            errors.append(err)
            if len(errors) >= 2 and abs(errors[-2] - errors[-1]) < tol:
                break
    return (np.ascontiguousarray(W), np.ascontiguousarray(C), np.ascontiguousarray(R),
            it)
