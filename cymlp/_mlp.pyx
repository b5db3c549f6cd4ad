# cython: language_level=3
"""The compiled training engine: forward pass, softmax cross-entropy, hand-derived
backward pass, optimiser updates and the sparse embedding updates, for one minibatch at
a time, in C loops and BLAS calls with the GIL released.

Symbols follow ``docs/model.md``: layer ``l`` has weights ``W[l]`` (``fan_in x fan_out``,
the note's ``H`` and ``U``), bias ``b[l]``, pre-activation ``K[l]`` (the note's ``k`` and
``z``) and activation ``A[l+1]`` (the note's ``h``); ``A[0]`` is the input ``f``.

The structure and the parameter layout come from a :class:`cymlp._network.Network`; the
engine copies its layer table into typed arrays and checks that every slice lies inside
the flat parameter vector, but never derives the layout itself. Its inputs are
:class:`cymlp._inputs.DenseInputs` or :class:`~cymlp._inputs.TokenInputs`, validated
when they were made; the engine compares their width and largest id with its own shape.

Memory: every buffer is allocated by :meth:`Engine.allocate` (once per fit) or by the
caller; nothing is allocated while batches train. All parameters live in one flat array
``params`` (``W[0], b[0], W[1], b[1], ...``; absent biases take no space), which the
estimators expose as NumPy views (``coefs_``, ``intercepts_``). ``grads``, ``state1`` and
``state2`` have the same layout, so an optimiser update is one loop over the flat array.
"""
import numpy as np

from cpython.exc cimport PyErr_CheckSignals
from cython cimport floating
from libc.math cimport exp, fabs, log, sqrt, sqrtf, isfinite, pow
from libc.string cimport memcpy, memset

from cymlp._blas cimport gemm, axpy, scal, dot, nrm2
from cymlp._activations cimport (act_forward, act_backward, _sigmoid, ACT_IDENTITY,
                                 ACT_STEP, ACT_SIGMOID, ACT_TANH, ACT_RELU,
                                 ACT_LEAKY_RELU, ACT_SWIGLU)
from cymlp._inputs import DenseInputs, SparseInputs, TokenInputs


cdef enum:
    SOLVER_SGD = 0
    SOLVER_ADAGRAD = 1
    SOLVER_ADAM = 2

cdef enum:
    # how many tokens ahead of the one being added the bag encoder asks for E's rows
    PREFETCH_AHEAD = 6

cdef enum:
    # Engine.bad_rows: what a train call wrote into rows of the embedding table
    BAD_E = 1          # a NaN or an infinity in E
    BAD_E_STATE1 = 2   # a NaN in E_state1
    BAD_E_STATE2 = 4   # a NaN in E_state2

#: the flag of Engine.bad_rows for each array whose written rows the engine checks
BAD_ROW_FLAGS = {"E": BAD_E, "E_state1": BAD_E_STATE1, "E_state2": BAD_E_STATE2}

cdef enum:
    ENC_DENSE = 0
    ENC_WINDOW = 1
    ENC_BAG = 2

cdef extern from *:
    """
    #ifndef CYMLP_CHECKS
    #define CYMLP_CHECKS 0
    #endif
    """
    int CYMLP_CHECKS

# Row kernels of the softmax, in C so that their loops vectorise (the reductions under
# OpenMP SIMD pragmas, built with -fopenmp-simd; no OpenMP runtime). On x86-64 with GCC
# each is also compiled for AVX-512 (which brings FMA: the float exponential's polynomial
# is then evaluated with fused multiply-adds) and for AVX2, and the CPU picks the version
# when the module loads.
cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <stddef.h>
    #if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) \
        && !defined(__SANITIZE_ADDRESS__)
    #define CYMLP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define CYMLP_CLONES
    #endif

    /* exp(x) in float, in a form whose loops vectorise: x = n ln 2 + r with
       n = round(x / ln 2) (by adding and subtracting 1.5 * 2^23) and |r| <= ln 2 / 2
       (ln 2 in two parts, so n ln 2 is exact), exp(r) by its Taylor polynomial to r^7
       (truncation error below 1e-8 relative), 2^n written into the exponent bits.
       Within 2 ulp of exp (1.19 measured); 0 below -87.3, where exp leaves the
       normal range; exp(88) above 88. */
    static inline float cymlp_expf(float x) {
        const float lo = -87.3f, hi = 88.0f, shifter = 12582912.0f;
        union { int32_t i; float f; } scale;
        float xc = x < lo ? lo : x, n, r, p;
        xc = xc > hi ? hi : xc;
        n = (xc * 1.44269504088896341f + shifter) - shifter;
        r = (xc - n * 0.693359375f) + n * 2.12194440054690583e-4f;
        p = 1.0f / 5040.0f;
        p = p * r + 1.0f / 720.0f;
        p = p * r + 1.0f / 120.0f;
        p = p * r + 1.0f / 24.0f;
        p = p * r + 1.0f / 6.0f;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        scale.i = ((int32_t)n + 127) << 23;
        p = p * scale.f;
        return x < lo ? 0.0f : p;
    }

    /* cymlp_xent_S (T = float, suffix f, exp cymlp_expf; T = double, d, libm's exp):
       the summed cross-entropy of the softmax of t rows of m logits, and its gradient
       dZ; see _softmax_xent. The row maximum and the sums are SIMD reductions. */
    #define CYMLP_WIDE_ROW 32  /* classes from which a row's sums are SIMD reductions */
    #define CYMLP_XENT_KERNEL(T, S, EXP)                                            \\
    /* the index of the first entry of z[0..m) equal to v (m if none): in a short   \\
       row without a branch, in a wide one eight entries at a time */               \\
    CYMLP_CLONES static ptrdiff_t cymlp_first_eq_##S(const T* z, ptrdiff_t m, T v) {\\
        ptrdiff_t c = 0, j, best = m;                                               \\
        int hit;                                                                    \\
        if (m < CYMLP_WIDE_ROW) {                                                   \\
            for (c = m - 1; c >= 0; c--) best = z[c] == v ? c : best;               \\
            return best;                                                            \\
        }                                                                           \\
        for (; c + 8 <= m; c += 8) {                                                \\
            hit = 0;                                                                \\
            _Pragma("omp simd reduction(|:hit)")                                    \\
            for (j = 0; j < 8; j++) hit |= z[c + j] == v;                           \\
            if (hit) break;                                                         \\
        }                                                                           \\
        for (; c < m; c++)                                                          \\
            if (z[c] == v) return c;                                                \\
        return m;                                                                   \\
    }                                                                               \\
    CYMLP_CLONES static double cymlp_xent_##S(ptrdiff_t t, ptrdiff_t m, const T* Z, \\
                                              const int* y, const ptrdiff_t* rows,  \\
                                              double eps, const T* sw, T* dZ,       \\
                                              double* correct) {                    \\
        double total = 0.0, off = eps / m, wi = 1.0, s, zsum, lse;                  \\
        T foff = (T) (eps / m), fw = 1, mx, inv_s;                                  \\
        ptrdiff_t i, c, best;                                                       \\
        for (i = 0; i < t; i++) {                                                   \\
            const T* z = Z + i * m;                                                 \\
            T* dz = dZ + i * m;                                                     \\
            int yi = y[rows[i]];                                                    \\
            if (sw != NULL) {                                                       \\
                fw = sw[rows[i]];                                                   \\
                wi = fw;                                                            \\
            }                                                                       \\
            mx = z[0];                                                              \\
            zsum = 0.0;                                                             \\
            if (m >= CYMLP_WIDE_ROW) {                                              \\
                /* one exp per entry: dz holds exp(z - max) until normalised */     \\
                _Pragma("omp simd reduction(max:mx)")                               \\
                for (c = 1; c < m; c++) mx = z[c] > mx ? z[c] : mx;                 \\
                s = 0.0;                                                            \\
                _Pragma("omp simd reduction(+:s)")                                  \\
                for (c = 0; c < m; c++) {                                           \\
                    dz[c] = EXP(z[c] - mx);                                         \\
                    s += dz[c];                                                     \\
                }                                                                   \\
                if (eps > 0) {                                                      \\
                    _Pragma("omp simd reduction(+:zsum)")                           \\
                    for (c = 0; c < m; c++) zsum += z[c];                           \\
                }                                                                   \\
            } else {                                                                \\
                /* a short row: SIMD reductions cost more than they save; the       \\
                   exponentials are still taken in one vector loop */               \\
                for (c = 1; c < m; c++) mx = z[c] > mx ? z[c] : mx;                 \\
                _Pragma("omp simd")                                                 \\
                for (c = 0; c < m; c++) dz[c] = EXP(z[c] - mx);                     \\
                s = 0.0;                                                            \\
                for (c = 0; c < m; c++) s += dz[c];                                 \\
                if (eps > 0)                                                        \\
                    for (c = 0; c < m; c++) zsum += z[c];                           \\
            }                                                                       \\
            /* the first largest entry (none if z holds a NaN) */                   \\
            best = cymlp_first_eq_##S(z, m, mx);                                    \\
            lse = mx + log(s);                                                      \\
            total += wi * (lse - (1.0 - eps) * z[yi] - off * zsum);                 \\
            inv_s = (T) (1.0 / s);                                                  \\
            _Pragma("omp simd")                                                     \\
            for (c = 0; c < m; c++) dz[c] = dz[c] * inv_s - foff;                   \\
            dz[yi] -= (T) (1.0 - eps);                                              \\
            if (sw != NULL) {                                                       \\
                _Pragma("omp simd")                                                 \\
                for (c = 0; c < m; c++) dz[c] *= fw;                                \\
            }                                                                       \\
            if (best == yi) *correct += wi;                                         \\
        }                                                                           \\
        return total;                                                               \\
    }
    CYMLP_XENT_KERNEL(float, f, cymlp_expf)
    CYMLP_XENT_KERNEL(double, d, exp)
    """
    float cymlp_expf(float x) nogil
    double cymlp_xent_f(Py_ssize_t t, Py_ssize_t m, const float* Z, const int* y,
                        const Py_ssize_t* rows, double eps, const float* sw, float* dZ,
                        double* correct) nogil
    double cymlp_xent_d(Py_ssize_t t, Py_ssize_t m, const double* Z, const int* y,
                        const Py_ssize_t* rows, double eps, const double* sw, double* dZ,
                        double* correct) nogil


# Elementwise passes over the rows of a layer, in C for the same reason (and with the
# same AVX2 clones): bias, ReLU and Leaky ReLU forward and backward, column sums.
cdef extern from *:
    """
    /* For T = float (suffix f) and double (d); n rows of m entries, row-major.
       cymlp_bias_S: K[i, :] += b.
       cymlp_relu_S: K[i, :] += b (unless b is NULL), then A = K where K > 0, else 0
         (slope * K if leaky; a NaN gives 0 or NaN), A may be K.
       cymlp_relu_back_S: dK = dA where H > 0, else 0 (slope * dA if leaky), H being K
         or A (same signs for a slope >= 0), dK may be dA; with sums also
         sums[j] += dK[i, j].
       cymlp_finite_S: whether x[0..n) holds no NaN and no infinity (x - x is 0 for
         every finite x and NaN otherwise); cymlp_no_nan_S: whether it holds no NaN.
       cymlp_col_sums_S: out[j] += scale * D[i, j].
       The rows are summed in order, so the sums are those of a plain loop. */
    #define CYMLP_DENSE_KERNELS(T, S)                                               \\
    CYMLP_CLONES static void cymlp_bias_##S(ptrdiff_t n, ptrdiff_t m, const T* b,   \\
                                            T* K) {                                 \\
        ptrdiff_t i, j;                                                             \\
        for (i = 0; i < n; i++) {                                                   \\
            T* k = K + i * m;                                                       \\
            _Pragma("omp simd")                                                     \\
            for (j = 0; j < m; j++) k[j] += b[j];                                   \\
        }                                                                           \\
    }                                                                               \\
    CYMLP_CLONES static void cymlp_relu_##S(ptrdiff_t n, ptrdiff_t m, const T* b,   \\
                                            T* K, T* A, T slope, int leaky) {       \\
        ptrdiff_t i, j;                                                             \\
        for (i = 0; i < n; i++) {                                                   \\
            T* k = K + i * m;                                                       \\
            T* a = A + i * m;                                                       \\
            if (b != NULL && A == K) {  /* in place: one pass */                    \\
                _Pragma("omp simd")                                                 \\
                for (j = 0; j < m; j++) {                                           \\
                    T v = k[j] + b[j];                                              \\
                    k[j] = v > 0 ? v : (leaky ? slope * v : (T) 0);                 \\
                }                                                                   \\
                continue;                                                           \\
            }                                                                       \\
            if (b != NULL) {                                                        \\
                _Pragma("omp simd")                                                 \\
                for (j = 0; j < m; j++) k[j] += b[j];                               \\
            }                                                                       \\
            _Pragma("omp simd")                                                     \\
            for (j = 0; j < m; j++) {                                               \\
                T v = k[j];                                                         \\
                a[j] = v > 0 ? v : (leaky ? slope * v : (T) 0);                     \\
            }                                                                       \\
        }                                                                           \\
    }                                                                               \\
    CYMLP_CLONES static void cymlp_relu_back_##S(ptrdiff_t n, ptrdiff_t m,          \\
                                                 const T* H, const T* dA, T* dK,    \\
                                                 T* sums, T slope, int leaky) {     \\
        ptrdiff_t i, j;                                                             \\
        for (i = 0; i < n; i++) {                                                   \\
            const T* h = H + i * m;                                                 \\
            const T* da = dA + i * m;                                               \\
            T* dk = dK + i * m;                                                     \\
            /* dA is read whatever the sign (a plain load, not a masked one), and  \\
               the sums are made in the same pass */                                \\
            if (sums != NULL) {                                                     \\
                _Pragma("omp simd")                                                 \\
                for (j = 0; j < m; j++) {                                           \\
                    T d = da[j];                                                    \\
                    T g = h[j] > 0 ? d : (leaky ? slope * d : (T) 0);               \\
                    dk[j] = g;                                                      \\
                    sums[j] += g;                                                   \\
                }                                                                   \\
            } else {                                                                \\
                _Pragma("omp simd")                                                 \\
                for (j = 0; j < m; j++) {                                           \\
                    T d = da[j];                                                    \\
                    dk[j] = h[j] > 0 ? d : (leaky ? slope * d : (T) 0);             \\
                }                                                                   \\
            }                                                                       \\
        }                                                                           \\
    }                                                                               \\
    CYMLP_CLONES static int cymlp_finite_##S(const T* x, ptrdiff_t n) {             \\
        int bad = 0;                                                                \\
        ptrdiff_t i;                                                                \\
        _Pragma("omp simd reduction(|:bad)")                                        \\
        for (i = 0; i < n; i++) bad |= !(x[i] - x[i] == 0);                         \\
        return !bad;                                                                \\
    }                                                                               \\
    CYMLP_CLONES static int cymlp_no_nan_##S(const T* x, ptrdiff_t n) {             \\
        int bad = 0;                                                                \\
        ptrdiff_t i;                                                                \\
        _Pragma("omp simd reduction(|:bad)")                                        \\
        for (i = 0; i < n; i++) bad |= x[i] != x[i];                                \\
        return !bad;                                                                \\
    }                                                                               \\
    CYMLP_CLONES static void cymlp_col_sums_##S(ptrdiff_t n, ptrdiff_t m, T scale,  \\
                                                const T* D, T* out) {               \\
        ptrdiff_t i, j;                                                             \\
        for (i = 0; i < n; i++) {                                                   \\
            const T* d = D + i * m;                                                 \\
            _Pragma("omp simd")                                                     \\
            for (j = 0; j < m; j++) out[j] += scale * d[j];                         \\
        }                                                                           \\
    }
    CYMLP_DENSE_KERNELS(float, f)
    CYMLP_DENSE_KERNELS(double, d)

    /* Ask for the cache lines of bytes [p, p + n) ahead of their use (a row of E or
       of its optimiser state, at a random place in a table larger than the caches),
       to be read or (write != 0) written. A hint only. */
    static inline void cymlp_prefetch(const void* p, ptrdiff_t n, int write) {
    #if defined(__GNUC__)
        const char* c = (const char*) p;
        ptrdiff_t o;
        for (o = 0; o < n; o += 64) {
            if (write)
                __builtin_prefetch(c + o, 1, 3);
            else
                __builtin_prefetch(c + o, 0, 3);
        }
    #else
        (void) p; (void) n; (void) write;
    #endif
    }
    """
    void cymlp_prefetch(const void* p, Py_ssize_t n, int write) nogil
    void cymlp_bias_f(Py_ssize_t n, Py_ssize_t m, const float* b, float* K) nogil
    void cymlp_bias_d(Py_ssize_t n, Py_ssize_t m, const double* b, double* K) nogil
    void cymlp_relu_f(Py_ssize_t n, Py_ssize_t m, const float* b, float* K, float* A,
                      float slope, int leaky) nogil
    void cymlp_relu_d(Py_ssize_t n, Py_ssize_t m, const double* b, double* K, double* A,
                      double slope, int leaky) nogil
    void cymlp_relu_back_f(Py_ssize_t n, Py_ssize_t m, const float* H, const float* dA,
                           float* dK, float* sums, float slope, int leaky) nogil
    void cymlp_relu_back_d(Py_ssize_t n, Py_ssize_t m, const double* H,
                           const double* dA, double* dK, double* sums, double slope,
                           int leaky) nogil
    int cymlp_finite_f(const float* x, Py_ssize_t n) nogil
    int cymlp_finite_d(const double* x, Py_ssize_t n) nogil
    int cymlp_no_nan_f(const float* x, Py_ssize_t n) nogil
    int cymlp_no_nan_d(const double* x, Py_ssize_t n) nogil
    void cymlp_col_sums_f(Py_ssize_t n, Py_ssize_t m, float scale, const float* D,
                          float* out) nogil
    void cymlp_col_sums_d(Py_ssize_t n, Py_ssize_t m, double scale, const double* D,
                          double* out) nogil


def _expf(const float[::1] x):
    """The engine's float exp (``cymlp_expf``) of each entry, for the tests."""
    out = np.empty(x.shape[0], dtype=np.float32)
    cdef float[::1] o = out
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        o[i] = cymlp_expf(x[i])
    return out


def _layer_pass(int act, floating[:, ::1] K, floating[:, ::1] A, b, floating[:, ::1] dA,
                floating[:, ::1] dK, sums, double slope, double beta):
    """The engine's passes over one hidden layer, for the tests: K += b (b None: no
    bias) and A = g(K); then dK = dA * g'(K) and, unless sums is None, sums = the
    column sums of dK. A may be K and dK may be dA (the training workspaces do that
    for the activations of ``_IN_PLACE``)."""
    cdef Py_ssize_t t = K.shape[0], fo = K.shape[1]
    cdef Py_ssize_t width = fo // 2 if act == ACT_SWIGLU else fo
    cdef floating[::1] bv, sv
    cdef floating* bp = NULL
    cdef floating* sp = NULL
    if (A.shape[0] != t or A.shape[1] != width or dA.shape[0] != t
            or dA.shape[1] != width or dK.shape[0] != t or dK.shape[1] != fo or t < 1):
        raise ValueError("_layer_pass: inconsistent shapes")
    if b is not None:
        bv = b
        if bv.shape[0] != fo:
            raise ValueError("_layer_pass: b has the wrong length")
        bp = &bv[0]
    if sums is not None:
        sv = sums
        if sv.shape[0] != fo:
            raise ValueError("_layer_pass: sums has the wrong length")
        sp = &sv[0]
    _bias_act_forward(act, t, fo, width, bp, &K[0, 0], &A[0, 0], <floating> slope,
                      <floating> beta)
    _act_backward_sums(act, t, fo, width, &K[0, 0], &A[0, 0], &dA[0, 0], &dK[0, 0], sp,
                       <floating> slope, <floating> beta)


#: True in a debug build (CYMLP_CYTHON_DEBUG=1): Cython bounds and wraparound checks on
BOUNDS_CHECKED = bool(CYMLP_CHECKS)

SOLVERS = {"sgd": SOLVER_SGD, "adagrad": SOLVER_ADAGRAD, "adam": SOLVER_ADAM}
ENCODERS = {"dense": ENC_DENSE, "window": ENC_WINDOW, "bag": ENC_BAG}

#: examples trained per call into the compiled loop; signals (Ctrl-C) are checked between
CHUNK_ROWS = 16384


class DivergenceError(FloatingPointError):
    """The loss of a batch became NaN or infinite."""


# activations whose backward pass needs only their output (Leaky ReLU: with a slope
# >= 0, the sign of the output is that of the input; the engine refuses other slopes)
_IN_PLACE = frozenset((ACT_IDENTITY, ACT_STEP, ACT_SIGMOID, ACT_TANH, ACT_RELU,
                       ACT_LEAKY_RELU))


def _check_range(name, a, low, high):
    if a.size and (a.min() < low or a.max() >= high):
        raise ValueError(f"Engine: {name} must lie in [{low}, {high}); got values from "
                         f"{a.min()} to {a.max()}")


cdef class Engine:
    """Flat parameters, optimiser state and workspaces of one :class:`Network`.

    Parameters
    ----------
    network : cymlp._network.Network
        Layers, activation, biases, dtype and the embedding table (if any).
    """
    cdef readonly object network
    cdef readonly int n_layers, n_classes, n_features
    cdef int[::1] fan_in, fan_out, width, act, has_bias
    cdef Py_ssize_t[::1] w_off, b_off, k_off, a_off, dk_off
    cdef readonly Py_ssize_t n_params
    cdef double _leaky_slope
    cdef public double swish_beta, label_smoothing, alpha
    cdef public int solver
    cdef public double momentum, beta_1, beta_2, epsilon
    cdef public bint nesterov
    cdef public long long step
    cdef readonly object dtype
    cdef public object params, grads, state1, state2
    # embedding encoder
    cdef readonly int encoder, window, embed_dim, n_vocab
    cdef readonly bint pool_mean, multilabel
    cdef public bint train_embeddings
    cdef public object E, E_state1, E_state2
    # workspaces
    cdef object work
    cdef readonly Py_ssize_t t_max, max_touched
    cdef readonly bint dense_rows
    cdef Py_ssize_t x_off, da_off, dx_off, eg_off, work_size
    cdef int[::1] slot_of, touched
    cdef readonly Py_ssize_t n_touched
    # what the last train call wrote into rows of E and its state: BAD_ROW_FLAGS (the
    # rows it did not write did not change)
    cdef readonly int bad_rows

    def __init__(self, network):
        cdef Py_ssize_t l
        layers = list(network.layers)
        self.network = network
        self.dtype = np.dtype(network.dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError("Engine: dtype must be float32 or float64")
        self.n_layers = len(layers)
        self.n_params = network.n_params
        self.n_features = network.n_features
        self.n_classes = network.n_outputs
        self.multilabel = network.output == "sigmoid"
        self.fan_in = np.array([L.fan_in for L in layers], dtype=np.intc)
        self.fan_out = np.array([L.fan_out for L in layers], dtype=np.intc)
        self.width = np.array([L.width for L in layers], dtype=np.intc)
        self.act = np.array([L.activation for L in layers], dtype=np.intc)
        self.has_bias = np.array([L.has_bias for L in layers], dtype=np.intc)
        self.w_off = np.array([L.w_offset for L in layers], dtype=np.intp)
        self.b_off = np.array([L.b_offset for L in layers], dtype=np.intp)
        # the kernels index without bounds checks: every slice must be inside params,
        # and the layers must chain (fan_in of a layer = width of the one before)
        for l in range(self.n_layers):
            if (self.w_off[l] < 0 or self.w_off[l] + <Py_ssize_t> self.fan_in[l]
                    * self.fan_out[l] > self.n_params
                    or (self.has_bias[l] and (self.b_off[l] < 0 or self.b_off[l]
                                              + self.fan_out[l] > self.n_params))
                    or self.fan_in[l] != (self.width[l - 1] if l > 0 else self.n_features)
                    or self.fan_out[l] != self.width[l] * (
                        2 if self.act[l] == ACT_SWIGLU else 1)
                    or self.width[l] < 1 or self.fan_in[l] < 1):
                raise ValueError(f"Engine: inconsistent description of layer {l}")
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.state1 = np.zeros(0, dtype=self.dtype)
        self.state2 = np.zeros(0, dtype=self.dtype)
        self.leaky_slope = network.leaky_slope
        self.swish_beta = network.swish_beta
        self.label_smoothing = 0.0
        self.alpha = 0.0
        self.solver = SOLVER_SGD
        self.momentum = 0.0
        self.nesterov = False
        self.beta_1 = 0.9
        self.beta_2 = 0.999
        self.epsilon = 1e-8
        self.step = 0
        emb = network.embedding
        self.encoder = ENC_DENSE if emb is None else ENCODERS[emb.kind]
        self.pool_mean = True
        if emb is None:
            self.E = np.zeros((1, 1), dtype=self.dtype)
        else:
            if emb.n_features != self.n_features or emb.n_vocab < 2:
                raise ValueError("Engine: inconsistent embedding description")
            self.window = emb.window
            self.embed_dim = emb.embed_dim
            self.n_vocab = emb.n_vocab
            self.pool_mean = emb.pool_mean
            self.E = np.zeros((self.n_vocab, self.embed_dim), dtype=self.dtype)
        self.E_state1 = np.zeros((0, 0), dtype=self.dtype)
        self.E_state2 = np.zeros((0, 0), dtype=self.dtype)
        self.train_embeddings = True
        self.t_max = 0
        self.max_touched = 0

    @property
    def leaky_slope(self):
        """Slope of Leaky ReLU below zero (>= 0: the training workspaces keep only its
        output, whose sign is that of its input)."""
        return self._leaky_slope

    @leaky_slope.setter
    def leaky_slope(self, double value):
        if not value >= 0:
            raise ValueError(f"Engine: leaky_slope must be >= 0, got {value!r}")
        self._leaky_slope = value

    # ------------------------------------------------------------------ state
    def set_solver(self, int solver):
        """Select the optimiser and (re)allocate its state (zeros)."""
        self.solver = solver
        n_state = 0
        if solver == SOLVER_ADAGRAD or (solver == SOLVER_SGD and self.momentum > 0):
            n_state = 1
        elif solver == SOLVER_ADAM:
            n_state = 2
        self.state1 = np.zeros(self.n_params if n_state >= 1 else 0, dtype=self.dtype)
        self.state2 = np.zeros(self.n_params if n_state >= 2 else 0, dtype=self.dtype)
        shape = self.E.shape if self.encoder != ENC_DENSE else (0, 0)
        self.E_state1 = np.zeros(shape if n_state >= 1 else (0, 0), dtype=self.dtype)
        self.E_state2 = np.zeros(shape if n_state >= 2 else (0, 0), dtype=self.dtype)
        self.step = 0

    def set_state(self, solver, step, arrays):
        """Restore a saved optimiser state: ``arrays`` maps ``state1``, ``state2``,
        ``E_state1``, ``E_state2`` to arrays of the shapes :meth:`set_solver` gives."""
        self.set_solver(solver)
        for name in ("state1", "state2", "E_state1", "E_state2"):
            current = getattr(self, name)
            given = np.asarray(arrays[name])
            if given.shape != current.shape or given.dtype != current.dtype:
                raise ValueError(f"Engine: {name} must be {current.dtype} of shape "
                                 f"{current.shape}, got {given.dtype} {given.shape}")
            current[...] = given
        self.step = step

    def allocate(self, Py_ssize_t t_max, Py_ssize_t max_tokens=0, bint dense_rows=True):
        """Allocate the workspaces for batches of at most ``t_max`` rows.

        ``max_tokens`` bounds the number of token occurrences in one batch (embedding
        encoders); it sizes the buffer of summed gradient rows of ``E``. Without
        ``dense_rows`` there is no room for the rows of ``A[0]`` (sparse input is
        multiplied from its CSR arrays: its rows are never formed).
        """
        cdef Py_ssize_t l, off = 0, max_w = 0
        if t_max < 1:
            raise ValueError("Engine.allocate: t_max must be >= 1")
        self.k_off = np.empty(self.n_layers, dtype=np.intp)
        self.a_off = np.empty(self.n_layers, dtype=np.intp)
        self.dk_off = np.empty(self.n_layers, dtype=np.intp)
        self.x_off = off
        self.dense_rows = dense_rows or self.encoder != ENC_DENSE
        if self.dense_rows:
            off += t_max * self.n_features
        for l in range(self.n_layers):
            # a hidden activation whose derivative can be read from its output
            # overwrites its input (A[l] in K[l]'s place), and the gradient that
            # reaches it is written where its dK goes and multiplied there: fewer
            # bytes to move per batch
            self.k_off[l] = off
            off += t_max * self.fan_out[l]
            if l < self.n_layers - 1 and self.act[l] in _IN_PLACE:
                self.a_off[l] = self.k_off[l]
            else:
                self.a_off[l] = off
                off += t_max * self.width[l]
            self.dk_off[l] = off
            off += t_max * self.fan_out[l]
            if l < self.n_layers - 1 and self.act[l] == ACT_SWIGLU:
                # (dA is half as wide as dK there: a buffer of its own, see _step)
                max_w = max(max_w, self.width[l])
        self.da_off = off
        off += t_max * max_w
        self.dx_off = off
        if self.encoder != ENC_DENSE:
            off += t_max * self.n_features
        self.eg_off = off
        self.max_touched = 0
        if self.encoder != ENC_DENSE:
            self.max_touched = min(max(max_tokens, 1), self.n_vocab)
            off += self.max_touched * self.embed_dim
            self.slot_of = np.full(self.n_vocab, -1, dtype=np.intc)
            self.touched = np.zeros(self.max_touched, dtype=np.intc)
        self.work_size = off
        self.work = np.zeros(off, dtype=self.dtype)
        self.t_max = t_max

    def ensure_allocated(self, inputs, Py_ssize_t batch_size):
        """Allocate the workspaces unless those there already fit batches of
        ``batch_size`` rows of ``inputs``."""
        max_tokens = inputs.max_tokens(batch_size)
        dense = not isinstance(inputs, SparseInputs)
        if (self.t_max < batch_size or self.max_touched < min(max_tokens, self.n_vocab)
                or (dense and not self.dense_rows)):
            self.allocate(max(batch_size, self.t_max), max_tokens,
                          dense_rows=dense or self.dense_rows)

    def _check(self, inputs):
        """Verify, in Python, everything the kernels will index without bounds checks.

        ``inputs`` were validated when they were made; what is left is to compare their
        kind, width and largest token id with this engine's shape (their dtype and
        layout are checked when the kernels' typed views are taken). Returns the
        number of examples.
        """
        if self.encoder == ENC_DENSE:
            if not isinstance(inputs, (DenseInputs, SparseInputs)):
                raise TypeError("Engine: a dense engine takes DenseInputs or SparseInputs")
            if inputs.n_features != self.n_features:
                raise ValueError(f"Engine: X has the wrong number of columns (expected a "
                                 f"2-D array of shape (n, {self.n_features}), got "
                                 f"{inputs.n_features} columns)")
            return inputs.n
        if not isinstance(inputs, TokenInputs):
            raise TypeError("Engine: an embedding engine takes TokenInputs")
        if inputs.max_id >= self.n_vocab:
            raise ValueError(f"Engine: token ids must lie in [0, {self.n_vocab}); got ids "
                             f"from {inputs.min_id} to {inputs.max_id}")
        if self.encoder == ENC_WINDOW:
            if inputs.kind != "window" or inputs.window != self.window:
                raise ValueError(f"Engine: ids have the wrong number of columns (window ids "
                                 f"must have shape (n, {self.window}))")
        elif inputs.kind != "bag":
            raise ValueError("Engine: a bag engine needs bags (ids with indptr)")
        return inputs.n

    def _check_targets(self, targets, Py_ssize_t n, sample_weight):
        """The targets as the kernels read them: class indices (int32, shape (n,),
        in [0, n_classes)) for the softmax output, an indicator matrix (int8, shape
        (n, n_classes)) for the sigmoid output; the sample weights (n,) or None.
        Returns the total weight."""
        targets = np.asarray(targets)
        if self.multilabel:
            if targets.dtype != np.int8 or targets.shape != (n, self.n_classes):
                raise ValueError(f"Engine: multi-label targets must be an int8 indicator "
                                 f"matrix of shape ({n}, {self.n_classes}), got "
                                 f"{targets.dtype} of shape {targets.shape}")
        else:
            if targets.ndim != 1 or targets.shape[0] != n:
                raise ValueError(f"Engine: {targets.shape[0] if targets.ndim else 0} labels "
                                 f"for {n} examples")
            _check_range("labels", targets, 0, self.n_classes)
        if sample_weight is None:
            return float(n)
        w = np.asarray(sample_weight)
        if w.shape != (n,):
            raise ValueError(f"Engine: sample weights must have shape ({n},), got {w.shape}")
        return float(w.sum(dtype=np.float64))

    # ------------------------------------------------------------------ training
    def train(self, inputs, targets, const Py_ssize_t[::1] order, Py_ssize_t batch_size,
              double lr, sample_weight=None):
        """Train on the examples in ``order`` (one epoch) in minibatches of ``batch_size``.

        ``targets``: see :meth:`_check_targets`. With ``sample_weight`` (one weight >= 0
        per example, in the engine's dtype) each batch's loss and gradient are the
        weighted mean, normalised by the batch's total weight, so that an integer weight
        k acts like k copies of the example; a batch of total weight 0 is skipped.

        Returns ``(loss_sum, correct)``: the sum over batches of batch-mean loss times
        the batch's weight, and the (weighted) number of rows predicted right, both
        measured before each batch's update. Raises :class:`DivergenceError` when a
        batch loss is not finite (the parameters are then those before that batch's
        update). Ctrl-C is honoured between chunks of :data:`CHUNK_ROWS` examples.
        Afterwards :attr:`bad_rows` tells whether a row of E (or of its optimiser
        state) that this call wrote holds NaN or infinity.
        """
        cdef Py_ssize_t start, stop, n_order = order.shape[0], chunk
        if batch_size < 1 or batch_size > self.t_max:
            raise ValueError("Engine.train: batch_size outside [1, t_max]")
        n = self._check(inputs)
        try:
            self._check_targets(targets, n, sample_weight)
        except ValueError as exc:
            raise ValueError(str(exc).replace("Engine:", "Engine.train:")) from None
        _check_range("order", np.asarray(order), 0, n)
        if (self.encoder != ENC_DENSE
                and min(inputs.max_tokens(batch_size), self.n_vocab) > self.max_touched):
            raise ValueError("Engine.train: batches hold more tokens than allocated")
        if isinstance(inputs, DenseInputs) and not self.dense_rows:
            raise ValueError("Engine.train: no workspace for dense rows (allocate first)")
        chunk = max(1, CHUNK_ROWS // batch_size) * batch_size
        loss, correct = 0.0, 0.0
        self.bad_rows = 0
        for start in range(0, n_order, chunk):
            stop = min(n_order, start + chunk)
            if self.dtype == np.float32:
                l, c = _train_range[float](self, inputs, targets, sample_weight, order,
                                           start, stop, batch_size, lr, True, self.work)
            else:
                l, c = _train_range[double](self, inputs, targets, sample_weight, order,
                                            start, stop, batch_size, lr, True, self.work)
            loss += l
            correct += c
            PyErr_CheckSignals()
        return loss, correct

    def gradient(self, inputs, targets, sample_weight=None):
        """Loss and gradient of all rows of the input as one batch, no update.

        Fills ``grads`` (flat layout) and returns ``(loss, touched_rows, E_grad_rows)``:
        for the embedding encoders the ids of the rows of ``E`` the batch touched and the
        gradient of those rows (copies); ``(loss, None, None)`` without an encoder. The
        loss is the (weighted) batch mean.
        """
        n = self._check(inputs)
        inputs.check_finite()  # (training checks each batch instead)
        if n < 1:
            raise ValueError("Engine.gradient: no examples")
        try:
            total = self._check_targets(targets, n, sample_weight)
        except ValueError as exc:
            raise ValueError(str(exc).replace("Engine:", "Engine.gradient:")) from None
        self.ensure_allocated(inputs, n)
        order = np.arange(n, dtype=np.intp)
        frozen = not self.train_embeddings
        self.train_embeddings = True  # the gradient of E exists even when E is frozen
        try:
            if self.dtype == np.float32:
                loss, _ = _train_range[float](self, inputs, targets, sample_weight, order,
                                              0, n, n, 0.0, False, self.work)
            else:
                loss, _ = _train_range[double](self, inputs, targets, sample_weight, order,
                                               0, n, n, 0.0, False, self.work)
        finally:
            self.train_embeddings = not frozen
        loss /= total if total > 0 else 1.0
        if self.encoder == ENC_DENSE:
            return loss, None, None
        rows = np.asarray(self.touched[:self.n_touched]).copy()
        eg = self.work[self.eg_off:self.eg_off + self.n_touched * self.embed_dim]
        return loss, rows, eg.reshape(self.n_touched, self.embed_dim).copy()

    # ------------------------------------------------------------------ inference
    def forward(self, inputs, Py_ssize_t chunk=1024, keep_hidden=False, int n_jobs=1):
        """Logits of every row (a new array), in chunks of ``chunk`` rows.

        Uses its own workspaces, so several threads may call it on one engine at once
        (as long as none trains it). With ``n_jobs > 1`` the chunks are shared among
        that many threads (the GIL is released while a chunk is computed); every chunk
        is computed as it would be by one thread, so the result is bitwise the same.
        With ``keep_hidden`` also returns the hidden pre-activations ``K[l]`` and
        activations ``A[l+1]`` as lists.
        """
        n = self._check(inputs)
        inputs.check_finite()  # (training checks each batch instead)
        out = np.empty((n, self.n_classes), dtype=self.dtype)
        hidden_k = [np.empty((n, self.fan_out[l]), dtype=self.dtype)
                    for l in range(self.n_layers - 1)] if keep_hidden else None
        hidden_a = [np.empty((n, self.width[l]), dtype=self.dtype)
                    for l in range(self.n_layers - 1)] if keep_hidden else None
        if n == 0:
            return (out, hidden_k, hidden_a) if keep_hidden else out
        if n_jobs < 1:
            raise ValueError(f"Engine.forward: n_jobs must be >= 1, got {n_jobs}")
        chunk = max(1, min(chunk, n))
        sizes = [0 if isinstance(inputs, SparseInputs) else chunk * self.n_features]
        for l in range(self.n_layers):
            sizes.append(chunk * self.fan_out[l])
            sizes.append(chunk * self.width[l])
        starts = list(range(0, n, chunk))

        def run(block):
            work = np.empty(sum(sizes), dtype=self.dtype)
            for s in block:
                e = min(n, s + chunk)
                if self.dtype == np.float32:
                    _forward_chunk[float](self, inputs, s, e, chunk, work, out)
                else:
                    _forward_chunk[double](self, inputs, s, e, chunk, work, out)
                if keep_hidden:
                    off = sizes[0]
                    for l in range(self.n_layers - 1):
                        kk = work[off:off + (e - s) * self.fan_out[l]]
                        hidden_k[l][s:e] = kk.reshape(e - s, self.fan_out[l])
                        off += chunk * self.fan_out[l]
                        aa = work[off:off + (e - s) * self.width[l]]
                        hidden_a[l][s:e] = aa.reshape(e - s, self.width[l])
                        off += chunk * self.width[l]

        n_jobs = min(n_jobs, len(starts))
        if n_jobs == 1:
            run(starts)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_jobs) as pool:
                # each thread takes every n_jobs-th chunk; .result() re-raises errors
                for done in [pool.submit(run, starts[i::n_jobs]) for i in range(n_jobs)]:
                    done.result()
        if keep_hidden:
            return out, hidden_k, hidden_a
        return out


# ---------------------------------------------------------------------- kernels
cdef inline bint _finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether x[0..n) holds no NaN and no infinity"""
    if floating is float:
        return cymlp_finite_f(x, n)
    else:
        return cymlp_finite_d(x, n)


cdef inline bint _no_nan(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether x[0..n) holds no NaN"""
    if floating is float:
        return cymlp_no_nan_f(x, n)
    else:
        return cymlp_no_nan_d(x, n)


cdef inline void _add_bias(Py_ssize_t n_rows, Py_ssize_t n_cols, const floating* b,
                           floating* K) noexcept nogil:
    """K[i, :] += b   for every row i"""
    if floating is float:
        cymlp_bias_f(n_rows, n_cols, b, K)
    else:
        cymlp_bias_d(n_rows, n_cols, b, K)


cdef inline void _col_sums(Py_ssize_t n_rows, Py_ssize_t n_cols, floating scale,
                           const floating* D, floating* out, bint accumulate) noexcept nogil:
    """out = scale * column sums of D   (or out += ... when accumulate)"""
    if not accumulate:
        memset(out, 0, n_cols * sizeof(floating))
    if floating is float:
        cymlp_col_sums_f(n_rows, n_cols, scale, D, out)
    else:
        cymlp_col_sums_d(n_rows, n_cols, scale, D, out)


cdef inline Py_ssize_t _block_rows(Py_ssize_t n_cols) noexcept nogil:
    """Rows of a block of the fused passes: about 4096 entries (16 KB in float32), so
    that a block is still in the L1 cache when the second half of the pass reads it."""
    return max(1, 4096 // max(n_cols, 1))


cdef void _bias_act_forward(int act, Py_ssize_t t, Py_ssize_t fo, Py_ssize_t width,
                            const floating* b, floating* K, floating* A,
                            floating slope, floating beta) noexcept nogil:
    """K[i, :] += b (if b), then A = g(K): row by row for ReLU and Leaky ReLU, one
    block of rows at a time for the others."""
    cdef Py_ssize_t i0, n, step = _block_rows(fo)
    if act == ACT_RELU or act == ACT_LEAKY_RELU:
        if floating is float:
            cymlp_relu_f(t, fo, b, K, A, slope, act == ACT_LEAKY_RELU)
        else:
            cymlp_relu_d(t, fo, b, K, A, slope, act == ACT_LEAKY_RELU)
        return
    if b == NULL:
        act_forward(act, t, width, K, A, slope, beta)
        return
    i0 = 0
    while i0 < t:
        n = min(step, t - i0)
        _add_bias(n, fo, b, K + i0 * fo)
        act_forward(act, n, width, K + i0 * fo, A + i0 * width, slope, beta)
        i0 += n


cdef void _act_backward_sums(int act, Py_ssize_t t, Py_ssize_t fo, Py_ssize_t width,
                             const floating* K, const floating* A, const floating* dA,
                             floating* dK, floating* sums, floating slope,
                             floating beta) noexcept nogil:
    """dK = dA * g'(K), and (if sums) sums = the column sums of dK: row by row for
    ReLU and Leaky ReLU, one block of rows at a time for the others. dA may be dK."""
    cdef Py_ssize_t i0, n, step = _block_rows(fo)
    if sums != NULL:
        memset(sums, 0, fo * sizeof(floating))
    if act == ACT_RELU or act == ACT_LEAKY_RELU:
        if floating is float:
            cymlp_relu_back_f(t, fo, A, dA, dK, sums, slope, act == ACT_LEAKY_RELU)
        else:
            cymlp_relu_back_d(t, fo, A, dA, dK, sums, slope, act == ACT_LEAKY_RELU)
        return
    if sums == NULL:
        act_backward(act, t, width, K, A, dA, dK, slope, beta)
        return
    i0 = 0
    while i0 < t:
        n = min(step, t - i0)
        act_backward(act, n, width, K + i0 * fo, A + i0 * width, dA + i0 * width,
                     dK + i0 * fo, slope, beta)
        _col_sums(n, fo, 1, dK + i0 * fo, sums, True)
        i0 += n


cdef double _softmax_xent(Py_ssize_t t, Py_ssize_t m, const floating* Z,
                          const int* y, const Py_ssize_t* rows, double eps,
                          const floating* sw, floating* dZ, double* correct) noexcept nogil:
    """Returns the (weighted) summed cross-entropy of the t rows and writes
    dZ = w (o - T).

    o = softmax(z) = exp(z - lse(z)), lse(z) = max z + log sum exp(z - max z): stable
    for any finite z (every exponent is <= 0). T = (1 - eps) onehot(y) + eps / m.
    Softmax and cross-entropy are differentiated together (dz = o - T), so no softmax
    Jacobian is ever formed. Exponentials are taken in the working precision; the sums
    are accumulated in double. Row i counts with its sample weight w = sw[rows[i]]
    (1 without weights) in the loss, in dZ and in ``correct``.
    """
    if floating is float:
        return cymlp_xent_f(t, m, Z, y, rows, eps, sw, dZ, correct)
    else:
        return cymlp_xent_d(t, m, Z, y, rows, eps, sw, dZ, correct)


cdef double _sigmoid_bce(Py_ssize_t t, Py_ssize_t m, const floating* Z,
                         const signed char* Y, const Py_ssize_t* rows, double eps,
                         const floating* sw, floating* dZ, double* correct) noexcept nogil:
    """Returns the (weighted) summed binary cross-entropy of the t rows (summed over
    the m labels) and writes dZ = w (sigma(z) - T).

    Per label, -T log sigma(z) - (1 - T) log(1 - sigma(z)) = softplus(z) - T z, with
    softplus(z) = max(z, 0) + log(1 + exp(-|z|)): stable for any finite z. T is the
    indicator Y smoothed as (1 - eps) Y + eps / 2 (each label a two-class problem).
    The sigmoid and the cross-entropy are differentiated together (dz = sigma(z) - T).
    A row is predicted right when every label's sign of z matches Y (subset accuracy).
    """
    cdef Py_ssize_t i, c, r
    cdef double total = 0.0, zc, tc, wi = 1.0, half = 0.5 * eps
    cdef floating fw = 1
    cdef bint right
    cdef const floating* z
    cdef const signed char* yrow
    cdef floating* dz
    for i in range(t):
        r = rows[i]
        z = Z + i * m
        dz = dZ + i * m
        yrow = Y + r * m
        if sw != NULL:
            fw = sw[r]
            wi = fw
        right = True
        for c in range(m):
            zc = z[c]
            tc = (1.0 - eps) * yrow[c] + half
            total += wi * ((zc if zc > 0 else 0.0) + log(1.0 + exp(-fabs(zc))) - tc * zc)
            dz[c] = fw * (_sigmoid(z[c]) - <floating> tc)
            if (zc > 0) != (yrow[c] != 0):
                right = False
        if right:
            correct[0] += wi
    return total


cdef void _csr_dense(Py_ssize_t t, const Py_ssize_t* rows, const Py_ssize_t* indptr,
                     const int* indices, const floating* data, const floating* W,
                     Py_ssize_t fo, floating* K) noexcept nogil:
    """K = X[rows] W   (sparse first layer: K[i] = sum_q data[q] W[indices[q]])"""
    cdef Py_ssize_t i, q
    memset(K, 0, t * fo * sizeof(floating))
    for i in range(t):
        for q in range(indptr[rows[i]], indptr[rows[i] + 1]):
            _row_axpy(fo, data[q], W + <Py_ssize_t> indices[q] * fo, K + i * fo)


cdef void _csr_t_dense_add(Py_ssize_t t, const Py_ssize_t* rows, const Py_ssize_t* indptr,
                           const int* indices, const floating* data, const floating* dK,
                           Py_ssize_t fo, floating scale, floating* W) noexcept nogil:
    """W += scale X[rows]^T dK   (touches only the rows of W whose features occur)"""
    cdef Py_ssize_t i, q
    for i in range(t):
        for q in range(indptr[rows[i]], indptr[rows[i] + 1]):
            _row_axpy(fo, scale * data[q], dK + i * fo, W + <Py_ssize_t> indices[q] * fo)


cdef inline void _row_axpy(Py_ssize_t e, floating a, const floating* x,
                           floating* y) noexcept nogil:
    """y += a x   for one embedding row (short: inlined, cheaper than a BLAS call)"""
    cdef Py_ssize_t c
    for c in range(e):
        y[c] += a * x[c]


cdef inline bint _consecutive(const Py_ssize_t* rows, Py_ssize_t t) noexcept nogil:
    """Whether rows[0..t) are r, r + 1, ..., r + t - 1."""
    cdef Py_ssize_t i
    for i in range(1, t):
        if rows[i] != rows[0] + i:
            return False
    return True


cdef void _gather(Engine self, const floating* X, Py_ssize_t ldx, const int* ids,
                  const Py_ssize_t* indptr, const int* indices, const floating* tokw,
                  const floating* E, const Py_ssize_t* rows, Py_ssize_t t,
                  floating* out) noexcept nogil:
    """A[0] = the input rows of the batch: X[rows] (dense),
    [E[j1]; ...; E[jn]] (window) or sum_q w_q E[j_q] (/ r for mean) (bag)."""
    cdef Py_ssize_t i, p, q, r, e = self.embed_dim, nf = self.n_features
    cdef Py_ssize_t q0, q1, ahead_i = 0, ahead_q = 0, row_bytes = e * sizeof(floating)
    cdef floating coef
    cdef floating* orow
    cdef const floating* src
    if self.encoder == ENC_BAG:
        # the rows of E a few tokens ahead are asked for while this one is added
        for p in range(PREFETCH_AHEAD):
            _next_token(self, indptr, indices, rows, t, &ahead_i, &ahead_q, E, row_bytes)
    for i in range(t):
        r = rows[i]
        orow = out + i * nf
        if self.encoder == ENC_DENSE:
            memcpy(orow, X + r * ldx, nf * sizeof(floating))
        elif self.encoder == ENC_WINDOW:
            if i + 1 < t:
                for p in range(self.window):
                    cymlp_prefetch(E + <Py_ssize_t> ids[rows[i + 1] * self.window + p] * e,
                                   row_bytes, 0)
            for p in range(self.window):
                src = E + <Py_ssize_t> ids[r * self.window + p] * e
                memcpy(orow + p * e, src, e * sizeof(floating))
        else:
            memset(orow, 0, e * sizeof(floating))
            q0 = indptr[r]
            q1 = indptr[r + 1]
            for q in range(q0, q1):
                _next_token(self, indptr, indices, rows, t, &ahead_i, &ahead_q, E,
                            row_bytes)
                coef = 1
                if tokw != NULL:
                    coef = tokw[q]
                if self.pool_mean:
                    coef = coef / (q1 - q0)
                _row_axpy(e, coef, E + <Py_ssize_t> indices[q] * e, orow)


cdef inline void _next_token(Engine self, const Py_ssize_t* indptr, const int* indices,
                             const Py_ssize_t* rows, Py_ssize_t t, Py_ssize_t* ai,
                             Py_ssize_t* aq, const floating* E,
                             Py_ssize_t row_bytes) noexcept nogil:
    """Prefetch the row of E of the token at the cursor (example ai of the batch, its
    aq-th token) and move the cursor one token on (across examples; past the batch's
    last token it stays there)."""
    cdef Py_ssize_t r
    while ai[0] < t:
        r = rows[ai[0]]
        if indptr[r] + aq[0] < indptr[r + 1]:
            cymlp_prefetch(E + <Py_ssize_t> indices[indptr[r] + aq[0]] * self.embed_dim,
                           row_bytes, 0)
            aq[0] += 1
            return
        ai[0] += 1
        aq[0] = 0


cdef void _scatter_rows(Engine self, const int* ids, const Py_ssize_t* indptr,
                        const int* indices, const floating* tokw,
                        const Py_ssize_t* rows, Py_ssize_t t, const floating* dX,
                        floating scale, floating* EG) noexcept nogil:
    """Sum the gradient of every touched row of E into EG (one slot a distinct row):
    dE[j_p] += scale * dX[i, p e:(p+1) e] (window), dE[j_q] += scale w_q (/ r) dX[i] (bag).
    Repeated ids add up. PAD (id 0) is skipped: its row stays zero. Sets n_touched,
    touched[:n_touched] and slot_of[touched] (the caller resets slot_of)."""
    cdef Py_ssize_t i, p, q, r, e = self.embed_dim, nf = self.n_features, n = 0
    cdef Py_ssize_t q0, q1
    cdef int j, slot
    cdef floating coef
    cdef int* slot_of = &self.slot_of[0]
    cdef int* touched = &self.touched[0]
    for i in range(t):
        r = rows[i]
        if self.encoder == ENC_WINDOW:
            for p in range(self.window):
                j = ids[r * self.window + p]
                if j == 0:
                    continue
                slot = slot_of[j]
                if slot < 0:
                    slot = <int> n
                    slot_of[j] = slot
                    touched[n] = j
                    n += 1
                    memset(EG + slot * e, 0, e * sizeof(floating))
                _row_axpy(e, scale, dX + i * nf + p * e, EG + slot * e)
        else:
            q0 = indptr[r]
            q1 = indptr[r + 1]
            for q in range(q0, q1):
                j = indices[q]
                if j == 0:
                    continue
                slot = slot_of[j]
                if slot < 0:
                    slot = <int> n
                    slot_of[j] = slot
                    touched[n] = j
                    n += 1
                    memset(EG + slot * e, 0, e * sizeof(floating))
                coef = scale
                if tokw != NULL:
                    coef = coef * tokw[q]
                if self.pool_mean:
                    coef = coef / (q1 - q0)
                _row_axpy(e, coef, dX + i * nf, EG + slot * e)
    self.n_touched = n


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void _optimise(int solver, Py_ssize_t n, floating* P, const floating* G,
                    floating* S1, floating* S2, double lr, double mu, bint nesterov,
                    double b1, double b2, double eps, double lr_t) noexcept nogil:
    """One update of n parameters P from gradient G (docs/model.md, Optimisers)."""
    cdef Py_ssize_t i
    cdef floating g, v
    cdef floating flr = <floating> lr, fmu = <floating> mu, feps = <floating> eps
    cdef floating fb1 = <floating> b1, fb2 = <floating> b2, flrt = <floating> lr_t
    if solver == SOLVER_SGD:
        if mu > 0:
            for i in range(n):
                v = fmu * S1[i] - flr * G[i]
                S1[i] = v
                if nesterov:
                    P[i] += fmu * v - flr * G[i]
                else:
                    P[i] += v
        else:
            for i in range(n):
                P[i] -= flr * G[i]
    elif solver == SOLVER_ADAGRAD:
        for i in range(n):
            g = G[i]
            S1[i] += g * g
            P[i] -= flr * g / (_sqrt(S1[i]) + feps)
    else:
        for i in range(n):
            g = G[i]
            S1[i] = fb1 * S1[i] + (1 - fb1) * g
            S2[i] = fb2 * S2[i] + (1 - fb2) * g * g
            P[i] -= flrt * S1[i] / (_sqrt(S2[i]) + feps)


cdef int _step(Engine self, floating* P, floating* G, floating* S1, floating* S2,
               floating* work, floating* E, floating* ES1, floating* ES2,
               const _Arrays* a, const int* y, const signed char* Y, const floating* sw,
               const Py_ssize_t* rows, Py_ssize_t t, double lr,
               bint update, double* loss, double* correct) noexcept nogil:
    """One minibatch: forward, loss, backward and (if ``update``) the parameter update.

    The batch's loss and gradient are normalised by its total weight T (t without
    sample weights). Plain SGD (no momentum) folds the update into the weight-gradient
    GEMM: W := (1 - lr alpha / T) W - (lr / T) A^T dK, so the gradient is never stored.
    Every other case writes G (flat) and then runs the optimiser over it. Sparse input
    (CSR) multiplies the first layer from its nonzeros. Returns -1 (leaving the
    parameters untouched) if the batch loss is not finite, -2 (before anything is
    computed) if the batch's dense rows are to be checked and hold a NaN or an
    infinity; a batch of total weight 0 changes nothing.
    """
    cdef int L = self.n_layers, l, m = self.n_classes
    cdef Py_ssize_t nf = self.n_features, fi, fo, wd, j, e = self.embed_dim, i
    cdef const floating* X = <const floating*> a.X
    cdef const floating* tokw = <const floating*> a.tokw
    cdef floating* A0
    cdef floating* A_in
    cdef floating* K
    cdef floating* dK
    cdef floating* dA = NULL
    cdef floating* dX = work + self.dx_off
    cdef floating* EG = work + self.eg_off
    cdef double total = t
    cdef floating inv_t
    cdef floating slope = <floating> self._leaky_slope, beta = <floating> self.swish_beta
    cdef double batch_loss, sq, lr_t = lr
    cdef bint fused = update and self.solver == SOLVER_SGD and self.momentum <= 0
    cdef bint sparse = a.sparse
    cdef int* slot_of
    cdef int* touched
    cdef Py_ssize_t k

    if sw != NULL:
        total = 0.0
        for i in range(t):
            total += sw[rows[i]]
        if total <= 0:
            return 0
    inv_t = <floating> (1.0 / total)

    # forward: K[l] = A[l] W[l] + b[l];  A[l+1] = g(K[l]). Dense rows that follow each
    # other in X (no shuffling) are read where they are, not copied.
    A0 = work + self.x_off
    if self.encoder == ENC_DENSE and not sparse and _consecutive(rows, t):
        A0 = <floating*> X + rows[0] * a.ldx
    elif not sparse:
        _gather(self, X, a.ldx, a.ids, a.indptr, a.indices, tokw, E, rows, t, A0)
    if a.check_rows and not _finite(A0, t * nf):
        return -2
    A_in = A0
    for l in range(L):
        fi = self.fan_in[l]
        fo = self.fan_out[l]
        K = work + self.k_off[l]
        if l == 0 and sparse:
            _csr_dense(t, rows, a.indptr, a.indices, tokw, P + self.w_off[0], fo, K)
        else:
            gemm(False, False, <int> t, <int> fo, <int> fi, <floating> 1, A_in, <int> fi,
                 P + self.w_off[l], <int> fo, <floating> 0, K, <int> fo)
        if l == L - 1:
            if self.has_bias[l]:
                _add_bias(t, fo, P + self.b_off[l], K)
        else:
            _bias_act_forward(self.act[l], t, fo, self.width[l],
                              P + self.b_off[l] if self.has_bias[l] else NULL, K,
                              work + self.a_off[l], slope, beta)
            A_in = work + self.a_off[l]

    # loss and output delta dK[L-1] = w (o - T)
    if self.multilabel:
        batch_loss = _sigmoid_bce(t, m, work + self.k_off[L - 1], Y, rows,
                                  self.label_smoothing, sw, work + self.dk_off[L - 1],
                                  correct)
    else:
        batch_loss = _softmax_xent(t, m, work + self.k_off[L - 1], y, rows,
                                   self.label_smoothing, sw, work + self.dk_off[L - 1],
                                   correct)
    if self.alpha > 0:
        sq = 0.0
        for l in range(L):
            sq += dot(<int> (self.fan_in[l] * self.fan_out[l]), P + self.w_off[l],
                      P + self.w_off[l])
        batch_loss += 0.5 * self.alpha * sq
    if not isfinite(batch_loss):
        return -1
    loss[0] += batch_loss

    # backward, output layer first
    for l in range(L - 1, -1, -1):
        fi = self.fan_in[l]
        fo = self.fan_out[l]
        dK = work + self.dk_off[l]
        A_in = work + self.a_off[l - 1] if l > 0 else A0
        # dA[l] = dK[l] W[l]^T, with the weights before this batch's update
        if l > 0:
            # written where dK[l-1] goes and multiplied there, unless SwiGLU halves it
            dA = work + (self.da_off if self.act[l - 1] == ACT_SWIGLU else self.dk_off[l - 1])
            gemm(False, True, <int> t, <int> fi, <int> fo, <floating> 1, dK, <int> fo,
                 P + self.w_off[l], <int> fo, <floating> 0, dA, <int> fi)
        elif self.encoder != ENC_DENSE and self.train_embeddings:
            gemm(False, True, <int> t, <int> fi, <int> fo, <floating> 1, dK, <int> fo,
                 P + self.w_off[l], <int> fo, <floating> 0, dX, <int> fi)
        if fused:
            # W := (1 - lr alpha / T) W - (lr / T) A^T dK ;  b := b - (lr / T) colsum(dK)
            if l == 0 and sparse:
                if self.alpha > 0:
                    scal(<int> (fi * fo), <floating> (1.0 - lr * self.alpha / total),
                         P + self.w_off[0])
                _csr_t_dense_add(t, rows, a.indptr, a.indices, tokw, dK, fo,
                                 <floating> (-lr) * inv_t, P + self.w_off[0])
            else:
                gemm(True, False, <int> fi, <int> fo, <int> t, <floating> (-lr) * inv_t,
                     A_in, <int> fi, dK, <int> fo,
                     <floating> (1.0 - lr * self.alpha / total), P + self.w_off[l], <int> fo)
            if self.has_bias[l] and l < L - 1:   # column sums made with dK (below)
                axpy(<int> fo, <floating> (-lr) * inv_t, G + self.b_off[l], P + self.b_off[l])
            elif self.has_bias[l]:
                _col_sums(t, fo, <floating> (-lr) * inv_t, dK, P + self.b_off[l], True)
        else:
            # dW = (A^T dK + alpha W) / T ;  db = colsum(dK) / T
            if l == 0 and sparse:
                memset(G + self.w_off[0], 0, fi * fo * sizeof(floating))
                _csr_t_dense_add(t, rows, a.indptr, a.indices, tokw, dK, fo, inv_t,
                                 G + self.w_off[0])
            else:
                gemm(True, False, <int> fi, <int> fo, <int> t, inv_t, A_in, <int> fi,
                     dK, <int> fo, <floating> 0, G + self.w_off[l], <int> fo)
            if self.alpha > 0:
                axpy(<int> (fi * fo), <floating> (self.alpha / total), P + self.w_off[l],
                     G + self.w_off[l])
            if self.has_bias[l] and l < L - 1:   # column sums made with dK (below)
                scal(<int> fo, inv_t, G + self.b_off[l])
            elif self.has_bias[l]:
                _col_sums(t, fo, inv_t, dK, G + self.b_off[l], False)
        # dK[l-1] = dA[l] * g'(K[l-1]), and its column sums (the bias gradient of
        # layer l-1, before scaling) into G
        if l > 0:
            _act_backward_sums(self.act[l - 1], t, self.fan_out[l - 1], self.width[l - 1],
                               work + self.k_off[l - 1], work + self.a_off[l - 1], dA,
                               work + self.dk_off[l - 1],
                               G + self.b_off[l - 1] if self.has_bias[l - 1] else NULL,
                               slope, beta)

    if update:
        self.step += 1
        if self.solver == SOLVER_ADAM:
            lr_t = lr * sqrt(1.0 - pow(self.beta_2, <double> self.step)) / (
                1.0 - pow(self.beta_1, <double> self.step))
        if not fused:
            _optimise(self.solver, self.n_params, P, G, S1, S2, lr, self.momentum,
                      self.nesterov, self.beta_1, self.beta_2, self.epsilon, lr_t)

    # embedding rows: dE = dX / T scattered to the touched rows, then a lazy update
    # (a frozen table, train_embeddings off, is left as it is)
    if self.encoder != ENC_DENSE and self.train_embeddings:
        _scatter_rows(self, a.ids, a.indptr, a.indices, tokw, rows, t, dX, inv_t, EG)
        slot_of = &self.slot_of[0]
        touched = &self.touched[0]
        for k in range(self.n_touched):
            j = touched[k]
            if update and k + 2 < self.n_touched:
                # the rows two ahead, for the optimiser to read and write
                i = touched[k + 2]
                cymlp_prefetch(E + i * e, e * sizeof(floating), 1)
                if ES1 != NULL:
                    cymlp_prefetch(ES1 + i * e, e * sizeof(floating), 1)
                if ES2 != NULL:
                    cymlp_prefetch(ES2 + i * e, e * sizeof(floating), 1)
            if update:
                _optimise(self.solver, e, E + j * e, EG + k * e,
                          ES1 + j * e if ES1 != NULL else NULL,
                          ES2 + j * e if ES2 != NULL else NULL,
                          lr, self.momentum, self.nesterov, self.beta_1, self.beta_2,
                          self.epsilon, lr_t)
                # checked while in cache, so that nothing scans the whole table
                if not _finite(E + j * e, e):
                    self.bad_rows |= BAD_E
                if ES1 != NULL and not _no_nan(ES1 + j * e, e):
                    self.bad_rows |= BAD_E_STATE1
                if ES2 != NULL and not _no_nan(ES2 + j * e, e):
                    self.bad_rows |= BAD_E_STATE2
            slot_of[j] = -1
    return 0


cdef inline floating* _ptr(floating[::1] a) noexcept:
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline floating* _ptr2(floating[:, ::1] a) noexcept:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef _train_range(Engine self, object inputs, object targets, object sample_weight,
                  const Py_ssize_t[::1] order, Py_ssize_t start, Py_ssize_t stop,
                  Py_ssize_t batch_size, double lr, bint update, floating[::1] W):
    """Run the batches of order[start:stop] (typed dispatch of Engine.train)."""
    cdef floating[::1] P = self.params
    cdef floating[::1] G = self.grads
    cdef floating[::1] S1 = self.state1
    cdef floating[::1] S2 = self.state2
    cdef floating[:, ::1] E = self.E
    cdef floating[:, ::1] ES1 = self.E_state1
    cdef floating[:, ::1] ES2 = self.E_state2
    cdef const int[::1] yv
    cdef const signed char[:, ::1] Yv
    cdef const floating[::1] swv
    cdef const int* yp = NULL
    cdef const signed char* Yp = NULL
    cdef const floating* swp = NULL
    cdef _Arrays a
    cdef Py_ssize_t s, t
    cdef double loss = 0.0, correct = 0.0
    cdef int status = 0
    cdef floating* Pp = _ptr(P)
    cdef floating* Gp = _ptr(G)
    cdef floating* S1p = _ptr(S1)
    cdef floating* S2p = _ptr(S2)
    cdef floating* Wp = _ptr(W)
    cdef floating* Ep = _ptr2(E)
    cdef floating* ES1p = _ptr2(ES1)
    cdef floating* ES2p = _ptr2(ES2)
    _unpack(self, inputs, &a, <floating> 0)
    if self.multilabel:
        Yv = targets
        Yp = &Yv[0, 0] if Yv.shape[0] > 0 else NULL
    else:
        yv = targets
        yp = &yv[0] if yv.shape[0] > 0 else NULL
    if sample_weight is not None:
        swv = sample_weight
        swp = &swv[0] if swv.shape[0] > 0 else NULL
    with nogil:
        s = start
        while s < stop:
            t = min(batch_size, stop - s)
            status = _step(self, Pp, Gp, S1p, S2p, Wp, Ep, ES1p, ES2p, &a, yp, Yp, swp,
                           &order[s], t, lr, update, &loss, &correct)
            if status < 0:
                break
            s += t
    if status == -2:
        inputs.check_finite()  # raises, naming the first bad value of X
        raise ValueError(f"Engine.train: X holds NaN or infinity (batch at {s})")
    if status < 0:
        raise DivergenceError(
            f"the loss became non-finite on the batch starting at position {s}")
    return loss, correct


cdef struct _Arrays:
    # the kernels' view of an inputs object (pointers into its validated arrays);
    # X and tokw are float or double, as the engine's dtype. Sparse input (CSR):
    # indptr, indices (column ids) and tokw (the values), with sparse set.
    const void* X
    Py_ssize_t ldx
    const int* ids
    const Py_ssize_t* indptr
    const int* indices
    const void* tokw
    bint sparse
    bint check_rows   # dense rows not known to be finite: check each batch's


cdef void _unpack(Engine self, object inputs, _Arrays* a, floating dtype_tag) except *:
    """Point ``a`` at the arrays of ``inputs`` (checked by Engine._check)."""
    cdef const floating[:, ::1] Xv
    cdef const int[:, ::1] ids
    cdef const Py_ssize_t[::1] indptr
    cdef const int[::1] indices
    cdef const floating[::1] tokw
    a.X = NULL
    a.ldx = 0
    a.ids = NULL
    a.indptr = NULL
    a.indices = NULL
    a.tokw = NULL
    a.sparse = False
    a.check_rows = False
    if isinstance(inputs, SparseInputs):
        indptr = inputs.indptr
        indices = inputs.indices
        tokw = inputs.data
        a.sparse = True
        a.indptr = &indptr[0]
        a.indices = &indices[0] if indices.shape[0] > 0 else NULL
        a.tokw = &tokw[0] if tokw.shape[0] > 0 else NULL
    elif self.encoder == ENC_DENSE:
        Xv = inputs.X
        a.X = &Xv[0, 0] if Xv.shape[0] > 0 else NULL
        a.ldx = Xv.shape[1]
        a.check_rows = not inputs.finite
    elif self.encoder == ENC_WINDOW:
        ids = inputs.ids
        a.ids = &ids[0, 0] if ids.shape[0] > 0 else NULL
    else:
        indptr = inputs.indptr
        indices = inputs.ids
        a.indptr = &indptr[0]
        a.indices = &indices[0] if indices.shape[0] > 0 else NULL
        if inputs.weights is not None:
            tokw = inputs.weights
            a.tokw = &tokw[0] if tokw.shape[0] > 0 else NULL


cdef _forward_chunk(Engine self, object inputs, Py_ssize_t s, Py_ssize_t e,
                    Py_ssize_t chunk, floating[::1] work, floating[:, ::1] out):
    """Logits of rows s..e-1 into out[s:e], using ``work`` laid out as
    [A0 | K0 A1 | K1 A2 | ...] with room for ``chunk`` rows."""
    cdef floating[::1] P = self.params
    cdef floating[:, ::1] E = self.E
    cdef _Arrays a
    cdef Py_ssize_t t = e - s, l, off, fi, fo
    cdef Py_ssize_t[::1] rows = np.arange(s, e, dtype=np.intp)
    cdef floating* A_in
    cdef floating* K
    cdef floating* Wp = &work[0]
    cdef floating* Pp = &P[0]
    cdef floating* Ep = _ptr2(E)
    cdef floating slope = <floating> self._leaky_slope, beta = <floating> self.swish_beta
    _unpack(self, inputs, &a, <floating> 0)
    with nogil:
        if not a.sparse:
            _gather(self, <const floating*> a.X, a.ldx, a.ids, a.indptr, a.indices,
                    <const floating*> a.tokw, Ep, &rows[0], t, Wp)
        A_in = Wp
        off = 0 if a.sparse else chunk * self.n_features
        for l in range(self.n_layers):
            fi = self.fan_in[l]
            fo = self.fan_out[l]
            K = Wp + off
            if l == 0 and a.sparse:
                _csr_dense(t, &rows[0], a.indptr, a.indices, <const floating*> a.tokw,
                           Pp + self.w_off[0], fo, K)
            else:
                gemm(False, False, <int> t, <int> fo, <int> fi, <floating> 1, A_in,
                     <int> fi, Pp + self.w_off[l], <int> fo, <floating> 0, K, <int> fo)
            if self.has_bias[l]:
                _add_bias(t, fo, Pp + self.b_off[l], K)
            off += chunk * fo
            if l < self.n_layers - 1:
                act_forward(self.act[l], t, self.width[l], K, Wp + off, slope, beta)
                A_in = Wp + off
            else:
                memcpy(&out[s, 0], K, t * fo * sizeof(floating))
            off += chunk * self.width[l]
