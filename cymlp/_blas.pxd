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
from libc.string cimport memset
from scipy.linalg.cython_blas cimport (
    sgemm, dgemm, sgemv, dgemv, sger, dger, saxpy, daxpy, sscal, dscal, sdot, ddot,
    snrm2, dnrm2)


cdef inline void scal(int n, floating alpha, floating* x) noexcept nogil:
    """x := alpha x"""
    cdef int one = 1
    if floating is float:
        sscal(&n, &alpha, x, &one)
    else:
        dscal(&n, &alpha, x, &one)


cdef inline void gemv(bint trans, int m, int n, floating alpha, const floating* a,
                      int lda, const floating* x, int incx, floating beta, floating* y,
                      int incy) noexcept nogil:
    """y := alpha op(A) x + beta y   (column-major A, m x n, as BLAS sees it)"""
    cdef char t = b'T' if trans else b'N'
    if floating is float:
        sgemv(&t, &m, &n, &alpha, <float*> a, &lda, <float*> x, &incx, &beta, y, &incy)
    else:
        dgemv(&t, &m, &n, &alpha, <double*> a, &lda, <double*> x, &incx, &beta, y, &incy)


cdef inline void ger(int m, int n, floating alpha, const floating* x, int incx,
                     const floating* y, int incy, floating* a, int lda) noexcept nogil:
    """A := alpha x y^T + A   (column-major A, m x n)"""
    if floating is float:
        sger(&m, &n, &alpha, <float*> x, &incx, <float*> y, &incy, a, &lda)
    else:
        dger(&m, &n, &alpha, <double*> x, &incx, <double*> y, &incy, a, &lda)


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb, floating beta,
                      floating* c, int ldc) noexcept nogil:
    """C := alpha op(A) op(B) + beta C   (row-major; C is m x n, op(A) m x k, op(B) k x n).

    Degenerate shapes go to level-2 BLAS, which does not pack the large operand: a
    single-row product (m = 1, a minibatch of one) is a matrix-vector product, and a
    product over k = 1 (the weight gradient of a one-row batch) is a rank-1 update.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int i, j
    if m <= 0 or n <= 0:
        return
    if m == 1 and k > 0:
        # c (n) = alpha op(B)^T a + beta c. Row-major B (k x n, or n x k when trans_b)
        # is column-major n x k (k x n): op(B)^T is that matrix as is (transposed).
        if beta == 0:
            memset(c, 0, n * sizeof(floating))  # an uninitialised c may hold NaN
        gemv(trans_b, k if trans_b else n, n if trans_b else k, alpha, b, ldb,
             a, lda if trans_a else 1, beta, c, 1)
        return
    if k == 1:
        # C (m x n) = alpha a b^T + beta C; as column-major C^T (n x m): += alpha b a^T
        if beta == 0:
            # not scal(0): it would keep NaN found in an uninitialised C
            for i in range(m):
                memset(c + i * ldc, 0, n * sizeof(floating))
        elif beta != 1:
            if ldc == n:
                scal(m * n, beta, c)
            else:
                for i in range(m):
                    scal(n, beta, c + i * ldc)
        ger(n, m, alpha, b, ldb if trans_b else 1, a, 1 if trans_a else lda, c, ldc)
        return
    # C^T = op(B)^T op(A)^T in column-major terms: swap the operands and m, n.
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
