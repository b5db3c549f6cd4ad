"""The description of a network: layer widths, activation, biases and parameter layout.

A :class:`Network` is made once per fit from the validated hyper-parameters and owned
by the fitted estimator. It is the one place that knows

* the layers: ``fan_in``, ``fan_out`` (twice the width for SwiGLU), ``width``, the
  activation code and whether the layer has a bias (the ``bias=`` placement rule);
* where every ``W[l]`` and ``b[l]`` lives in the flat parameter vector
  (``W[0], b[0], W[1], b[1], ...``; absent biases take no space) and its length;
* the embedding table of the text encoders (``n_vocab x embed_dim``), if any;
* how many bytes the parameters and the optimiser state take.

The compiled engine, model files, the memory check, :func:`cymlp.gradcheck` and the
benchmarks all read it; nothing else computes the layout.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from cymlp import activations as _act

__all__ = ["BIAS_PLACEMENTS", "OUTPUTS", "Embedding", "Layer", "Network", "has_bias"]

#: where the biases go: every layer (the note), hidden layers only, output only, none
BIAS_PLACEMENTS = ("both", "hidden", "output", "none")

#: the output layers: one softmax over the classes (one label per example), or one
#: sigmoid per label (several labels per example)
OUTPUTS = ("softmax", "sigmoid")

#: optimiser state arrays (each the size of the parameters) per solver
_STATE_ARRAYS = {"sgd": 0, "sgd_momentum": 1, "adagrad": 1, "adam": 2}


def has_bias(placement, hidden):
    """Whether a hidden (``hidden=True``) or the output layer has a bias under ``placement``."""
    if placement not in BIAS_PLACEMENTS:
        raise ValueError(f"bias must be one of {list(BIAS_PLACEMENTS)}, got {placement!r}")
    return placement in (("both", "hidden") if hidden else ("both", "output"))


def n_state_arrays(solver, momentum=0.0):
    """Number of optimiser state arrays the size of the parameters."""
    if solver == "sgd":
        return 1 if momentum > 0 else 0
    return _STATE_ARRAYS[solver]


@dataclass(frozen=True)
class Embedding:
    """The embedding table ``E`` and how the input ``f`` is formed from it.

    Attributes
    ----------
    kind : {'window', 'bag'}
        ``f = [E[j1]; ...; E[jn]]`` (window of ``window`` tokens) or the (weighted) sum
        of the rows of a bag, divided by its length when ``pool_mean``.
    n_vocab, embed_dim : int
        Shape of ``E``; row 0 is PAD (kept at zero).
    window : int
        Tokens per example of the window encoder (0 for the bag).
    pool_mean : bool
        Whether the kernel divides a bag's sum by its number of ids.
    """

    kind: str
    n_vocab: int
    embed_dim: int
    window: int = 0
    pool_mean: bool = True

    def __post_init__(self):
        if self.kind not in ("window", "bag"):
            raise ValueError(f"unknown encoder {self.kind!r}: an embedding is a 'window' "
                             "or a 'bag'")
        if self.n_vocab < 2 or self.embed_dim < 1 or (self.kind == "window") != (self.window >= 1):
            raise ValueError(f"inconsistent embedding description {self}")

    @property
    def n_features(self):
        """Width of the MLP's input ``f``."""
        return self.embed_dim * self.window if self.kind == "window" else self.embed_dim

    @property
    def shape(self):
        return (self.n_vocab, self.embed_dim)


@dataclass(frozen=True)
class Layer:
    """One layer ``K = A W + b`` and where its parameters live in the flat vector."""

    fan_in: int
    fan_out: int
    width: int
    activation: int  # kernel code; -1 for the output layer
    has_bias: bool
    w_offset: int
    b_offset: int  # -1 without a bias

    @property
    def w_slice(self):
        return slice(self.w_offset, self.w_offset + self.fan_in * self.fan_out)

    @property
    def b_slice(self):
        return slice(self.b_offset, self.b_offset + self.fan_out) if self.has_bias else None

    @property
    def w_shape(self):
        return (self.fan_in, self.fan_out)


@dataclass(frozen=True)
class Network:
    """The structure of a fitted network (see the module docstring).

    Build one with :meth:`Network.build`; ``layers`` and ``n_params`` are derived.
    """

    n_features: int
    hidden: tuple
    n_outputs: int
    activation: str
    bias: object  # a placement of BIAS_PLACEMENTS, or one flag per layer (a tuple)
    dtype: str
    leaky_slope: float = 0.01
    swish_beta: float = 1.0
    embedding: Embedding = None
    output: str = "softmax"  # or 'sigmoid': one independent probability per label
    layers: tuple = field(init=False, compare=False, repr=False)
    n_params: int = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {list(OUTPUTS)}, got {self.output!r}")
        gated = _act.info(self.activation).gated
        code = _act.code(self.activation)
        widths = list(self.hidden) + [self.n_outputs]
        flags = self.bias if isinstance(self.bias, tuple) else None
        if flags is not None and len(flags) != len(widths):
            raise ValueError(f"bias flags {flags} do not give one flag per layer")
        layers, offset, fan_in = [], 0, self.n_features
        for l, width in enumerate(widths):
            hidden = l < len(widths) - 1
            fan_out = 2 * width if (hidden and gated) else width
            bias = bool(flags[l]) if flags is not None else has_bias(self.bias, hidden)
            b_offset = offset + fan_in * fan_out if bias else -1
            layers.append(Layer(fan_in, fan_out, width, code if hidden else -1, bias,
                                offset, b_offset))
            offset += fan_in * fan_out + (fan_out if bias else 0)
            fan_in = width
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "n_params", offset)

    @classmethod
    def build(cls, *, n_features, hidden, n_outputs, activation, bias, dtype,
              leaky_slope=0.01, swish_beta=1.0, embedding=None, output="softmax"):
        """A network from validated hyper-parameters (names canonicalised here).

        ``bias`` is a placement of :data:`BIAS_PLACEMENTS` or a sequence of one flag
        per layer (hidden layers, then the output layer).
        """
        if embedding is not None and embedding.n_features != n_features:
            raise ValueError(f"inconsistent embedding description: {n_features} input "
                             f"features, but the embedding gives {embedding.n_features}")
        if not isinstance(bias, str):
            bias = tuple(bool(b) for b in bias)
        return cls(int(n_features), tuple(int(h) for h in hidden), int(n_outputs),
                   _act.canonical(activation), bias, np.dtype(dtype).name,
                   float(leaky_slope), float(swish_beta), embedding, output)

    # ------------------------------------------------------------------ sizes
    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    @property
    def n_layers(self):
        return len(self.layers)

    def n_bytes(self, solver="sgd", momentum=0.0):
        """Bytes of the parameters, their gradient and the optimiser state, and of ``E``
        with its optimiser state: what a fit holds besides the data and workspaces."""
        states = n_state_arrays(solver, momentum)
        total = self.n_params * (2 + states)
        if self.embedding is not None:
            total += self.embedding.n_vocab * self.embedding.embed_dim * (1 + states)
        return total * self.itemsize

    # ------------------------------------------------------------------ comparison
    def layout_difference(self, other):
        """None when ``other`` has the same parameter layout (so trained parameters carry
        over), else a sentence naming the first difference."""
        for name in ("dtype", "n_features", "hidden", "n_outputs", "bias", "output"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                return f"{name} changed from {a!r} to {b!r}"
        if [l.fan_out for l in self.layers] != [l.fan_out for l in other.layers]:
            return f"activation changed from {self.activation!r} to {other.activation!r}, " \
                   "which has another number of pre-activations per unit"
        if self.embedding != other.embedding:
            return f"the embedding changed from {self.embedding} to {other.embedding}"
        return None

    # ------------------------------------------------------------------ model files
    def to_dict(self):
        out = {"n_features": self.n_features, "hidden": list(self.hidden),
               "n_outputs": self.n_outputs, "activation": self.activation,
               "bias": self.bias if isinstance(self.bias, str) else list(self.bias),
               "dtype": self.dtype, "leaky_slope": self.leaky_slope,
               "swish_beta": self.swish_beta, "embedding": None, "output": self.output}
        if self.embedding is not None:
            e = self.embedding
            out["embedding"] = {"kind": e.kind, "n_vocab": e.n_vocab,
                                "embed_dim": e.embed_dim, "window": e.window,
                                "pool_mean": e.pool_mean}
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict`; ValueError naming the problem otherwise."""
        if not isinstance(d, dict):
            raise ValueError(f"network must be an object, got {type(d).__name__}")
        try:
            emb = d["embedding"]
            if emb is not None:
                emb = Embedding(_text(emb, "kind"), _count(emb, "n_vocab", 2),
                                _count(emb, "embed_dim", 1), _count(emb, "window", 0),
                                _flag(emb, "pool_mean"))
            hidden, bias = d["hidden"], d["bias"]
            if not isinstance(hidden, list):
                raise ValueError("hidden must be a list")
            if isinstance(bias, list) and all(isinstance(b, bool) for b in bias):
                bias = tuple(bias)
            elif bias not in BIAS_PLACEMENTS:
                raise ValueError(f"bias must be one of {list(BIAS_PLACEMENTS)} or a list of "
                                 f"flags, got {bias!r}")
            return cls.build(
                n_features=_count(d, "n_features", 1),
                hidden=[_count({"hidden": h}, "hidden", 1) for h in hidden],
                n_outputs=_count(d, "n_outputs", 1), activation=_text(d, "activation"),
                bias=bias, dtype=_dtype(d), leaky_slope=_real(d, "leaky_slope"),
                swish_beta=_real(d, "swish_beta"), embedding=emb,
                output=d.get("output", "softmax"))
        except KeyError as exc:
            raise ValueError(f"network description lacks {exc}") from None


def _count(d, key, low):
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{key} must be an int >= {low}, got {value!r:.60}")
    return value


def _real(d, key):
    value = d[key]
    try:
        out = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):  # not a number, or an int beyond floats
        out = None
    if out is None or not isinstance(value, (int, float)) or not math.isfinite(out):
        raise ValueError(f"{key} must be a finite number, got {value!r:.60}")
    return out


def _text(d, key):
    value = d[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r:.60}")
    return value


def _flag(d, key):
    value = d[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r:.60}")
    return value


def _dtype(d):
    value = _text(d, "dtype")
    if value not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {value!r:.60}")
    return value
