"""Build the compiled extensions of cymlp.

One Extension per ``.pyx`` file. Cython's safety checks are off project-wide
(``boundscheck``, ``wraparound``, ``initializedcheck``): all input is validated in Python
before a kernel runs. ``CYMLP_CYTHON_DEBUG=1`` turns the checks back on and builds
without optimisation, for the debug test run. ``CYMLP_SANITIZE=address`` builds with
AddressSanitizer.
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CYMLP_CYTHON_DEBUG", "0") not in ("", "0")
SANITIZE = os.environ.get("CYMLP_SANITIZE", "")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]
link_args = []
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g"]
    link_args += [f"-fsanitize={SANITIZE}"]

MODULES = ["_blas", "_activations", "_mlp", "_text"]

extensions = [
    Extension(
        f"cymlp.{name}",
        [f"cymlp/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       ("CYMLP_CHECKS", "1" if DEBUG else "0")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        # each build mode generates its C files in its own folder, so a release build
        # never reuses C generated with the checks on (or the other way round)
        build_dir=f"build/cython-{'debug' if DEBUG else 'release'}{'-' + SANITIZE if SANITIZE else ''}",
    ),
)
