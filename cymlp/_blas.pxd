# cython: language_level=3
"""Row-major, fused-precision wrappers over ``scipy.linalg.cython_blas``.

This is the only place that branches on precision for BLAS calls and the only place
that knows BLAS is column-major. Every array handed to these wrappers is C-contiguous
(row-major). A row-major ``r x c`` array with leading dimension ``ld`` is, to BLAS, the
column-major ``c x r`` array with the same leading dimension, i.e. its transpose. So
``C = op(A) op(B)`` (row-major) is computed as ``C^T = op(B)^T op(A)^T`` (column-major):
the operands are swapped, ``m`` and ``n`` are swapped, and the transpose flags are kept.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport (
    sgemm, dgemm, saxpy, daxpy, sscal, dscal, sdot, ddot, snrm2, dnrm2)


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb, floating beta,
                      floating* c, int ldc) noexcept nogil:
    """C := alpha op(A) op(B) + beta C   (row-major; C is m x n, op(A) m x k, op(B) k x n)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)


cdef inline void axpy(int n, floating alpha, const floating* x,
                      floating* y) noexcept nogil:
    """y := alpha x + y"""
    cdef int one = 1
    if floating is float:
        saxpy(&n, &alpha, <float*> x, &one, y, &one)
    else:
        daxpy(&n, &alpha, <double*> x, &one, y, &one)


cdef inline void scal(int n, floating alpha, floating* x) noexcept nogil:
    """x := alpha x"""
    cdef int one = 1
    if floating is float:
        sscal(&n, &alpha, x, &one)
    else:
        dscal(&n, &alpha, x, &one)


cdef inline double dot(int n, const floating* x, const floating* y) noexcept nogil:
    """returns x . y"""
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float*> x, &one, <float*> y, &one)
    else:
        return ddot(&n, <double*> x, &one, <double*> y, &one)


cdef inline double nrm2(int n, const floating* x) noexcept nogil:
    """returns ||x||_2"""
    cdef int one = 1
    if floating is float:
        return snrm2(&n, <float*> x, &one)
    else:
        return dnrm2(&n, <double*> x, &one)
