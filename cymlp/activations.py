"""The registry of hidden-layer activations: names, kernel codes and properties.

The codes are the members of the ``Activation`` enum of ``_activations.pxd`` (a
``cpdef enum``, so Python sees it): a member ``ACT_GELU_TANH`` is the activation
``'gelu_tanh'``. Every other list of activation names in cymlp (the estimators'
parameter check, the command line, the workflow's schema, plots and tables, the NumPy
reference) is read from here or tested equal to it.

Adding an activation touches three places: a member of the enum and its forward and
backward loops in ``_activations.pxd``, one row of :data:`PROPERTIES` here, and its
formula in ``_reference.py`` and ``docs/model.md``.

The formulas, with derivatives, are in ``docs/model.md``. ``'logistic'`` is an alias of
``'sigmoid'`` (scikit-learn's name).
"""
from dataclasses import dataclass

from cymlp._activations import Activation

__all__ = ["ALIASES", "CODES", "NAMES", "PROPERTIES", "TRAINABLE", "canonical", "code",
           "info"]


@dataclass(frozen=True)
class Info:
    """What the rest of cymlp needs to know about one activation.

    Attributes
    ----------
    trainable : bool
        Whether it has a derivative (``step`` has none).
    init : {'he', 'glorot'}
        Weight initialisation of ``init='auto'``: He's rule for the ReLU family,
        Glorot's for the others.
    family : {'linear', 'step', 'saturating', 'rectifying'}
        Saturating units (bounded, derivative near zero for large ``|k|``) are
        diagnosed by their saturation, rectifying units by the units that never fire.
    gated : bool
        Whether the pre-activation has two halves (SwiGLU: ``fan_out = 2 width``).
    """

    trainable: bool
    init: str
    family: str
    gated: bool = False


#: canonical name -> properties; the keys are the enum's members, in its order
PROPERTIES = {
    "identity": Info(True, "glorot", "linear"),
    "step": Info(False, "glorot", "step"),
    "sigmoid": Info(True, "glorot", "saturating"),
    "tanh": Info(True, "glorot", "saturating"),
    "arctan": Info(True, "glorot", "saturating"),
    "relu": Info(True, "he", "rectifying"),
    "leaky_relu": Info(True, "he", "rectifying"),
    "gelu": Info(True, "he", "rectifying"),
    "gelu_tanh": Info(True, "he", "rectifying"),
    "swish": Info(True, "he", "rectifying"),
    "swiglu": Info(True, "he", "rectifying", gated=True),
}

#: other spellings accepted for an activation
ALIASES = {"logistic": "sigmoid"}

#: canonical name -> kernel code
CODES = {member.name[len("ACT_"):].lower(): int(member) for member in Activation}

if list(CODES) != list(PROPERTIES):  # pragma: no cover - a consistency guard at import
    raise ImportError(f"activation registry out of sync with _activations.pxd: "
                      f"{list(CODES)} != {list(PROPERTIES)}")

#: every accepted name: the canonical ones in the enum's order, then the aliases
NAMES = tuple(CODES) + tuple(ALIASES)

#: activations a model can be trained with
TRAINABLE = tuple(name for name, props in PROPERTIES.items() if props.trainable)


def canonical(name):
    """The canonical name of an activation (``'logistic'`` -> ``'sigmoid'``).

    Raises
    ------
    ValueError
        Naming the valid activations, for an unknown name or a non-string.
    """
    if isinstance(name, str):
        name = ALIASES.get(name, name)
        if name in CODES:
            return name
    raise ValueError(f"unknown activation {name!r}; expected one of {list(NAMES)}")


def code(name):
    """Kernel code of an activation name (ValueError naming the valid ones otherwise)."""
    return CODES[canonical(name)]


def info(name):
    """The :class:`Info` of an activation name."""
    return PROPERTIES[canonical(name)]
