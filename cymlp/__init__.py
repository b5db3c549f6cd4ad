"""cymlp: multilayer perceptrons and word-embedding text classifiers whose
backpropagation is derived by hand and compiled with Cython.

Public API: :class:`MLPClassifier`, :func:`gradcheck`, :func:`load`.
"""
from cymlp.gradcheck import gradcheck
from cymlp.mlp import MLPClassifier

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "gradcheck", "__version__"]
