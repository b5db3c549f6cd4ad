"""Build the compiled extensions of cymlp.

One Extension per ``.pyx`` file. Cython's safety checks are off project-wide
(``boundscheck``, ``wraparound``, ``initializedcheck``): all input is validated in Python
before a kernel runs. ``CYMLP_CYTHON_DEBUG=1`` turns the checks back on and builds
without optimisation, for the debug test run. ``CYMLP_SANITIZE=address`` builds with
AddressSanitizer.

Every build also writes ``cymlp/_build_info.py``: the git commit the package is built
from (and whether the work tree had uncommitted changes), so that a run record can say
which code produced it without looking at the folder it happens to run in.
"""
import os
import subprocess

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

# -fno-trapping-math lets GCC turn the compares of the kernels' loops into selects (so
# they vectorise); -fopenmp-simd honours the kernels' SIMD pragmas (no OpenMP runtime)
compile_args = (["-O0", "-g"] if DEBUG else
                ["-O3", "-fno-math-errno", "-fno-trapping-math"]) + ["-fopenmp-simd"]
link_args = []
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g"]
    link_args += [f"-fsanitize={SANITIZE}"]

MODULES = ["_blas", "_activations", "_mlp", "_text"]

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_INFO = os.path.join(HERE, "cymlp", "_build_info.py")


def _git(*args):
    """Output of a git command run in the source tree, or None (no git, not a checkout)."""
    try:
        proc = subprocess.run(["git", "-C", HERE, *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def write_build_info():
    """Record the commit of the source tree in ``cymlp/_build_info.py``.

    Rewritten only when its content changes, so that repeated builds leave the file
    (and its modification time) alone.
    """
    commit = _git("rev-parse", "--verify", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    dirty = None if status is None else bool(status)
    text = (
        '"""Written by setup.py at build time: the source the compiled package was built '
        'from."""\n\n'
        f"#: git commit of the source tree (None: not built from a git checkout)\n"
        f"COMMIT = {commit!r}\n"
        f"#: whether tracked files differed from that commit (None: unknown)\n"
        f"DIRTY = {dirty!r}\n"
    )
    try:
        with open(BUILD_INFO, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    except OSError:
        pass
    with open(BUILD_INFO, "w", encoding="utf-8") as fh:
        fh.write(text)


write_build_info()

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
