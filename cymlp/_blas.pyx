# cython: language_level=3
"""Test shims for the ``cdef`` BLAS wrappers of ``_blas.pxd``."""
from cython cimport floating
from cymlp._blas cimport gemm


def gemm_memview(bint trans_a, bint trans_b, floating alpha,
                 const floating[:, ::1] a, const floating[:, ::1] b,
                 floating beta, floating[:, ::1] c):
    """c := alpha op(a) op(b) + beta c   (shapes are checked here, not in the kernel)."""
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int kb = b.shape[1] if trans_b else b.shape[0]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    if k != kb or c.shape[0] != m or c.shape[1] != n:
        raise ValueError("gemm_memview: incompatible shapes")
    with nogil:
        gemm(trans_a, trans_b, m, n, k, alpha, &a[0, 0], a.shape[1],
             &b[0, 0], b.shape[1], beta, &c[0, 0], c.shape[1])
