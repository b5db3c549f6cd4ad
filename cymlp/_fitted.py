"""What a fit produces, held in one object: the fitted state of an estimator.

:class:`FittedModel` holds the input encoder (numeric columns, or the text vocabulary),
the classes, the :class:`~cymlp._network.Network`, the compiled engine with the
parameters and the optimiser state, the :class:`TrainingRecord` and the random
generator that shuffles the epochs. An estimator owns at most one, and replaces it only
when a fit succeeds, so a failed fit leaves a fitted estimator exactly as it was.

It also knows how to turn itself into plain data (a dict of JSON values and a dict of
arrays) and back: model files, pickling and copies all go through
:meth:`FittedModel.to_state` and :meth:`FittedModel.from_state`.
"""
import copy
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from cymlp._mlp import BAD_ROW_FLAGS, SOLVERS, Engine
from cymlp._network import Network
from cymlp._validation import all_finite
from cymlp.io import ModelFileError as StateError  # saved state that cannot be read back

__all__ = ["FittedModel", "TrainingRecord"]

_OPTIMISER_ARRAYS = ("state1", "state2", "E_state1", "E_state2")
_ENGINE_SETTINGS = ("momentum", "leaky_slope", "swish_beta", "alpha", "label_smoothing",
                    "beta_1", "beta_2", "epsilon", "nesterov", "train_embeddings")


# --------------------------------------------------------------------- training record
@dataclass
class TrainingRecord:
    """The progress of training, carried from one fit call to the next.

    The estimators expose it as ``n_iter_``, ``t_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``, ``best_loss_``, ``history_``
    and ``best_epoch_``; the rest drives the stopping rule and the learning rate:
    ``lr`` is the current rate of the 'adaptive' schedule, started at ``lr_init``.
    """

    lr: float
    lr_init: float = None
    n_iter: int = 0
    t: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = None
    best_validation_score: float = None
    best_loss: float = math.inf
    no_improvement_count: int = 0
    armed: bool = False
    best_epoch: int = None
    history: list = field(default_factory=list)

    def __post_init__(self):
        if self.lr_init is None:
            self.lr_init = self.lr

    def copy(self):
        """A copy whose lists can grow apart (their items are never changed in place)."""
        out = copy.copy(self)
        for name in ("loss_curve", "validation_scores", "history"):
            value = getattr(self, name)
            setattr(out, name, None if value is None else list(value))
        return out

    def to_json(self):
        out = dict(vars(self))
        out["best_loss"] = None if math.isinf(self.best_loss) else self.best_loss
        if self.best_validation_score is not None and math.isinf(self.best_validation_score):
            out["best_validation_score"] = None
        return copy.deepcopy(out)

    @classmethod
    def from_json(cls, d):
        """Rebuild from :meth:`to_json`; :class:`StateError` naming the bad field."""
        if not isinstance(d, dict):
            raise StateError(f"training record must be an object, got {type(d).__name__}")
        rec = cls(lr=_number(d, "lr", low=0.0, open_low=True))
        if d.get("lr_init") is not None:
            rec.lr_init = _number(d, "lr_init", low=0.0, open_low=True)
        rec.n_iter = _count(d, "n_iter")
        rec.t = _count(d, "t")
        rec.loss_curve = _numbers(d, "loss_curve")
        scores = d.get("validation_scores")
        rec.validation_scores = None if scores is None else _numbers(d, "validation_scores")
        best = d.get("best_validation_score")
        rec.best_validation_score = None if best is None else _number(d, "best_validation_score")
        if rec.validation_scores is not None and rec.best_validation_score is None:
            rec.best_validation_score = -math.inf
        loss = d.get("best_loss")
        rec.best_loss = math.inf if loss is None else _number(d, "best_loss")
        rec.no_improvement_count = _count(d, "no_improvement_count")
        rec.armed = _flag(d, "armed")
        epoch = d.get("best_epoch")
        rec.best_epoch = None if epoch is None else _count(d, "best_epoch")
        history = d.get("history", [])
        if not isinstance(history, list) or not all(_is_epoch_record(h) for h in history):
            raise StateError("training record: history must be a list of objects of numbers, "
                             "strings, null or lists of those")
        rec.history = history
        return rec


def _is_epoch_record(h):
    """One epoch of ``history``: a flat object (lists of plain values at most), so that
    copying and saving it cannot recurse deeply."""
    plain = (type(None), bool, int, float, str)
    return isinstance(h, dict) and all(
        isinstance(k, str) and (isinstance(v, plain) or (
            isinstance(v, list) and all(isinstance(x, plain) for x in v)))
        for k, v in h.items())


def _count(d, key):
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise StateError(f"training record: {key} must be an int in [0, 2**63), got "
                         f"{_short(value)}")
    return value


def _short(value, limit=60):
    """``repr(value)`` for a message, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int Python will not print
        return "a huge integer"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _number(d, key, low=None, open_low=False):
    value = d.get(key)
    out = None
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            out = float(value)
        except OverflowError:  # an int beyond the float range
            out = None
    ok = out is not None and math.isfinite(out)
    if ok and low is not None:
        ok = out > low if open_low else out >= low
    if not ok:
        raise StateError(f"training record: {key} must be a finite number, got "
                         f"{_short(value)}")
    return out


def _numbers(d, key):
    values = d.get(key)
    if not isinstance(values, list):
        raise StateError(f"training record: {key} must be a list of numbers, got "
                         f"{_short(values)}")
    return [_number({key: v}, key) for v in values]


def _flag(d, key):
    value = d.get(key)
    if not isinstance(value, bool):
        raise StateError(f"training record: {key} must be true or false, got {_short(value)}")
    return value


# --------------------------------------------------------------------- classes
def classes_to_state(classes):
    """(meta, arrays) of the class labels, keeping their exact type.

    Numeric and boolean labels are stored as an array of their own dtype (uint8 stays
    uint8, uint64 stays uint64); strings as a JSON list; Python ints beyond 64 bits as
    a JSON list of ints; labels of several types (``[1, 'a', 2.5]``) as a JSON list of
    those values, which keeps each one's type.
    """
    if classes.dtype.kind in "biuf":
        return {"kind": "array"}, {"classes": classes}
    values = [v.item() if isinstance(v, np.generic) else v for v in classes.tolist()]
    if classes.dtype.kind == "U" or all(isinstance(v, str) for v in values):
        return {"kind": "str", "values": [str(v) for v in values]}, {}
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        return {"kind": "int", "values": [int(v) for v in values]}, {}
    if all(isinstance(v, _MIXED_TYPES) for v in values):
        return {"kind": "mixed", "values": values}, {}
    raise TypeError("only models whose labels are numbers, strings or booleans can be "
                    f"saved; got labels {values[:5]!r}")


#: the label types a JSON list keeps apart (true, 1, 1.5, "1")
_MIXED_TYPES = (str, bool, int, float)


def classes_from_state(meta, arrays):
    if not isinstance(meta, dict):
        raise StateError("classes must be described by an object")
    kind = meta.get("kind")
    if kind == "array":
        classes = arrays.get("classes")
        if classes is None or classes.ndim != 1 or classes.dtype.kind not in "biuf":
            raise StateError("classes must be a 1-D numeric or boolean array")
    elif kind in ("str", "int", "mixed"):
        values = meta.get("values")
        if kind == "mixed":
            ok = isinstance(values, list) and all(
                isinstance(v, _MIXED_TYPES) and not (isinstance(v, float)
                                                     and not math.isfinite(v))
                for v in values)
            what = "strings, numbers and booleans"
        else:
            want = str if kind == "str" else int
            ok = isinstance(values, list) and all(
                isinstance(v, want) and not isinstance(v, bool) for v in values)
            what = want.__name__
        if not ok:
            raise StateError(f"classes must be a list of {what}")
        if kind == "str" and not any(v.endswith("\0") for v in values):
            classes = np.asarray(values, dtype=str)
        else:  # NumPy's str arrays would drop a label's trailing NUL characters
            classes = np.empty(len(values), dtype=object)
            classes[:] = values
    else:
        raise StateError(f"unknown kind of classes {kind!r}")
    if len(classes) < 2:
        raise StateError("'classes' must list at least 2 labels")
    if classes.dtype.kind == "f" and not np.isfinite(classes).all():
        raise StateError("classes must be finite")
    if len(set(classes.tolist())) != len(classes):
        raise StateError("classes must be distinct")
    return classes


# --------------------------------------------------------------------- the fitted model
class FittedModel:
    """The fitted state of an estimator (see the module docstring).

    ``coefs`` and ``intercepts`` are the lists the estimator shows as ``coefs_`` and
    ``intercepts_``: views into the engine's flat parameters, so that in-place changes
    take effect; an array assigned in place of a view is copied in by :meth:`sync`.
    """

    def __init__(self, encoder, classes, network, engine, record, rng):
        self.encoder = encoder
        self.classes = classes
        self.network = network
        self.engine = engine
        self.record = record
        self.rng = rng
        self.expose()

    @classmethod
    def new(cls, encoder, classes, network, lr, rng):
        """A model with a fresh engine (zero parameters) and an empty record."""
        return cls(encoder, classes, network, Engine(network), TrainingRecord(lr=lr), rng)

    # ------------------------------------------------------------- parameter views
    def expose(self):
        """(Re)make the views of ``W[l]``, ``b[l]`` and ``E``."""
        params = self.engine.params
        self.coefs = [params[L.w_slice].reshape(L.w_shape) for L in self.network.layers]
        self.intercepts = [None if not L.has_bias else params[L.b_slice]
                           for L in self.network.layers]
        self.embeddings = self.engine.E if self.network.embedding is not None else None
        self._views = (list(self.coefs), list(self.intercepts), self.embeddings)

    def sync(self):
        """Copy arrays a user assigned in place of the views into the engine."""
        views_w, views_b, view_e = self._views
        coefs, intercepts = list(self.coefs), list(self.intercepts)
        if len(coefs) != len(views_w) or len(intercepts) != len(views_b):
            raise ValueError(
                f"coefs_ and intercepts_ must keep {len(views_w)} entries (one per layer)")
        changed = False
        pairs = [(c, v, "coefs_", l) for l, (c, v) in enumerate(zip(coefs, views_w))]
        pairs += [(b, v, "intercepts_", l) for l, (b, v) in enumerate(zip(intercepts, views_b))]
        for new, view, kind, l in pairs:
            if new is view:
                continue
            if view is None:
                if new is not None:
                    raise ValueError(f"{kind}[{l}] must stay None: layer {l} has no bias "
                                     f"(bias={self.network.bias!r})")
                continue
            view[...] = _checked(new, view, f"{kind}[{l}]")
            changed = True
        if view_e is not None and self.embeddings is not view_e:
            view_e[...] = _checked(self.embeddings, view_e, "embeddings_",
                                   "one row per vocabulary entry")
            view_e[0] = 0  # PAD
            changed = True
        if changed:
            self.expose()

    # ------------------------------------------------------------- training support
    def non_finite(self, after_epoch=False):
        """The name of the first parameter array that holds NaN or infinity, e.g.
        ``'coefs_[0]'``, or of an optimiser state array that holds NaN; None when there
        is none. (An infinite second moment is a valid state: Adam's and Adagrad's step
        for that parameter is then 0.) ``after_epoch``: right after an epoch, whose
        engine checked every row of the embedding table (and of its state) it wrote,
        so that those tables, which can be far larger than the rest, are not scanned."""
        e = self.engine
        params = e.params
        for l, layer in enumerate(self.network.layers):
            if not all_finite(params[layer.w_slice]):
                return f"coefs_[{l}]"
            if layer.has_bias and not all_finite(params[layer.b_slice]):
                return f"intercepts_[{l}]"
        if self.network.embedding is not None and (
                e.bad_rows & BAD_ROW_FLAGS["E"] if after_epoch else not all_finite(e.E)):
            return "embeddings_"
        for name in _OPTIMISER_ARRAYS:
            if after_epoch and name in BAD_ROW_FLAGS:
                bad = e.bad_rows & BAD_ROW_FLAGS[name]
            else:
                bad = not all_finite(getattr(e, name), allow_inf=True)
            if bad:
                return f"the optimiser state ({name})"
        return None

    def snapshot(self):
        """Everything a fit changes, to undo a failed warm fit with :meth:`restore`."""
        e = self.engine
        return {"params": e.params.copy(), "E": e.E.copy(), "step": e.step,
                "solver": e.solver,
                **{name: getattr(e, name) for name in _ENGINE_SETTINGS},
                **{name: getattr(e, name).copy() for name in _OPTIMISER_ARRAYS},
                "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def restore(self, snap):
        e = self.engine
        e.params[...] = snap["params"]
        e.E[...] = snap["E"]
        for name in _ENGINE_SETTINGS:
            setattr(e, name, snap[name])
        e.set_state(snap["solver"], snap["step"], snap)
        self.rng.bit_generator.state = snap["rng"]

    # ------------------------------------------------------------- plain data
    def to_state(self):
        """(meta, arrays): JSON-serialisable values and NumPy arrays; ValueError for
        parameters changed in place to NaN or infinity (no state is ever written that
        :meth:`from_state` would refuse)."""
        bad = self.non_finite()
        if bad is not None:
            raise ValueError(f"{bad} holds NaN or infinity: a model file (or a pickle) of "
                             "it could not be loaded; fit again, or repair the array")
        e = self.engine
        classes_meta, arrays = classes_to_state(self.classes)
        encoder_meta, encoder_arrays = self.encoder.to_state()
        arrays.update({f"encoder.{k}": v for k, v in encoder_arrays.items()})
        arrays["params"] = e.params
        if self.network.embedding is not None:
            arrays["E"] = e.E
        for name in _OPTIMISER_ARRAYS:
            arrays[name] = getattr(e, name)
        solver = {v: k for k, v in SOLVERS.items()}[e.solver]
        meta = {"classes": classes_meta, "network": self.network.to_dict(),
                "encoder": encoder_meta, "record": self.record.to_json(),
                "optimizer": {"solver": solver, "momentum": e.momentum, "step": int(e.step)},
                "rng": _jsonable_rng(self.rng)}
        return meta, arrays

    @staticmethod
    def array_limits(meta, encoder_class):
        """{array name: the most bytes of data it can hold} for the state ``meta`` (of
        :meth:`to_state`), from its network description alone, so that a model file's
        arrays can be bounded before any of them is read."""
        if not isinstance(meta, dict):
            raise StateError("the fitted state must be an object")
        network = _network_of(meta)
        size = network.itemsize
        n = network.n_params * size
        e = 0 if network.embedding is None else (
            network.embedding.n_vocab * network.embedding.embed_dim * size)
        limits = {"params": n, "state1": n, "state2": n, "E_state1": e, "E_state2": e,
                  "classes": network.n_outputs * 16}  # (longdouble labels: 16 bytes)
        if network.embedding is not None:
            limits["E"] = e
        encoder = encoder_class.array_limits(meta.get("encoder"), network)
        limits.update({f"encoder.{k}": v for k, v in encoder.items()})
        return limits

    @classmethod
    def from_state(cls, meta, arrays, encoder_class):
        """Rebuild from :meth:`to_state`; :class:`StateError` naming what is wrong."""
        if not isinstance(meta, dict):
            raise StateError("the fitted state must be an object")
        network = _network_of(meta)
        classes = classes_from_state(meta.get("classes"), arrays)
        if len(classes) != network.n_outputs:
            raise StateError(f"{len(classes)} classes but the network has "
                             f"{network.n_outputs} outputs")
        record = TrainingRecord.from_json(meta.get("record"))
        # sizes first: a file describing a huge network is refused before any allocation
        _check_array(arrays.get("params"), (network.n_params,), network.dtype, "params")
        if network.embedding is not None:
            _check_array(arrays.get("E"), network.embedding.shape, network.dtype, "E")
        encoder = encoder_class.from_state(
            meta.get("encoder"), {k[len("encoder."):]: v for k, v in arrays.items()
                                  if k.startswith("encoder.")}, network)
        model = cls.new(encoder, classes, network, record.lr, _rng_from_json(meta.get("rng")))
        model.record = record
        e = model.engine
        _load_array(e.params, arrays.get("params"), "params")
        if network.embedding is not None:
            _load_array(e.E, arrays.get("E"), "E")
        opt = meta.get("optimizer")
        if opt is None:  # (files of model version 1) a fresh optimiser at the next fit
            return model
        if (not isinstance(opt, dict) or opt.get("solver") not in SOLVERS
                or isinstance(opt.get("step"), bool) or not isinstance(opt.get("step"), int)
                or not 0 <= opt["step"] < 2**63 or isinstance(opt.get("momentum"), bool)
                or not isinstance(opt.get("momentum"), (int, float))
                or not 0 <= opt["momentum"] <= 1):
            raise StateError("optimizer must give solver, momentum in [0, 1] and step in "
                             "[0, 2**63)")
        e.momentum = float(opt["momentum"])
        try:
            e.set_state(SOLVERS[opt["solver"]], opt["step"],
                        {k: _finite(arrays.get(k), k, allow_inf=True)
                         for k in _OPTIMISER_ARRAYS})
        except ValueError as exc:
            raise StateError(str(exc)) from None
        return model


def _network_of(meta):
    try:
        return Network.from_dict(meta.get("network"))
    except ValueError as exc:
        raise StateError(f"bad network description: {exc}") from None


def _checked(new, view, what, rows=""):
    arr = np.asarray(new, dtype=view.dtype)
    if arr.shape != view.shape:
        extra = f" ({rows})" if rows else ""
        raise ValueError(f"{what} must have shape {view.shape}{extra}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return arr


def _finite(array, name, allow_inf=False):
    if array is None:
        raise StateError(f"no {name!r} array")
    if array.dtype.kind == "f" and not all_finite(array, allow_inf=allow_inf):
        raise StateError(f"{name!r} contains NaN" + ("" if allow_inf else " or infinity"))
    return array


def _check_array(array, shape, dtype, name):
    """ModelFileError unless ``array`` is finite, of ``shape`` and ``dtype``."""
    want = f"{name!r} must be {np.dtype(dtype)} of shape {shape}"
    if array is None:
        raise StateError(f"no {name!r} array: {want}")
    if array.shape != shape:
        raise StateError(f"{name!r} has shape {array.shape}, but the model described "
                         f"needs {shape}: {want}")
    if array.dtype != dtype:
        raise StateError(f"{name!r} has dtype {array.dtype}, expected {np.dtype(dtype)}: "
                         "its dtype does not match the network's")
    _finite(array, name)


def _load_array(target, array, name):
    _check_array(array, target.shape, target.dtype, name)
    target[...] = array


def _jsonable_rng(rng):
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        return None  # another generator: saved models reshuffle from a fresh seed
    return copy.deepcopy(state)


def _rng_from_json(state):
    rng = np.random.default_rng()
    if state is None:
        return rng
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise StateError("rng: not a valid PCG64 generator state") from None
    return rng
