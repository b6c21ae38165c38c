"""Population feature spaces (MODEL.md "Populations", paper App. A.2).

Layout: the feature axis of ``X`` and of every ``A_e`` is the union of the
populations' features; an observation's missing features are 0.  Each
*feature space* ``s`` (the populations that share one feature list) has its
own target and source effects ``C[s], R[s]`` (d, J), zero on the features the
space lacks and of unit norm on the others.  A pair's *class* is its (target
space, source space); its motifs are ``C[p][:, j] R[q][:, j]^T``, which are
zero outside the class's block, and so is its ``A_e``.

With one space (2-D ``C`` and ``R``, no ``pair_class``) everything is the
model of MODEL.md: :func:`class_motifs` then returns the one set of motifs
and class 0 for every pair.
"""
import numpy as np
from numba import njit

from . import _parallel
from ._config import CHUNK, JIT


def class_motifs(C, R, pair_class, class_space, n_pairs):
    """Flattened motifs of every class, and every pair's class.

    Parameters
    ----------
    C, R : float64 (d, J), or (n_spaces, d, J) with ``pair_class``
    pair_class : int64 (n_pairs,) or None
    class_space : int64 (n_classes, 2) or None
        (target space, source space) of each class.
    n_pairs : int

    Returns
    -------
    M : float64 (n_classes, J, d*d), C-contiguous
        ``M[c, j] = vec(C[p][:, j] R[q][:, j]^T)`` for class ``c = (p, q)``
        (one class for 2-D ``C``).
    cls : int64 (n_pairs,)
    """
    if pair_class is None:
        J = C.shape[1]
        # vec M_j = vec(c_j r_j^T), row j
        M = np.ascontiguousarray((C.T[:, :, None] * R.T[:, None, :]).reshape(1, J, -1))
        return M, np.zeros(n_pairs, np.int64)
    J = C.shape[2]
    cs = np.asarray(class_space, dtype=np.int64)
    M = np.ascontiguousarray(
        (C[cs[:, 0]].transpose(0, 2, 1)[:, :, :, None]
         * R[cs[:, 1]].transpose(0, 2, 1)[:, :, None, :]).reshape(len(cs), J, -1),
        dtype=np.float64)
    return M, np.ascontiguousarray(pair_class, dtype=np.int64)


@njit(**JIT)
def _weighted_sum_class_chunks(ch0, ch1, Af, W, cls, part):
    """Chunks ``ch0:ch1`` of :func:`weighted_sum_classes`:
    ``part[ch, c, j] = sum_{e in chunk, cls[e] = c} W[e, j] Af[e]``."""
    E, dd = Af.shape
    J = W.shape[1]
    for ch in range(ch0, ch1):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        pc = part[ch]
        for e in range(e0, e1):
            Pe = pc[cls[e]]
            Ae = Af[e]
            for j in range(J):
                w = W[e, j]
                if w != 0.0:
                    Pj = Pe[j]
                    for k in range(dd):
                        Pj[k] += w * np.float64(Ae[k])


def weighted_sum_classes(A, W, pair_class, n_classes):
    """``S[c, j] = sum_{e: pair_class[e] = c} W[e, j] A_e``: one pass over A.

    Parameters
    ----------
    A : float64 or float32 (n_pairs, d, d), C-contiguous
    W : float64 (n_pairs, J)
    pair_class : int64 (n_pairs,)
    n_classes : int

    Returns
    -------
    float64 (n_classes, J, d, d)
        Summed in float64 in chunks merged in order (independent of threads).
    """
    E, d, _ = A.shape
    J = W.shape[1]
    n_chunks = (E + CHUNK - 1) // CHUNK
    part = np.zeros((n_chunks, n_classes, J, d * d))
    _parallel.run(_weighted_sum_class_chunks, n_chunks, A.reshape(E, d * d),
                  np.ascontiguousarray(W, dtype=np.float64),
                  np.ascontiguousarray(pair_class, dtype=np.int64), part)
    out = np.zeros((n_classes, J, d * d))
    for ch in range(n_chunks):
        out += part[ch]
    return out.reshape(n_classes, J, d, d)


@njit(**JIT)
def _bilinear_class_chunks(ch0, ch1, Af, M, cls, out):
    """Chunks ``ch0:ch1`` of :func:`bilinear_classes`."""
    E, dd = Af.shape
    J = M.shape[1]
    for ch in range(ch0, ch1):
        e0 = ch * CHUNK
        e1 = min(E, e0 + CHUNK)
        for e in range(e0, e1):
            Mc = M[cls[e]]
            Ae = Af[e]
            for j in range(J):
                Mj = Mc[j]
                s = 0.0
                for k in range(dd):
                    s += np.float64(Ae[k]) * Mj[k]
                out[e, j] = s


def bilinear_classes(A, C, R, pair_class, class_space):
    """``out[e, j] = C[p][:, j]^T A_e R[q][:, j]`` for pair ``e`` of class (p, q).

    Parameters
    ----------
    A : float64 or float32 (n_pairs, d, d), C-contiguous
    C, R : float64 (n_spaces, d, J)
    pair_class : int64 (n_pairs,)
    class_space : int64 (n_classes, 2)

    Returns
    -------
    float64 (n_pairs, J)
    """
    E = A.shape[0]
    M, cls = class_motifs(C, R, pair_class, class_space, E)
    out = np.zeros((E, M.shape[1]))
    n_chunks = (E + CHUNK - 1) // CHUNK
    _parallel.run(_bilinear_class_chunks, n_chunks, A.reshape(E, M.shape[2]), M, cls, out)
    return out
