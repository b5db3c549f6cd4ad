# cython: language_level=3
"""The compiled training engine: forward pass, softmax cross-entropy, hand-derived
backward pass, optimiser updates and the sparse embedding updates, for one minibatch at
a time, in C loops and BLAS calls with the GIL released.

Symbols follow ``docs/model.md``: layer ``l`` has weights ``W[l]`` (``fan_in x fan_out``,
the note's ``H`` and ``U``), bias ``b[l]``, pre-activation ``K[l]`` (the note's ``k`` and
``z``) and activation ``A[l+1]`` (the note's ``h``); ``A[0]`` is the input ``f``.

Memory: every buffer is allocated by :meth:`Engine.allocate` (once per fit) or by the
caller; nothing is allocated while batches train. All parameters live in one flat array
``params`` (``W[0], b[0], W[1], b[1], ...``; absent biases take no space), which the
estimators expose as NumPy views (``coefs_``, ``intercepts_``). ``grads``, ``state1`` and
``state2`` have the same layout, so an optimiser update is one loop over the flat array.
"""
import numpy as np

from cython cimport floating
from libc.math cimport exp, log, sqrt, sqrtf, isfinite, pow
from libc.string cimport memcpy, memset

from cymlp._blas cimport gemm, axpy, scal, dot, nrm2
from cymlp._activations cimport act_forward, act_backward, _exp, ACT_SWIGLU, ACT_STEP


cdef enum:
    SOLVER_SGD = 0
    SOLVER_ADAGRAD = 1
    SOLVER_ADAM = 2

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

#: True in a debug build (CYMLP_CYTHON_DEBUG=1): Cython bounds and wraparound checks on
BOUNDS_CHECKED = bool(CYMLP_CHECKS)

SOLVERS = {"sgd": SOLVER_SGD, "adagrad": SOLVER_ADAGRAD, "adam": SOLVER_ADAM}
ENCODERS = {"dense": ENC_DENSE, "window": ENC_WINDOW, "bag": ENC_BAG}


class DivergenceError(FloatingPointError):
    """The loss of a batch became NaN or infinite."""


def _check_range(name, a, low, high):
    if a.size and (a.min() < low or a.max() >= high):
        raise ValueError(f"Engine: {name} must lie in [{low}, {high}); got values from "
                         f"{a.min()} to {a.max()}")


cdef class Engine:
    """Network structure, flat parameters, optimiser state and workspaces.

    Parameters
    ----------
    n_features : int
        Width of ``A[0]`` (for the embedding encoders: ``window * embed_dim`` or
        ``embed_dim``).
    widths : sequence of int
        Hidden sizes ``v`` followed by ``n_classes``.
    activations : sequence of int
        Activation codes of the hidden layers (``_activations.pxd``).
    biases : sequence of bool
        For every layer (hidden then output), whether it has a bias.
    dtype : numpy dtype
        float32 or float64; every float buffer has it.
    """
    cdef readonly int n_layers, n_classes, n_features
    cdef int[::1] fan_in, fan_out, width, act, has_bias
    cdef Py_ssize_t[::1] w_off, b_off, k_off, a_off, dk_off
    cdef readonly Py_ssize_t n_params
    cdef public double leaky_slope, swish_beta, label_smoothing, alpha
    cdef public int solver
    cdef public double momentum, beta_1, beta_2, epsilon
    cdef public bint nesterov
    cdef public long long step
    cdef readonly object dtype
    cdef public object params, grads, state1, state2
    # embedding encoder
    cdef readonly int encoder, window, embed_dim, n_vocab
    cdef public bint pool_mean
    cdef public object E, E_state1, E_state2
    # workspaces
    cdef object work
    cdef readonly Py_ssize_t t_max, max_touched
    cdef Py_ssize_t x_off, da_off, dx_off, eg_off, work_size
    cdef int[::1] slot_of, touched
    cdef readonly Py_ssize_t n_touched

    def __init__(self, int n_features, widths, activations, biases, dtype, *,
                 encoder="dense", int window=0, int embed_dim=0, int n_vocab=0):
        cdef Py_ssize_t l, off = 0
        widths = [int(w) for w in widths]
        activations = [int(a) for a in activations]
        biases = [bool(b) for b in biases]
        if len(widths) < 1 or len(activations) != len(widths) - 1 or len(biases) != len(widths):
            raise ValueError("Engine: inconsistent layer description")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError("Engine: dtype must be float32 or float64")
        self.n_layers = len(widths)
        self.n_classes = widths[len(widths) - 1]  # (wraparound is off: no negative indices)
        self.n_features = n_features
        self.fan_in = np.empty(self.n_layers, dtype=np.intc)
        self.fan_out = np.empty(self.n_layers, dtype=np.intc)
        self.width = np.empty(self.n_layers, dtype=np.intc)
        self.act = np.full(self.n_layers, -1, dtype=np.intc)
        self.has_bias = np.asarray(biases, dtype=np.intc)
        self.w_off = np.empty(self.n_layers, dtype=np.intp)
        self.b_off = np.full(self.n_layers, -1, dtype=np.intp)
        for l in range(self.n_layers):
            self.fan_in[l] = n_features
            if l > 0:
                self.fan_in[l] = self.width[l - 1]
            self.width[l] = widths[l]
            if l < self.n_layers - 1:
                self.act[l] = activations[l]
            self.fan_out[l] = 2 * widths[l] if self.act[l] == ACT_SWIGLU else widths[l]
            self.w_off[l] = off
            off += <Py_ssize_t> self.fan_in[l] * self.fan_out[l]
            if self.has_bias[l]:
                self.b_off[l] = off
                off += self.fan_out[l]
        self.n_params = off
        self.params = np.zeros(off, dtype=self.dtype)
        self.grads = np.zeros(off, dtype=self.dtype)
        self.state1 = np.zeros(0, dtype=self.dtype)
        self.state2 = np.zeros(0, dtype=self.dtype)
        self.leaky_slope = 0.01
        self.swish_beta = 1.0
        self.label_smoothing = 0.0
        self.alpha = 0.0
        self.solver = SOLVER_SGD
        self.momentum = 0.0
        self.nesterov = False
        self.beta_1 = 0.9
        self.beta_2 = 0.999
        self.epsilon = 1e-8
        self.step = 0
        if encoder not in ENCODERS:
            raise ValueError(f"Engine: unknown encoder {encoder!r}")
        self.encoder = ENCODERS[encoder]
        self.window = window
        self.embed_dim = embed_dim
        self.n_vocab = n_vocab
        self.pool_mean = True
        if self.encoder == ENC_DENSE:
            self.E = np.zeros((1, 1), dtype=self.dtype)
        else:
            expected = window * embed_dim if self.encoder == ENC_WINDOW else embed_dim
            if n_features != expected or n_vocab < 2 or embed_dim < 1:
                raise ValueError("Engine: inconsistent embedding description")
            self.E = np.zeros((n_vocab, embed_dim), dtype=self.dtype)
        self.E_state1 = np.zeros((0, 0), dtype=self.dtype)
        self.E_state2 = np.zeros((0, 0), dtype=self.dtype)
        self.t_max = 0
        self.max_touched = 0

    # ------------------------------------------------------------------ layout
    def layer_shapes(self):
        """[(fan_in, fan_out, has_bias)] for every layer."""
        return [(self.fan_in[l], self.fan_out[l], bool(self.has_bias[l]))
                for l in range(self.n_layers)]

    def param_slices(self):
        """[(w_slice, b_slice or None)] locating each layer in the flat arrays."""
        out = []
        for l in range(self.n_layers):
            w = slice(self.w_off[l], self.w_off[l] + self.fan_in[l] * self.fan_out[l])
            b = None
            if self.has_bias[l]:
                b = slice(self.b_off[l], self.b_off[l] + self.fan_out[l])
            out.append((w, b))
        return out

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

    def allocate(self, Py_ssize_t t_max, Py_ssize_t max_tokens=0):
        """Allocate the workspaces for batches of at most ``t_max`` rows.

        ``max_tokens`` bounds the number of token occurrences in one batch (embedding
        encoders); it sizes the buffer of summed gradient rows of ``E``.
        """
        cdef Py_ssize_t l, off = 0, max_w = 0
        if t_max < 1:
            raise ValueError("Engine.allocate: t_max must be >= 1")
        self.k_off = np.empty(self.n_layers, dtype=np.intp)
        self.a_off = np.empty(self.n_layers, dtype=np.intp)
        self.dk_off = np.empty(self.n_layers, dtype=np.intp)
        self.x_off = off
        off += t_max * self.n_features
        for l in range(self.n_layers):
            self.k_off[l] = off
            off += t_max * self.fan_out[l]
            self.a_off[l] = off
            off += t_max * self.width[l]
            self.dk_off[l] = off
            off += t_max * self.fan_out[l]
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

    def _check_inputs(self, X, ids, indptr, tokw, rows=None):
        """Verify, in Python, everything the kernels will index without bounds checks.

        The estimators validate their input already; this second line of defence makes
        the engine itself safe to call: a bad index raises instead of reading out of
        bounds. Returns the number of examples the input holds.
        """
        if self.encoder == ENC_DENSE:
            if X is None or ids is not None or indptr is not None:
                raise ValueError("Engine: a dense engine takes X (and no ids/indptr)")
            X = np.asarray(X)
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(f"Engine: X has the wrong number of columns (expected "
                                 f"a 2-D array of shape (n, {self.n_features}))")
            return X.shape[0]
        if ids is None:
            raise ValueError("Engine: an embedding engine needs token ids")
        ids = np.asarray(ids)
        _check_range("token ids", ids, 0, self.n_vocab)
        if self.encoder == ENC_WINDOW:
            if indptr is not None or ids.ndim != 2 or ids.shape[1] != self.window:
                raise ValueError(f"Engine: ids have the wrong number of columns (window ids "
                                 f"must have shape (n, {self.window}))")
            return ids.shape[0]
        if indptr is None:
            raise ValueError("Engine: a bag engine needs indptr (CSR row pointers)")
        indptr = np.asarray(indptr)
        if (indptr.ndim != 1 or ids.ndim != 1 or indptr.shape[0] < 1 or indptr[0] != 0
                or indptr[indptr.shape[0] - 1] != ids.shape[0]
                or (indptr.shape[0] > 1 and np.any(np.diff(indptr) < 0))):
            raise ValueError("Engine: indptr must rise from 0 to len(ids)")
        if tokw is not None and np.asarray(tokw).shape != ids.shape:
            raise ValueError("Engine: token weights must have one entry per id")
        return indptr.shape[0] - 1

    # ------------------------------------------------------------------ training
    def train(self, X, const int[::1] y, const Py_ssize_t[::1] order,
              Py_ssize_t start, Py_ssize_t stop, Py_ssize_t batch_size, double lr,
              ids=None, indptr=None, tokw=None):
        """Train on the examples ``order[start:stop]`` in minibatches of ``batch_size``.

        Returns ``(loss_sum, n_correct)``: the sum over batches of batch-mean loss times
        batch size, and the number of rows whose argmax logit was the label, both
        measured before each batch's update. Raises :class:`DivergenceError` when a
        batch loss is not finite (the parameters are then those before that batch's
        update).
        """
        if batch_size < 1 or batch_size > self.t_max:
            raise ValueError("Engine.train: batch_size outside [1, t_max]")
        if not 0 <= start <= stop <= order.shape[0]:
            raise ValueError("Engine.train: bad range")
        n = self._check_inputs(X, ids, indptr, tokw)
        if y.shape[0] != n:
            raise ValueError(f"Engine.train: {y.shape[0]} labels for {n} examples")
        _check_range("order", np.asarray(order[start:stop]), 0, n)
        _check_range("labels", np.asarray(y), 0, self.n_classes)
        if self.dtype == np.float32:
            return _train_range[float](self, X, ids, indptr, tokw, y, order, start, stop,
                                       batch_size, lr, True, self.work)
        return _train_range[double](self, X, ids, indptr, tokw, y, order, start, stop,
                                    batch_size, lr, True, self.work)

    def gradient(self, X, const int[::1] y, ids=None, indptr=None, tokw=None):
        """Loss and gradient of all rows of the input as one batch, no update.

        Fills ``grads`` (flat layout) and returns ``(loss, touched_rows, E_grad_rows)``:
        for the embedding encoders the ids of the rows of ``E`` the batch touched and the
        gradient of those rows (copies); ``(loss, None, None)`` without an encoder.
        """
        n = y.shape[0]
        if n < 1 or n > self.t_max:
            raise ValueError("Engine.gradient: batch size outside [1, t_max]")
        if self._check_inputs(X, ids, indptr, tokw) != n:
            raise ValueError("Engine.gradient: one label per example needed")
        _check_range("labels", np.asarray(y), 0, self.n_classes)
        order = np.arange(n, dtype=np.intp)
        if self.dtype == np.float32:
            loss, _ = _train_range[float](self, X, ids, indptr, tokw, y, order, 0, n, n,
                                          0.0, False, self.work)
        else:
            loss, _ = _train_range[double](self, X, ids, indptr, tokw, y, order, 0, n, n,
                                           0.0, False, self.work)
        loss /= n
        if self.encoder == ENC_DENSE:
            return loss, None, None
        rows = np.asarray(self.touched[:self.n_touched]).copy()
        eg = self.work[self.eg_off:self.eg_off + self.n_touched * self.embed_dim]
        return loss, rows, eg.reshape(self.n_touched, self.embed_dim).copy()

    # ------------------------------------------------------------------ inference
    def forward(self, X, ids=None, indptr=None, tokw=None, Py_ssize_t chunk=1024,
                keep_hidden=False):
        """Logits of every row (a new array), in chunks of ``chunk`` rows.

        Uses its own workspaces, so several threads may call it on one engine at once
        (as long as none trains it). With ``keep_hidden`` also returns the hidden
        pre-activations ``K[l]`` and activations ``A[l+1]`` as lists.
        """
        n = self._check_inputs(X, ids, indptr, tokw)
        out = np.empty((n, self.n_classes), dtype=self.dtype)
        hidden_k = [np.empty((n, self.fan_out[l]), dtype=self.dtype)
                    for l in range(self.n_layers - 1)] if keep_hidden else None
        hidden_a = [np.empty((n, self.width[l]), dtype=self.dtype)
                    for l in range(self.n_layers - 1)] if keep_hidden else None
        if n == 0:
            return (out, hidden_k, hidden_a) if keep_hidden else out
        chunk = max(1, min(chunk, n))
        sizes = [chunk * self.n_features]
        for l in range(self.n_layers):
            sizes.append(chunk * self.fan_out[l])
            sizes.append(chunk * self.width[l])
        work = np.empty(sum(sizes), dtype=self.dtype)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            if self.dtype == np.float32:
                _forward_chunk[float](self, X, ids, indptr, tokw, s, e, chunk, work, out)
            else:
                _forward_chunk[double](self, X, ids, indptr, tokw, s, e, chunk, work, out)
            if keep_hidden:
                off = chunk * self.n_features
                for l in range(self.n_layers - 1):
                    kk = work[off:off + (e - s) * self.fan_out[l]]
                    hidden_k[l][s:e] = kk.reshape(e - s, self.fan_out[l])
                    off += chunk * self.fan_out[l]
                    aa = work[off:off + (e - s) * self.width[l]]
                    hidden_a[l][s:e] = aa.reshape(e - s, self.width[l])
                    off += chunk * self.width[l]
        if keep_hidden:
            return out, hidden_k, hidden_a
        return out


# ---------------------------------------------------------------------- kernels
cdef inline void _add_bias(Py_ssize_t n_rows, Py_ssize_t n_cols, const floating* b,
                           floating* K) noexcept nogil:
    """K[i, :] += b   for every row i"""
    cdef Py_ssize_t i, j
    for i in range(n_rows):
        for j in range(n_cols):
            K[i * n_cols + j] += b[j]


cdef inline void _col_sums(Py_ssize_t n_rows, Py_ssize_t n_cols, floating scale,
                           const floating* D, floating* out, bint accumulate) noexcept nogil:
    """out = scale * column sums of D   (or out += ... when accumulate)"""
    cdef Py_ssize_t i, j
    if not accumulate:
        for j in range(n_cols):
            out[j] = 0
    for i in range(n_rows):
        for j in range(n_cols):
            out[j] += scale * D[i * n_cols + j]


cdef double _softmax_xent(Py_ssize_t t, Py_ssize_t m, const floating* Z,
                          const int* y, const Py_ssize_t* rows, double eps,
                          floating* dZ, Py_ssize_t* n_correct) noexcept nogil:
    """Returns the summed cross-entropy of the t rows and writes dZ = o - T.

    o = softmax(z) = exp(z - lse(z)), lse(z) = max z + log sum exp(z - max z): stable
    for any finite z (every exponent is <= 0). T = (1 - eps) onehot(y) + eps / m.
    Softmax and cross-entropy are differentiated together (dz = o - T), so no softmax
    Jacobian is ever formed. Exponentials are taken in the working precision; the sums
    are accumulated in double.
    """
    cdef Py_ssize_t i, c, best
    cdef double s, lse, total = 0.0, zsum, off = eps / m
    cdef floating mx, inv_s, foff = <floating> (eps / m)
    cdef const floating* z
    cdef floating* dz
    cdef int yi
    for i in range(t):
        z = Z + i * m
        dz = dZ + i * m
        yi = y[rows[i]]
        mx = z[0]
        best = 0
        for c in range(1, m):
            if z[c] > mx:
                mx = z[c]
                best = c
        # one exp per entry: dz holds exp(z - max) until it is normalised
        for c in range(m):
            dz[c] = _exp(z[c] - mx)
        s = 0.0
        zsum = 0.0
        for c in range(m):
            s += dz[c]
            zsum += z[c]
        lse = mx + log(s)
        total += lse - (1.0 - eps) * z[yi] - off * zsum
        inv_s = <floating> (1.0 / s)
        for c in range(m):
            dz[c] = dz[c] * inv_s - foff
        dz[yi] -= <floating> (1.0 - eps)
        if best == yi:
            n_correct[0] += 1
    return total


cdef inline void _row_axpy(Py_ssize_t e, floating a, const floating* x,
                           floating* y) noexcept nogil:
    """y += a x   for one embedding row (short: inlined, cheaper than a BLAS call)"""
    cdef Py_ssize_t c
    for c in range(e):
        y[c] += a * x[c]


cdef void _gather(Engine self, const floating* X, Py_ssize_t ldx, const int* ids,
                  const Py_ssize_t* indptr, const int* indices, const floating* tokw,
                  const floating* E, const Py_ssize_t* rows, Py_ssize_t t,
                  floating* out) noexcept nogil:
    """A[0] = the input rows of the batch: X[rows] (dense),
    [E[j1]; ...; E[jn]] (window) or sum_q w_q E[j_q] (/ r for mean) (bag)."""
    cdef Py_ssize_t i, p, q, r, e = self.embed_dim, nf = self.n_features
    cdef Py_ssize_t q0, q1
    cdef floating coef
    cdef floating* orow
    cdef const floating* src
    for i in range(t):
        r = rows[i]
        orow = out + i * nf
        if self.encoder == ENC_DENSE:
            memcpy(orow, X + r * ldx, nf * sizeof(floating))
        elif self.encoder == ENC_WINDOW:
            for p in range(self.window):
                src = E + <Py_ssize_t> ids[r * self.window + p] * e
                memcpy(orow + p * e, src, e * sizeof(floating))
        else:
            memset(orow, 0, e * sizeof(floating))
            q0 = indptr[r]
            q1 = indptr[r + 1]
            for q in range(q0, q1):
                coef = 1
                if tokw != NULL:
                    coef = tokw[q]
                if self.pool_mean:
                    coef = coef / (q1 - q0)
                _row_axpy(e, coef, E + <Py_ssize_t> indices[q] * e, orow)


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
               const floating* X, Py_ssize_t ldx, const int* ids,
               const Py_ssize_t* indptr, const int* indices, const floating* tokw,
               const int* y, const Py_ssize_t* rows, Py_ssize_t t, double lr,
               bint update, double* loss, Py_ssize_t* n_correct) noexcept nogil:
    """One minibatch: forward, loss, backward and (if ``update``) the parameter update.

    Plain SGD (no momentum) folds the update into the weight-gradient GEMM:
    W := (1 - lr alpha / t) W - (lr / t) A^T dK, so the gradient is never stored.
    Every other case writes G (flat) and then runs the optimiser over it.
    Returns -1 (leaving the parameters untouched) if the batch loss is not finite.
    """
    cdef int L = self.n_layers, l, m = self.n_classes
    cdef Py_ssize_t nf = self.n_features, fi, fo, wd, j, e = self.embed_dim
    cdef floating* A_in
    cdef floating* K
    cdef floating* dK
    cdef floating* dA = work + self.da_off
    cdef floating* dX = work + self.dx_off
    cdef floating* EG = work + self.eg_off
    cdef floating inv_t = (<floating> 1) / t
    cdef floating slope = <floating> self.leaky_slope, beta = <floating> self.swish_beta
    cdef double batch_loss, sq, lr_t = lr
    cdef bint fused = update and self.solver == SOLVER_SGD and self.momentum <= 0
    cdef int* slot_of
    cdef int* touched
    cdef Py_ssize_t k

    # forward: K[l] = A[l] W[l] + b[l];  A[l+1] = g(K[l])
    _gather(self, X, ldx, ids, indptr, indices, tokw, E, rows, t, work + self.x_off)
    A_in = work + self.x_off
    for l in range(L):
        fi = self.fan_in[l]
        fo = self.fan_out[l]
        K = work + self.k_off[l]
        gemm(False, False, <int> t, <int> fo, <int> fi, <floating> 1, A_in, <int> fi,
             P + self.w_off[l], <int> fo, <floating> 0, K, <int> fo)
        if self.has_bias[l]:
            _add_bias(t, fo, P + self.b_off[l], K)
        if l < L - 1:
            act_forward(self.act[l], t, self.width[l], K, work + self.a_off[l], slope, beta)
            A_in = work + self.a_off[l]

    # loss and output delta dK[L-1] = o - T
    batch_loss = _softmax_xent(t, m, work + self.k_off[L - 1], y, rows,
                               self.label_smoothing, work + self.dk_off[L - 1],
                               n_correct)
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
        A_in = work + (self.a_off[l - 1] if l > 0 else self.x_off)
        # dA[l] = dK[l] W[l]^T, with the weights before this batch's update
        if l > 0:
            gemm(False, True, <int> t, <int> fi, <int> fo, <floating> 1, dK, <int> fo,
                 P + self.w_off[l], <int> fo, <floating> 0, dA, <int> fi)
        elif self.encoder != ENC_DENSE:
            gemm(False, True, <int> t, <int> fi, <int> fo, <floating> 1, dK, <int> fo,
                 P + self.w_off[l], <int> fo, <floating> 0, dX, <int> fi)
        if fused:
            # W := (1 - lr alpha / t) W - (lr / t) A^T dK ;  b := b - (lr / t) colsum(dK)
            gemm(True, False, <int> fi, <int> fo, <int> t, <floating> (-lr) * inv_t,
                 A_in, <int> fi, dK, <int> fo,
                 <floating> (1.0 - lr * self.alpha / t), P + self.w_off[l], <int> fo)
            if self.has_bias[l]:
                _col_sums(t, fo, <floating> (-lr) * inv_t, dK, P + self.b_off[l], True)
        else:
            # dW = (A^T dK + alpha W) / t ;  db = colsum(dK) / t
            gemm(True, False, <int> fi, <int> fo, <int> t, inv_t, A_in, <int> fi,
                 dK, <int> fo, <floating> 0, G + self.w_off[l], <int> fo)
            if self.alpha > 0:
                axpy(<int> (fi * fo), <floating> (self.alpha / t), P + self.w_off[l],
                     G + self.w_off[l])
            if self.has_bias[l]:
                _col_sums(t, fo, inv_t, dK, G + self.b_off[l], False)
        # dK[l-1] = dA[l] * g'(K[l-1])
        if l > 0:
            act_backward(self.act[l - 1], t, self.width[l - 1],
                         work + self.k_off[l - 1], work + self.a_off[l - 1], dA,
                         work + self.dk_off[l - 1], slope, beta)

    if update:
        self.step += 1
        if self.solver == SOLVER_ADAM:
            lr_t = lr * sqrt(1.0 - pow(self.beta_2, <double> self.step)) / (
                1.0 - pow(self.beta_1, <double> self.step))
        if not fused:
            _optimise(self.solver, self.n_params, P, G, S1, S2, lr, self.momentum,
                      self.nesterov, self.beta_1, self.beta_2, self.epsilon, lr_t)

    # embedding rows: dE = dX / t scattered to the touched rows, then a lazy update
    if self.encoder != ENC_DENSE:
        _scatter_rows(self, ids, indptr, indices, tokw, rows, t, dX, inv_t, EG)
        slot_of = &self.slot_of[0]
        touched = &self.touched[0]
        for k in range(self.n_touched):
            j = touched[k]
            if update:
                _optimise(self.solver, e, E + j * e, EG + k * e,
                          ES1 + j * e if ES1 != NULL else NULL,
                          ES2 + j * e if ES2 != NULL else NULL,
                          lr, self.momentum, self.nesterov, self.beta_1, self.beta_2,
                          self.epsilon, lr_t)
            slot_of[j] = -1
    return 0


cdef inline floating* _ptr(floating[::1] a) noexcept:
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline floating* _ptr2(floating[:, ::1] a) noexcept:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef _train_range(Engine self, object X, object ids_obj, object indptr_obj,
                  object tokw_obj, const int[::1] y, const Py_ssize_t[::1] order,
                  Py_ssize_t start, Py_ssize_t stop, Py_ssize_t batch_size,
                  double lr, bint update, floating[::1] W):
    """Run the batches of order[start:stop] (typed dispatch of Engine.train)."""
    cdef floating[::1] P = self.params
    cdef floating[::1] G = self.grads
    cdef floating[::1] S1 = self.state1
    cdef floating[::1] S2 = self.state2
    cdef floating[:, ::1] E = self.E
    cdef floating[:, ::1] ES1 = self.E_state1
    cdef floating[:, ::1] ES2 = self.E_state2
    cdef const floating[:, ::1] Xv
    cdef const int[:, ::1] ids
    cdef const Py_ssize_t[::1] indptr
    cdef const int[::1] indices
    cdef const floating[::1] tokw
    cdef const floating* xp = NULL
    cdef const int* idp = NULL
    cdef const Py_ssize_t* ipp = NULL
    cdef const int* inp = NULL
    cdef const floating* twp = NULL
    cdef Py_ssize_t ldx = 0, s, t
    cdef double loss = 0.0
    cdef Py_ssize_t n_correct = 0
    cdef int status = 0
    cdef floating* Pp = _ptr(P)
    cdef floating* Gp = _ptr(G)
    cdef floating* S1p = _ptr(S1)
    cdef floating* S2p = _ptr(S2)
    cdef floating* Wp = _ptr(W)
    cdef floating* Ep = _ptr2(E)
    cdef floating* ES1p = _ptr2(ES1)
    cdef floating* ES2p = _ptr2(ES2)
    if self.encoder == ENC_DENSE:
        Xv = X
        if Xv.shape[1] != self.n_features:
            raise ValueError("Engine: X has the wrong number of columns")
        xp = &Xv[0, 0] if Xv.shape[0] > 0 else NULL
        ldx = Xv.shape[1]
    elif self.encoder == ENC_WINDOW:
        ids = ids_obj
        if ids.shape[1] != self.window:
            raise ValueError("Engine: ids have the wrong number of columns")
        idp = &ids[0, 0] if ids.shape[0] > 0 else NULL
    else:
        indptr = indptr_obj
        indices = ids_obj
        ipp = &indptr[0]
        inp = &indices[0] if indices.shape[0] > 0 else NULL
        if tokw_obj is not None:
            tokw = tokw_obj
            twp = &tokw[0] if tokw.shape[0] > 0 else NULL
    with nogil:
        s = start
        while s < stop:
            t = min(batch_size, stop - s)
            status = _step(self, Pp, Gp, S1p, S2p, Wp, Ep, ES1p, ES2p, xp, ldx, idp,
                           ipp, inp, twp, &y[0], &order[s], t, lr, update, &loss,
                           &n_correct)
            if status < 0:
                break
            s += t
    if status < 0:
        raise DivergenceError(
            f"the loss became non-finite on the batch starting at position {s}")
    return loss, n_correct


cdef _forward_chunk(Engine self, object X, object ids_obj, object indptr_obj,
                    object tokw_obj, Py_ssize_t s, Py_ssize_t e, Py_ssize_t chunk,
                    floating[::1] work, floating[:, ::1] out):
    """Logits of rows s..e-1 into out[s:e], using ``work`` laid out as
    [A0 | K0 A1 | K1 A2 | ...] with room for ``chunk`` rows."""
    cdef floating[::1] P = self.params
    cdef floating[:, ::1] E = self.E
    cdef const floating[:, ::1] Xv
    cdef const int[:, ::1] ids
    cdef const Py_ssize_t[::1] indptr
    cdef const int[::1] indices
    cdef const floating[::1] tokw
    cdef const floating* xp = NULL
    cdef const int* idp = NULL
    cdef const Py_ssize_t* ipp = NULL
    cdef const int* inp = NULL
    cdef const floating* twp = NULL
    cdef Py_ssize_t ldx = 0, t = e - s, i, l, off, fi, fo
    cdef Py_ssize_t[::1] rows = np.arange(s, e, dtype=np.intp)
    cdef floating* A_in
    cdef floating* K
    cdef floating* Wp = &work[0]
    cdef floating* Pp = &P[0]
    cdef floating* Ep = _ptr2(E)
    cdef floating slope = <floating> self.leaky_slope, beta = <floating> self.swish_beta
    if self.encoder == ENC_DENSE:
        Xv = X
        if Xv.shape[1] != self.n_features:
            raise ValueError("Engine: X has the wrong number of columns")
        xp = &Xv[0, 0]
        ldx = Xv.shape[1]
    elif self.encoder == ENC_WINDOW:
        ids = ids_obj
        if ids.shape[1] != self.window:
            raise ValueError("Engine: ids have the wrong number of columns")
        idp = &ids[0, 0]
    else:
        indptr = indptr_obj
        indices = ids_obj
        ipp = &indptr[0]
        inp = &indices[0] if indices.shape[0] > 0 else NULL
        if tokw_obj is not None:
            tokw = tokw_obj
            twp = &tokw[0] if tokw.shape[0] > 0 else NULL
    with nogil:
        _gather(self, xp, ldx, idp, ipp, inp, twp, Ep, &rows[0], t, Wp)
        A_in = Wp
        off = chunk * self.n_features
        for l in range(self.n_layers):
            fi = self.fan_in[l]
            fo = self.fan_out[l]
            K = Wp + off
            gemm(False, False, <int> t, <int> fo, <int> fi, <floating> 1, A_in, <int> fi,
                 Pp + self.w_off[l], <int> fo, <floating> 0, K, <int> fo)
            if self.has_bias[l]:
                _add_bias(t, fo, Pp + self.b_off[l], K)
            off += chunk * fo
            if l < self.n_layers - 1:
                act_forward(self.act[l], t, self.width[l], K, Wp + off, slope, beta)
                A_in = Wp + off
            else:
                memcpy(&out[s, 0], K, t * fo * sizeof(floating))
            off += chunk * self.width[l]
