"""cymlp: multilayer perceptrons and word-embedding text classifiers whose
backpropagation is derived by hand and compiled with Cython.

Public API: :class:`MLPClassifier`, :class:`TextClassifier`, :class:`Vocabulary`,
:func:`autotune` (hyper-parameters and model families chosen on development data within
a time budget, :mod:`cymlp.tuning`), :class:`TfidfFeatures` and :class:`TextPipeline`
(sparse n-gram features under an MLP), :class:`SeedEnsemble`, :func:`gradcheck`,
:func:`save` and :func:`load` (model files), and the modules :mod:`cymlp.datasets` and
:mod:`cymlp.io`. ``docs/architecture.md`` maps the modules.
"""
try:
    from cymlp import _mlp  # noqa: F401  the compiled engine; everything below needs it
except ImportError as _exc:  # pragma: no cover - depends on how cymlp was installed
    import os as _os

    raise ImportError(
        f"cymlp's compiled extension is missing ({_exc}): the cymlp package in "
        f"{_os.path.dirname(__file__)} has not been built. Build it there with "
        "`pip install -e .` (or `python setup.py build_ext --inplace`); if cymlp is "
        "installed elsewhere, this source folder is shadowing it: do not run Python "
        "with this checkout as the current folder on the module path (use the `cymlp` "
        "command, `python -P`, or another folder)") from _exc

from cymlp import datasets
from cymlp.tuning import autotune
from cymlp.ensemble import SeedEnsemble
from cymlp.features import TextPipeline, TfidfFeatures
from cymlp.gradcheck import gradcheck
from cymlp.io import load, save
from cymlp.mlp import MLPClassifier
from cymlp.text import TextClassifier
from cymlp.vocab import Vocabulary

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "TextClassifier", "Vocabulary", "TfidfFeatures", "TextPipeline",
           "SeedEnsemble", "autotune", "gradcheck", "load", "save", "datasets",
           "__version__"]
