"""Model files without pickle: the container format, and saving and loading estimators.

This module owns the container and knows no estimator class: an estimator turns
itself into plain data (``_to_state``: a dict of JSON values and a dict of arrays) and
back (``_from_state``), and registers its class here by name (:func:`register`), so
that :func:`load` can find it. :func:`save` / :func:`load` (``cymlp.save`` and
``cymlp.load``), the estimators' ``save`` method and pickling all go through that state.

A cymlp model file (a *bundle*) is a zip archive holding

* ``meta.json``: JSON written in ASCII (other characters as ``\\uXXXX`` escapes, so
  that any str, a lone surrogate included, is stored; it is read as UTF-8), an
  object with ``"format": "cymlp"``, ``"format_version"`` and the caller's metadata
  (hyper-parameters, classes, vocabulary, ...);
* one ``NAME.npy`` per array, in NumPy's ``.npy`` format, written and read
  with ``allow_pickle=False``.

Loading never unpickles anything, so a model file from an untrusted source
cannot run code; a file that is damaged, not a bundle, or written by a newer
cymlp raises :class:`ModelFileError` with a message that says which. Only
regular files are read, and only the arrays asked for (:func:`load`: those the
fitted state names), each up to its declared size and all up to a bound checked
before any is decompressed, so a small file cannot make the reader use much
memory.
Writing is atomic (:func:`atomic_write`): the bundle is written to a temporary
file next to the target and moved into place with :func:`os.replace`, so an
interrupted save leaves any previous file intact.
"""

import contextlib
import errno
import json
import math
import numbers
import os
import pathlib
import re
import socket
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from cymlp._validation import available_memory, open_regular

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
#: Default bound on the total uncompressed size of the arrays :func:`load_bundle`
#: reads (bytes); :func:`load` derives its bound from the network the file describes.
MAX_BUNDLE_SIZE = 8 * 2**30
#: Room for the header of one ``.npy`` member: magic, version, length and NumPy's
#: largest accepted header (10000 bytes).
NPY_HEADER_ROOM = 10000 + 12


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
    # ASCII escapes (\uXXXX) store any str, lone surrogates included, which UTF-8 cannot
    meta_bytes = json.dumps(header, default=_json_default, ensure_ascii=True, indent=1).encode(
        "ascii"
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


#: the temporary files of atomic_write: ``.cymlp-HOST-PID-HEX.tmp``
_TEMPORARY = re.compile(
    r"\.cymlp-(?P<host>[A-Za-z0-9_.-]{1,64})-(?P<pid>[0-9]+)-[0-9a-f]{12}\.tmp")


def _host():
    """This machine's name as it goes into temporary file names."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "host"


def _temporary_name():
    return f".cymlp-{_host()}-{os.getpid()}-{os.urandom(6).hex()}.tmp"


def remove_stale_temporaries(folder):
    """Remove the temporary files :func:`atomic_write` left in ``folder`` when its
    process was killed: those made on this machine by a process that no longer runs.
    Files of live processes, of other machines (a shared file system) and of any other
    name are never touched. Returns the paths removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    host = _host()
    for name in names:
        m = _TEMPORARY.fullmatch(name)
        if m is None or m["host"] != host or _alive(int(m["pid"])):
            continue
        path = os.path.join(folder, name)
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _alive(pid):
    """Whether a process ``pid`` runs on this machine (True when it cannot be told)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


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
            candidate = target.parent / _temporary_name()
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
    except RecursionError:
        raise ModelFileError(f"{path}: {_META} is nested too deeply to be a model's "
                             "metadata") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ModelFileError(f"{path}: {_META} holds a value that cannot be read ({exc})"
                             ) from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: {_META} must hold a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a cymlp model file (format {_short(meta.get('format'))}, "
            f"expected {FORMAT!r})"
        )
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: invalid format_version {_short(version)}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer cymlp (format {_short(version)}), this version "
            f"reads up to {FORMAT_VERSION}: upgrade cymlp"
        )
    return meta


def _short(value, limit=80):
    """``repr(value)`` for a message, cut to ``limit`` characters (values read from a
    file can be huge, or ints Python will not print)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits
        text = f"<an integer of {value.bit_length()} bits>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def _open_model_file(path):
    """A binary file object on ``path``, which must be a regular file.

    A missing path is a FileNotFoundError, a directory an IsADirectoryError and a loop
    of symbolic links an OSError, each saying so; a device, a FIFO or a socket (say
    ``/dev/zero``, which would be read until memory runs out) is a ModelFileError. The
    file is opened without blocking and checked through its descriptor
    (:func:`~cymlp._validation.open_regular`), so a FIFO cannot stall the reader.
    """
    try:
        fd, kind = open_regular(path)
    except FileNotFoundError:
        dangling = os.path.islink(path)
        raise FileNotFoundError(
            errno.ENOENT, f"model file not found: {path}"
            + (" (a symbolic link to a missing file)" if dangling else "")) from None
    except IsADirectoryError:  # (systems that refuse to open directories)
        kind = "a directory"
        fd = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"cannot read the model file {path}: its symbolic "
                          "links form a loop") from None
        raise
    if kind is None:
        return os.fdopen(fd, "rb")
    if fd is not None:
        os.close(fd)
    if kind == "a directory":
        raise IsADirectoryError(errno.EISDIR, f"{path} is a directory, not a model file")
    raise ModelFileError(f"{path} is {kind}, not a model file (model files are regular "
                         "files)")


def load_bundle(path, *, select=None, max_bytes=None):
    """Read a model file written by :func:`save_bundle`.

    Only the members asked for are decompressed, and only up to a bound on their
    total declared size, checked before any of them is read.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file.
    select : callable, optional
        ``select(meta)`` returns the arrays to read: a dict of name to the most bytes
        of data that array may hold (None: no limit of its own). Members not named are
        not read; named arrays the file lacks are left out of the result. By default
        every array is read.
    max_bytes : int, optional
        Bound on the total uncompressed size of the arrays read (their declared
        sizes); by default the sum of ``select``'s limits when it gives one for every
        array, else :data:`MAX_BUNDLE_SIZE`.

    Returns
    -------
    meta : dict
        The metadata, including ``"format"`` and ``"format_version"``.
    arrays : dict of str to ndarray
        The arrays read, in the order they were saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError, OSError
        If ``path`` is a directory, or a loop of symbolic links, or cannot be read.
    ModelFileError
        If ``path`` is not a regular file (a device, a FIFO), is not a zip archive or
        is truncated, has no ``meta.json`` or invalid JSON there, is not a cymlp
        bundle, was written in a newer format, or holds an entry that is not a plain
        ``.npy`` array (an object or pickled array included), a path name, a declared
        size beyond :data:`MAX_MEMBER_SIZE` or beyond the array's limit, or arrays
        beyond ``max_bytes`` in all; and whatever ``select`` raises.
    """
    path = pathlib.Path(path)
    with _open_model_file(path) as fh:
        try:
            return _read_bundle(fh, path, select, max_bytes)
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
            OverflowError,
            OSError,  # zipfile seeking before the start of a damaged archive: EINVAL
            tokenize.TokenError,  # NumPy's fallback parser of a damaged .npy header
        ) as exc:
            raise ModelFileError(f"{path}: damaged model file ({exc})") from None


def _read_bundle(fh, path, select, max_bytes):
    with zipfile.ZipFile(fh, "r") as zf:
        _check_members(zf, path)
        meta = _read_meta(zf, path)
        members = {info.filename[: -len(_SUFFIX)]: info for info in zf.infolist()
                   if info.filename != _META}
        limits = {name: None for name in members} if select is None else select(meta)
        chosen = [name for name in members if name in limits]  # in the file's order
        for name in chosen:
            limit = limits[name]
            if limit is not None and members[name].file_size > limit + NPY_HEADER_ROOM:
                raise ModelFileError(
                    f"{path}: entry {name + _SUFFIX!r} declares {members[name].file_size} "
                    f"bytes, but the model the file describes holds at most {limit} bytes "
                    "of data there")
        total = sum(members[name].file_size for name in chosen)
        if max_bytes is not None:
            bound, what = max_bytes, "max_bytes"
        else:
            known = [limits[name] for name in chosen]
            if select is not None and None not in known:
                bound = sum(known) + NPY_HEADER_ROOM * len(known)
                what = "what the model the file describes holds"
            else:
                bound, what = MAX_BUNDLE_SIZE, "MAX_BUNDLE_SIZE"
            avail = available_memory()
            if avail is not None and avail < bound:
                bound, what = avail, "the memory available"
        if total > bound:
            raise ModelFileError(
                f"{path}: the arrays to read declare {total} bytes in all, more than "
                f"{what} ({bound} bytes)")
        arrays = {name: _read_array(zf, members[name], path) for name in chosen}
    return meta, arrays


# ----------------------------------------------------------------------- estimators
_ESTIMATORS = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by :func:`load` under its name."""
    _ESTIMATORS[cls.__name__] = cls
    return cls


def jsonable(value):
    """``value`` as strict JSON values: NumPy scalars and arrays to Python numbers and
    lists, tuples to lists, non-finite floats to None, other objects to their str
    (run records, trial records)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


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


def load(path, *, max_bytes=None):
    """Read a model written by :func:`save` (or an estimator's ``save``).

    Only the arrays the fitted state names are read (other members are never
    decompressed), and each only up to the size the network described in the file
    gives it, checked before any array is read.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file.
    max_bytes : int, optional
        Bound on the total uncompressed size of the arrays read. By default: what the
        network described in the file needs (its parameters, optimiser state,
        embedding table, idf weights and classes), and at most the memory available.

    Returns
    -------
    MLPClassifier or TextClassifier
        Fitted.

    Raises
    ------
    FileNotFoundError
    IsADirectoryError, OSError
        A directory, a loop of symbolic links, a file that cannot be read.
    ModelFileError
        Damaged, truncated, inconsistent (an array of the wrong shape or dtype, a
        field of the wrong type), larger than the bound, written by a newer cymlp, not
        a regular file or not a cymlp model.
    """
    found = {}

    def plan(meta):
        cls = _estimator_class(meta, path)
        version = meta.get("model_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ModelFileError(f"{path}: invalid model_version {_short(version)}")
        if version > MODEL_VERSION:
            raise ModelFileError(f"{path} was written by a newer cymlp (model version "
                                 f"{version}; this version reads up to {MODEL_VERSION}): "
                                 "upgrade cymlp")
        if version > 1 and meta.get("fitted") is None:
            raise ModelFileError(f"{path}: holds no fitted model ('fitted' is "
                                 f"{_short(meta.get('fitted'))})")
        found.update(cls=cls, version=version)
        with _state_errors(path):
            if version == 1:
                upgraded, _ = cls._upgrade_v1(meta, {})
                limits = cls._state_arrays(upgraded)
                return {_V1_ARRAYS.get(k, k): v for k, v in limits.items()}
            return cls._state_arrays(meta)

    meta, arrays = load_bundle(path, select=plan, max_bytes=max_bytes)
    cls, version = found["cls"], found["version"]
    with _state_errors(path):
        if version == 1:
            meta, arrays = cls._upgrade_v1(meta, arrays)
        return cls._from_state(meta, arrays)


#: arrays of model-version-1 files whose names changed in the current state
_V1_ARRAYS = {"encoder.idf": "idf"}


def _estimator_class(meta, path):
    name = meta.get("estimator")
    cls = _ESTIMATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(f"{path}: unknown estimator {_short(name)}; expected one of "
                             f"{sorted(_ESTIMATORS)}")
    return cls


@contextlib.contextmanager
def _state_errors(path):
    """Errors met while rebuilding an estimator from a file's state, as
    ModelFileError naming ``path``. The state is checked field by field where it is
    read; the Python errors caught here are a net for a check that is missing."""
    try:
        yield
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except MemoryError as exc:
        raise ModelFileError(f"{path}: the model it describes does not fit in memory: "
                             f"{exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise ModelFileError(f"{path}: inconsistent model state ({type(exc).__name__}: "
                             f"{_short(str(exc), 300)})") from None
