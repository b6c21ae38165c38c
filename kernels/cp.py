"""CP contractions of the interaction tensor A (n_pairs, d, d).

The component and weight steps only ever need A through these contractions,
each one pass over A in O(n_pairs J d^2).  Sums over pairs are taken in fixed
chunks of ``CHUNK`` pairs merged in order, so the result does not depend on
the number of threads.
"""
import numpy as np
from numba import njit, prange

from ._config import CHUNK, PJIT


@njit(**PJIT)
def contract_ar(A, W, R):
    """``out[:, j] = sum_e W[e, j] A_e R[:, j]``.

    Parameters
    ----------
    A : float (n_pairs, d, d)
    W : float (n_pairs, J)
    R : float (d, J)

    Returns
    -------
    float64 (d, J)
    """
    E, d, _ = A.shape
    J = W.shape[1]
    n_chunks = (E + CHUNK - 1) // CHUNK
    part = np.zeros((max(n_chunks, 1), d, J))
    for ch in prange(n_chunks):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        acc = part[ch]
        for e in range(e0, e1):
            Ae = A[e]
            for i in range(d):
                for j in range(J):
                    s = 0.0
                    for m in range(d):
                        s += Ae[i, m] * R[m, j]
                    acc[i, j] += W[e, j] * s
    out = np.zeros((d, J))
    for ch in range(n_chunks):
        out += part[ch]
    return out


@njit(**PJIT)
def contract_atc(A, W, C):
    """``out[:, j] = sum_e W[e, j] A_e^T C[:, j]``.

    Parameters
    ----------
    A : float (n_pairs, d, d)
    W : float (n_pairs, J)
    C : float (d, J)

    Returns
    -------
    float64 (d, J)
    """
    E, d, _ = A.shape
    J = W.shape[1]
    n_chunks = (E + CHUNK - 1) // CHUNK
    part = np.zeros((max(n_chunks, 1), d, J))
    tmp = np.zeros((max(n_chunks, 1), d, J))
    for ch in prange(n_chunks):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        acc = part[ch]
        buf = tmp[ch]
        for e in range(e0, e1):
            Ae = A[e]
            for m in range(d):
                for j in range(J):
                    buf[m, j] = 0.0
            # walk A_e row by row (contiguous) and scatter into columns
            for i in range(d):
                for j in range(J):
                    cij = C[i, j]
                    for m in range(d):
                        buf[m, j] += Ae[i, m] * cij
            for m in range(d):
                for j in range(J):
                    acc[m, j] += W[e, j] * buf[m, j]
    out = np.zeros((d, J))
    for ch in range(n_chunks):
        out += part[ch]
    return out


@njit(**PJIT)
def bilinear_cr(A, C, R):
    """``out[e, j] = C[:, j]^T A_e R[:, j]`` (= ``<vec A_e, vec M_j>``).

    Parameters
    ----------
    A : float (n_pairs, d, d)
    C, R : float (d, J)

    Returns
    -------
    float64 (n_pairs, J)
    """
    E, d, _ = A.shape
    J = C.shape[1]
    out = np.empty((E, J))
    for e in prange(E):
        Ae = A[e]
        for j in range(J):
            s = 0.0
            for i in range(d):
                t = 0.0
                for m in range(d):
                    t += Ae[i, m] * R[m, j]
                s += C[i, j] * t
            out[e, j] = s
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
    out = np.empty((n, d, d))
    for e in prange(n):
        for i in range(d):
            for m in range(d):
                s = 0.0
                for j in range(J):
                    s += W[e, j] * C[i, j] * R[m, j]
                out[e, i, m] = s
    return out
