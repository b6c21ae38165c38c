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
"""
import numpy as np
from numba import njit, prange

from ._config import CHUNK, JIT, PJIT


@njit(**PJIT)
def weighted_sum(A, W):
    """``S[j] = sum_e W[e, j] A_e``.

    Pairs with ``W[e, j] == 0`` are skipped (exact for finite A).

    Parameters
    ----------
    A : float (n_pairs, d, d), C-contiguous
    W : float (n_pairs, J)

    Returns
    -------
    float64 (J, d, d)
    """
    E, d, _ = A.shape
    dd = d * d
    J = W.shape[1]
    Af = A.reshape((E, dd))
    n_chunks = (E + CHUNK - 1) // CHUNK
    part = np.zeros((max(n_chunks, 1), J, dd))
    for ch in prange(n_chunks):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        acc = part[ch]
        for e in range(e0, e1):
            Ae = Af[e]
            for j in range(J):
                w = W[e, j]
                if w != 0.0:
                    aj = acc[j]
                    for k in range(dd):
                        aj[k] += w * Ae[k]
    out = np.zeros((J, d, d))
    of = out.reshape((J, dd))
    for ch in range(n_chunks):
        for j in range(J):
            for k in range(dd):
                of[j, k] += part[ch, j, k]
    return out


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
def contract_ar(A, W, R):
    """``out[:, j] = sum_e W[e, j] A_e R[:, j]``.

    Parameters
    ----------
    A : float (n_pairs, d, d), C-contiguous
    W : float (n_pairs, J)
    R : float (d, J)

    Returns
    -------
    float64 (d, J)
    """
    return _times_columns(weighted_sum(A, W), R, False)


@njit(**JIT)
def contract_atc(A, W, C):
    """``out[:, j] = sum_e W[e, j] A_e^T C[:, j]``.

    Parameters
    ----------
    A : float (n_pairs, d, d), C-contiguous
    W : float (n_pairs, J)
    C : float (d, J)

    Returns
    -------
    float64 (d, J)
    """
    return _times_columns(weighted_sum(A, W), C, True)


@njit(**PJIT)
def bilinear_cr(A, C, R):
    """``out[e, j] = C[:, j]^T A_e R[:, j]`` (= ``<vec A_e, vec M_j>``).

    Parameters
    ----------
    A : float (n_pairs, d, d), C-contiguous
    C, R : float (d, J)

    Returns
    -------
    float64 (n_pairs, J)
    """
    E, d, _ = A.shape
    dd = d * d
    J = C.shape[1]
    Af = A.reshape((E, dd))
    # MT[k, j] = vec(M_j)[k]: every entry of A_e updates all J sums at once
    # (J independent additions, not one chain of d*d)
    MT = np.empty((dd, J))
    for i in range(d):
        for m in range(d):
            for j in range(J):
                MT[i * d + m, j] = C[i, j] * R[m, j]
    out = np.zeros((E, J))
    for e in prange(E):
        Ae = Af[e]
        oe = out[e]
        for k in range(dd):
            a = Ae[k]
            Mk = MT[k]
            for j in range(J):
                oe[j] += a * Mk[j]
    return out


@njit(**PJIT)
def lowrank_reconstruct(W, C, R):
    """``B_e = sum_j W[e, j] C[:, j] R[:, j]^T`` for every row of ``W``.

    Parameters
    ----------
    W : float (n, J)
    C, R : float (d, J)

    Returns
    -------
    float64 (n, d, d)
    """
    n, J = W.shape
    d = C.shape[0]
    dd = d * d
    M = np.empty((J, dd))
    for j in range(J):
        for i in range(d):
            for m in range(d):
                M[j, i * d + m] = C[i, j] * R[m, j]
    out = np.zeros((n, d, d))
    of = out.reshape((n, dd))
    for e in prange(n):
        oe = of[e]
        for j in range(J):
            w = W[e, j]
            Mj = M[j]
            for k in range(dd):
                oe[k] += w * Mj[k]
    return out
