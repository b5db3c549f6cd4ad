"""Names of the hidden-layer activations and their kernel codes.

The formulas, with derivatives, are in ``docs/model.md``; the kernels are in
``_activations.pxd``. ``'logistic'`` is an alias of ``'sigmoid'`` (scikit-learn's name).
"""

#: name -> code of ``_activations.pxd``'s ``Activation`` enum
CODES = {
    "identity": 0,
    "step": 1,
    "sigmoid": 2,
    "logistic": 2,
    "tanh": 3,
    "arctan": 4,
    "relu": 5,
    "leaky_relu": 6,
    "gelu": 7,
    "gelu_tanh": 8,
    "swish": 9,
    "swiglu": 10,
}

#: activations a model can be trained with (``step`` has no derivative)
TRAINABLE = tuple(name for name in CODES if name not in ("step", "logistic"))

#: the ReLU family, initialised with He's rule; the rest use Glorot's
HE_FAMILY = frozenset({"relu", "leaky_relu", "gelu", "gelu_tanh", "swish", "swiglu"})

#: bounded activations whose units saturate (derivative near zero for large |k|)
SATURATING = frozenset({"sigmoid", "logistic", "tanh", "arctan"})

#: activations whose units can die (never active: k <= 0 on every example)
RECTIFYING = frozenset({"relu", "leaky_relu", "gelu", "gelu_tanh", "swish", "swiglu"})


def code(name):
    """Kernel code of an activation name; ValueError naming the valid ones otherwise."""
    try:
        return CODES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(CODES)}") from None
