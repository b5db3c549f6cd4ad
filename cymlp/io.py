"""Model files without pickle: the container format, and saving and loading estimators.

This module owns the container and knows no estimator class: an estimator turns
itself into plain data (``_to_state``: a dict of JSON values and a dict of arrays) and
back (``_from_state``), and registers its class here by name (:func:`register`), so
that :func:`load` can find it. :func:`save` / :func:`load` (``cymlp.save`` and
``cymlp.load``), the estimators' ``save`` method and pickling all go through that state.

A cymlp model file (a *bundle*) is a zip archive holding

* ``meta.json``: UTF-8 JSON, an object with ``"format": "cymlp"``,
  ``"format_version"`` and the caller's metadata (hyper-parameters,
  classes, vocabulary, ...);
* one ``NAME.npy`` per array, in NumPy's ``.npy`` format, written and read
  with ``allow_pickle=False``.

Loading never unpickles anything, so a model file from an untrusted source
cannot run code; a file that is damaged, not a bundle, or written by a newer
cymlp raises :class:`ModelFileError` with a message that says which.
Writing is atomic (:func:`atomic_write`): the bundle is written to a temporary
file next to the target and moved into place with :func:`os.replace`, so an
interrupted save leaves any previous file intact.
"""

import contextlib
import json
import math
import numbers
import os
import pathlib
import re
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "MODEL_VERSION", "ModelFileError", "atomic_write",
           "load", "load_bundle", "register", "save", "save_bundle"]

#: Value of ``"format"`` in ``meta.json``.
FORMAT = "cymlp"
#: Newest bundle format this version writes and reads.
FORMAT_VERSION = 1
#: Version of the estimators' state inside a bundle (``"model_version"``).
MODEL_VERSION = 2

_META = "meta.json"
_SUFFIX = ".npy"
_RESERVED_KEYS = ("format", "format_version")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")

#: Largest uncompressed size accepted for one member of a bundle (bytes); a
#: guard against archives that declare absurd sizes ("zip bombs").
MAX_MEMBER_SIZE = 8 * 2**30
#: Largest ``meta.json`` accepted (bytes).
MAX_META_SIZE = 256 * 2**20


class ModelFileError(ValueError):
    """A model file is damaged, not a cymlp bundle, or of an unsupported version."""


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        return obj.tolist()
    if isinstance(obj, (pathlib.PurePath,)):
        return str(obj)
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON-serialisable")


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"array name {name!r} is not allowed: use letters, digits, '_', '-' and "
            "'.', not starting with '.', without '..' or '/'"
        )


def save_bundle(path, meta, arrays, *, compress=False):
    """Write metadata and arrays to one model file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; an existing file there is replaced only once the new
        one is completely written.
    meta : dict
        JSON-serialisable metadata (NumPy scalars and non-object arrays are
        converted to Python numbers and lists). The keys ``"format"`` and
        ``"format_version"`` are reserved.
    arrays : dict of str to array_like
        The arrays, stored as ``NAME.npy``. Names use letters, digits, ``_``,
        ``-`` and ``.`` (not first). Object arrays are rejected.
    compress : bool, default=False
        Deflate the members (smaller files, slower save and load).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For a reserved meta key, a bad array name or an object array.
    TypeError
        If ``meta`` is not a dict or holds values JSON cannot represent.
    """
    path = pathlib.Path(path)
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    clash = [k for k in _RESERVED_KEYS if k in meta]
    if clash:
        raise ValueError(f"meta keys {clash} are reserved for the file format")
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict of name to array, got {type(arrays).__name__}")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    meta_bytes = json.dumps(header, default=_json_default, ensure_ascii=False, indent=1).encode(
        "utf-8"
    )
    prepared = []
    for name, value in arrays.items():
        _check_name(name)
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise ValueError(
                f"array {name!r} has dtype {array.dtype} holding Python objects; "
                "model files store numeric arrays only"
            )
        prepared.append((name, array))

    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=compression, allowZip64=True) as zf:
            zf.writestr(_META, meta_bytes)
            for name, array in prepared:
                with zf.open(name + _SUFFIX, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
    return path


@contextlib.contextmanager
def atomic_write(path, mode="wb", *, encoding=None):
    """Write a file so that readers see the old file or the whole new one, never part.

    Yields a file object on a temporary file in the target's folder; when the block
    ends without an exception the data are flushed to disk and the temporary file
    replaces ``path``; otherwise it is removed. The new file gets the permissions an
    ordinary new file gets (``0o666`` less the umask).

    ``path`` may be a symbolic link: the file it points to is replaced and the link
    stays. Errors (a missing folder, a full disk, no permission) are raised as
    ``OSError`` naming ``path``, not the temporary file.

    Parameters
    ----------
    path : str or os.PathLike
    mode : {'wb', 'w'}
    encoding : str, optional
        For text mode.
    """
    target = pathlib.Path(os.path.realpath(path))
    if target.is_dir():
        raise IsADirectoryError(21, f"cannot write {path}: it is a directory")
    tmp = None
    try:
        for _ in range(100):
            # a short name of its own: a target name near the file-name limit still works
            candidate = target.parent / f".cymlp-{os.getpid()}-{os.urandom(6).hex()}.tmp"
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            tmp = candidate
            break
        else:
            raise FileExistsError(17, f"cannot write {path}: no free temporary name")
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        if exc.errno is not None and str(path) not in str(exc):
            why = exc.strerror or str(exc)
            if exc.errno == 2 and not target.parent.is_dir():
                why += f" (the folder {target.parent} does not exist)"
            raise OSError(exc.errno, f"cannot write {path}: {why}") from exc
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _check_members(zf, path):
    names = zf.namelist()
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: damaged model file (duplicate entries)")
    for info in zf.infolist():
        name = info.filename
        if "/" in name or "\\" in name or ".." in name or name.startswith("."):
            raise ModelFileError(f"{path}: refusing entry {name!r} (path names are not allowed)")
        if name != _META and not (name.endswith(_SUFFIX) and _NAME.match(name[: -len(_SUFFIX)])):
            raise ModelFileError(f"{path}: unexpected entry {name!r} in a model file")
        if info.file_size > MAX_MEMBER_SIZE:
            raise ModelFileError(
                f"{path}: entry {name!r} declares {info.file_size} bytes, more than the "
                f"{MAX_MEMBER_SIZE} allowed"
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"{path}: entry {name!r} uses an unsupported compression")
    if _META not in names:
        raise ModelFileError(f"{path}: not a cymlp model file (no {_META})")


def _read_meta(zf, path):
    info = zf.getinfo(_META)
    if info.file_size > MAX_META_SIZE:
        raise ModelFileError(f"{path}: {_META} is too large ({info.file_size} bytes)")
    try:
        text = zf.read(_META).decode("utf-8")
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: {_META} is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: {_META} must hold a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a cymlp model file (format {meta.get('format')!r}, expected {FORMAT!r})"
        )
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer cymlp (format {version}), this version reads "
            f"up to {FORMAT_VERSION}: upgrade cymlp"
        )
    return meta


def _read_array(zf, info, path):
    name = info.filename
    where = f"{path}: entry {name!r}"
    # First pass: read only the header, so that the declared dtype and shape
    # are checked against the entry's size before any memory is allocated.
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        header_size = fh.tell()
    if dtype.hasobject:
        raise ModelFileError(f"{where} holds Python objects (pickled data); refusing to load it")
    expected = math.prod(shape) * dtype.itemsize
    if expected != info.file_size - header_size:
        raise ModelFileError(
            f"{where} is damaged: the header declares {expected} bytes of data, "
            f"the entry holds {info.file_size - header_size}"
        )
    with zf.open(info) as fh:
        array = np.lib.format.read_array(fh, allow_pickle=False)
        if fh.read(1):  # also makes zipfile check the CRC at the end
            raise ModelFileError(f"{where} has trailing data")
    return array


def load_bundle(path):
    """Read a model file written by :func:`save_bundle`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    meta : dict
        The metadata, including ``"format"`` and ``"format_version"``.
    arrays : dict of str to ndarray
        The arrays, in the order they were saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a zip archive or is truncated, has no ``meta.json``
        or invalid JSON there, is not a cymlp bundle, was written in a newer
        format, or holds an entry that is not a plain ``.npy`` array (an
        object or pickled array included), a path name, or a declared size
        beyond :data:`MAX_MEMBER_SIZE`.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with zipfile.ZipFile(path, "r") as zf:
            _check_members(zf, path)
            meta = _read_meta(zf, path)
            arrays = {}
            for info in zf.infolist():
                if info.filename == _META:
                    continue
                arrays[info.filename[: -len(_SUFFIX)]] = _read_array(zf, info, path)
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(
            f"{path}: not a cymlp model file, or a truncated or damaged one ({exc})"
        ) from None
    except (
        ValueError,
        EOFError,
        zlib.error,
        struct.error,
        SyntaxError,
        NotImplementedError,
    ) as exc:
        raise ModelFileError(f"{path}: damaged model file ({exc})") from None
    return meta, arrays


# ----------------------------------------------------------------------- estimators
_ESTIMATORS = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by :func:`load` under its name."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def jsonable_params(estimator):
    """The estimator's parameters as JSON values (tuples become lists; a random
    generator, whose state is not a parameter, becomes None)."""
    out = {}
    for key, value in estimator.get_params(deep=False).items():
        if isinstance(value, np.generic):
            value = value.item()
        if key == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            value = None
        elif isinstance(value, (tuple, list)):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        out[key] = value
    return out


def save(estimator, path, *, compress=False):
    """Write a fitted estimator to ``path`` (atomically); returns ``path``.

    The file holds the parameters, the fitted network and its parameters, the
    optimiser state and the training record, so that :func:`load` gives back an
    estimator that predicts identically and continues training (``partial_fit``)
    exactly as the saved one would.
    """
    from cymlp import __version__

    meta, arrays = estimator._to_state()
    if meta.get("fitted") is None:
        raise ValueError(f"only a fitted {type(estimator).__name__} can be saved; call fit")
    meta = {**meta, "model_version": MODEL_VERSION, "cymlp_version": __version__}
    return save_bundle(path, meta, arrays, compress=compress)


def load(path):
    """Read a model written by :func:`save` (or an estimator's ``save``).

    Returns
    -------
    MLPClassifier or TextClassifier
        Fitted.

    Raises
    ------
    FileNotFoundError
    ModelFileError
        Damaged, truncated, inconsistent (an array of the wrong shape or dtype, a
        field of the wrong type), written by a newer cymlp, or not a cymlp model.
    """
    meta, arrays = load_bundle(path)
    name = meta.get("estimator")
    cls = _ESTIMATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(f"{path}: unknown estimator {name!r}; expected one of "
                             f"{sorted(_ESTIMATORS)}")
    version = meta.get("model_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: invalid model_version {version!r}")
    if version > MODEL_VERSION:
        raise ModelFileError(f"{path} was written by a newer cymlp (model version "
                             f"{version}; this version reads up to {MODEL_VERSION}): "
                             "upgrade cymlp")
    try:
        if version == 1:
            meta, arrays = cls._upgrade_v1(meta, arrays)
        return cls._from_state(meta, arrays)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except MemoryError as exc:
        raise ModelFileError(f"{path}: the model it describes does not fit in memory: "
                             f"{exc}") from None
