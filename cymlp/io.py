"""Model files without pickle.

A cymlp model file (a *bundle*) is a zip archive holding

* ``meta.json``: UTF-8 JSON, an object with ``"format": "cymlp"``,
  ``"format_version"`` and the caller's metadata (hyper-parameters,
  classes, vocabulary, ...);
* one ``NAME.npy`` per array, in NumPy's ``.npy`` format, written and read
  with ``allow_pickle=False``.

Loading never unpickles anything, so a model file from an untrusted source
cannot run code; a file that is damaged, not a bundle, or written by a newer
cymlp raises :class:`ModelFileError` with a message that says which.
Writing is atomic: the bundle is written to a temporary file next to the
target and moved into place with :func:`os.replace`, so an interrupted save
leaves any previous file intact.
"""

import json
import math
import os
import pathlib
import re
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load_bundle", "save_bundle"]

#: Value of ``"format"`` in ``meta.json``.
FORMAT = "cymlp"
#: Newest bundle format this version writes and reads.
FORMAT_VERSION = 1

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
    directory = path.parent
    tmp = None
    for _ in range(100):
        candidate = directory / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        try:
            # 0o666 lets the process umask give the file ordinary permissions.
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        tmp = candidate
        break
    if tmp is None:
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=compression, allowZip64=True) as zf:
                zf.writestr(_META, meta_bytes)
                for name, array in prepared:
                    with zf.open(name + _SUFFIX, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
