# cython: language_level=3
"""Elementwise activation kernels and their derivatives, selected by an enum.

``K`` holds pre-activations (``n_rows x fan_out``), ``A`` activations
(``n_rows x width``); ``fan_out == width`` except for SwiGLU where ``fan_out == 2 width``
(first ``width`` columns ``a``, last ``width`` columns the gate ``c``).
"""
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf, atan, atanf, erf, erff, sqrt, M_PI


# The one list of activation codes: a cpdef enum, so Python sees it too
# (cymlp._activations.Activation); cymlp.activations derives every name from it.
cpdef enum Activation:
    ACT_IDENTITY = 0
    ACT_STEP = 1
    ACT_SIGMOID = 2
    ACT_TANH = 3
    ACT_ARCTAN = 4
    ACT_RELU = 5
    ACT_LEAKY_RELU = 6
    ACT_GELU = 7
    ACT_GELU_TANH = 8
    ACT_SWISH = 9
    ACT_SWIGLU = 10


# Precision-matched libm calls: float32 kernels must not round-trip through double.
cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _sigmoid(floating x) noexcept nogil:
    """sigma(x) = 1 / (1 + exp(-x)), evaluated so that exp never overflows."""
    cdef floating e
    if x >= 0:
        return 1 / (1 + _exp(-x))
    e = _exp(x)
    return e / (1 + e)


cdef inline floating _gelu_tanh_u(floating x) noexcept nogil:
    """u = sqrt(2/pi) (x + 0.044715 x^3)"""
    return <floating> 0.7978845608028654 * (x + <floating> 0.044715 * x * x * x)


cdef inline void act_forward(int act, Py_ssize_t n_rows, Py_ssize_t width,
                             const floating* K, floating* A,
                             floating slope, floating beta) noexcept nogil:
    """A = g(K)   (forward activation; overwrites A)"""
    cdef Py_ssize_t i, j, n = n_rows * width
    cdef floating k, s
    cdef const floating* krow
    cdef floating* arow
    if act == ACT_IDENTITY:
        for i in range(n):
            A[i] = K[i]
    elif act == ACT_STEP:
        for i in range(n):
            A[i] = 1 if K[i] > 0 else 0
    elif act == ACT_SIGMOID:
        for i in range(n):
            A[i] = _sigmoid(K[i])
    elif act == ACT_TANH:
        for i in range(n):
            A[i] = _tanh(K[i])
    elif act == ACT_ARCTAN:
        for i in range(n):
            if floating is float:
                A[i] = atanf(K[i])
            else:
                A[i] = atan(K[i])
    elif act == ACT_RELU:
        for i in range(n):
            A[i] = K[i] if K[i] > 0 else 0
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            A[i] = K[i] if K[i] > 0 else slope * K[i]
    elif act == ACT_GELU:
        for i in range(n):
            k = K[i]
            if floating is float:
                A[i] = <floating> 0.5 * k * (1 + erff(k * <floating> 0.7071067811865476))
            else:
                A[i] = 0.5 * k * (1 + erf(k * 0.7071067811865476))
    elif act == ACT_GELU_TANH:
        for i in range(n):
            k = K[i]
            A[i] = <floating> 0.5 * k * (1 + _tanh(_gelu_tanh_u(k)))
    elif act == ACT_SWISH:
        for i in range(n):
            A[i] = K[i] * _sigmoid(beta * K[i])
    elif act == ACT_SWIGLU:
        # h = swish(a) * c with a = K[:, :width], c = K[:, width:]
        for i in range(n_rows):
            krow = K + i * 2 * width
            arow = A + i * width
            for j in range(width):
                k = krow[j]
                arow[j] = k * _sigmoid(beta * k) * krow[width + j]


cdef inline void act_backward(int act, Py_ssize_t n_rows, Py_ssize_t width,
                              const floating* K, const floating* A,
                              const floating* dA, floating* dK,
                              floating slope, floating beta) noexcept nogil:
    """dK = dA * g'(K)   (backprop through the activation; overwrites dK)

    The derivative is taken from the output A where that is cheapest (sigmoid, tanh)
    and from the pre-activation K where it must be (arctan, GELU, Swish, SwiGLU).
    ``step`` has no derivative; callers refuse to train it, here it passes zero.
    """
    cdef Py_ssize_t i, j, n = n_rows * width
    cdef floating k, h, s, phi, t, u, du
    cdef const floating* krow
    cdef const floating* darow
    cdef floating* dkrow
    if act == ACT_IDENTITY:
        for i in range(n):
            dK[i] = dA[i]
    elif act == ACT_STEP:
        for i in range(n):
            dK[i] = 0
    elif act == ACT_SIGMOID:
        for i in range(n):
            h = A[i]
            dK[i] = dA[i] * h * (1 - h)
    elif act == ACT_TANH:
        for i in range(n):
            h = A[i]
            dK[i] = dA[i] * (1 - h * h)
    elif act == ACT_ARCTAN:
        for i in range(n):
            k = K[i]
            dK[i] = dA[i] / (1 + k * k)
    elif act == ACT_RELU:
        # load before selecting: a branch-free select lets the compiler vectorise
        for i in range(n):
            h = dA[i]
            dK[i] = h if K[i] > 0 else 0
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            h = dA[i]
            dK[i] = h if K[i] > 0 else slope * h
    elif act == ACT_GELU:
        # d/dk [k Phi(k)] = Phi(k) + k phi(k)
        for i in range(n):
            k = K[i]
            if floating is float:
                phi = <floating> 0.3989422804014327 * expf(<floating> -0.5 * k * k)
                dK[i] = dA[i] * (<floating> 0.5 * (1 + erff(k * <floating> 0.7071067811865476)) + k * phi)
            else:
                phi = 0.3989422804014327 * exp(-0.5 * k * k)
                dK[i] = dA[i] * (0.5 * (1 + erf(k * 0.7071067811865476)) + k * phi)
    elif act == ACT_GELU_TANH:
        for i in range(n):
            k = K[i]
            t = _tanh(_gelu_tanh_u(k))
            du = <floating> 0.7978845608028654 * (1 + <floating> 0.134145 * k * k)
            dK[i] = dA[i] * (<floating> 0.5 * (1 + t) + <floating> 0.5 * k * (1 - t * t) * du)
    elif act == ACT_SWISH:
        for i in range(n):
            k = K[i]
            s = _sigmoid(beta * k)
            dK[i] = dA[i] * (s + beta * k * s * (1 - s))
    elif act == ACT_SWIGLU:
        # h = swish(a) c:  da = dh c swish'(a),  dc = dh swish(a)
        for i in range(n_rows):
            krow = K + i * 2 * width
            darow = dA + i * width
            dkrow = dK + i * 2 * width
            for j in range(width):
                k = krow[j]
                s = _sigmoid(beta * k)
                dkrow[j] = darow[j] * krow[width + j] * (s + beta * k * s * (1 - s))
                dkrow[width + j] = darow[j] * k * s
