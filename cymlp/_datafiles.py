"""Readers of labelled data files, one entry point for every format.

:mod:`cymlp.datasets` re-exports the public names: :func:`read_file`,
:func:`guess_format`, :class:`DataFile`, :data:`FORMATS`,
:class:`DataFormatError` and :class:`DataWarning`. This module imports nothing
else from cymlp, so it can be read (and tested) on its own.

Every reader works on the bytes of the file, read once; the SHA-256 in the
result is the checksum of exactly the bytes that were parsed. Text is split
into lines at ``\\n`` bytes only, so line numbers in messages match ``wc -l``
and editors, and one example is one record (a line, or a CSV row whose quoted
fields may span lines).

``docs/data.md`` describes the formats, the guessing rules, the encoding rule
and the label rule for users.
"""

import csv
import errno
import hashlib
import io
import json
import os
import pathlib
import re
import stat
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FORMATS",
    "DataFile",
    "DataFormatError",
    "DataWarning",
    "guess_format",
    "read_file",
]


class DataFormatError(ValueError):
    """A data file does not follow the expected format.

    The message names the file and, where one is at fault, the 1-based line
    (text formats) or the 0-based row and column (array formats).
    """


class DataWarning(UserWarning):
    """Something in a data file had to be repaired or was ignored while reading it."""


#: The formats :func:`read_file` reads. ``kind`` is what ``X`` holds (texts or
#: numbers; a Parquet table holds either, see :func:`read_file`);
#: ``extensions`` are the file-name endings that select the format on their
#: own (``.csv``, ``.tsv`` and ``.tab`` name two formats each, and the header
#: decides between them; any other ending is decided by the content).
FORMATS = {name: {"kind": kind, "extensions": ext, "description": text}
           for name, kind, ext, text in (
    ("label_text", "text", (),
     "one example a line: LABEL TEXT"),
    ("fasttext", "text", (".ft", ".fasttext"),
     "one example a line: __label__LABEL TEXT (several tags: multi-label)"),
    ("csv", "text", (".csv",),
     "comma-separated, RFC 4180 quoting, a header naming text and label"),
    ("tsv", "text", (".tsv", ".tab"),
     "tab-separated, no quoting, a header naming text and label"),
    ("jsonl", "text", (".jsonl", ".ndjson", ".json"),
     'one JSON object a line: {"text": ..., "label": ...}'),
    ("numeric_csv", "numeric", (".csv",),
     "comma-separated numbers, a header, a label column"),
    ("numeric_tsv", "numeric", (".tsv", ".tab"),
     "tab-separated numbers, a header, a label column"),
    ("npz", "numeric", (".npz",),
     "NumPy archive holding a 2-D array X and a 1-D array y"),
    ("npy", "numeric", (".npy",),
     "one 2-D NumPy array, one column of which holds the labels"),
    ("parquet", "numeric or text", (".parquet", ".pq"),
     "Parquet table with a label column (needs pyarrow)"),
    ("svmlight", "numeric", (".svm", ".svmlight", ".libsvm"),
     "LABEL INDEX:VALUE ... lines, read into a sparse CSR matrix"),
)}

_BOM = b"\xef\xbb\xbf"

# Undecodable bytes come back from ``errors="surrogateescape"`` as the lone
# surrogates U+DC80..U+DCFF; mapping each back to the code point of the byte
# is exactly a Latin-1 decoding of that byte.
_SURROGATE_TO_LATIN1 = {0xDC00 + b: b for b in range(0x80, 0x100)}

# A label becomes an int only when written this way: ASCII digits, an
# optional '-', no leading zeros, no '_', and at most 19 digits (int64 has 19;
# the range is checked after conversion).
_CANONICAL_INT = re.compile(r"(?:0|-?[1-9][0-9]{0,18})\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# A feature value: a decimal number in ASCII, as C, NumPy and pandas write
# them. Python's float() also takes '1_000', '٣' and 'nan'; this does not.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NON_FINITE_WORDS = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
)

# svmlight feature indices beyond this are refused: the matrix width must fit
# comfortably in the int64 index arrays of scipy.sparse.
_MAX_SVMLIGHT_INDEX = 2**62
_SVMLIGHT_INDEX = re.compile(r"[0-9]{1,19}\Z")


# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------


@dataclass
class DataFile:
    """The examples of one data file and a record of how it was read.

    Attributes
    ----------
    X : list of str, ndarray of shape (n_rows, n_features) or scipy.sparse.csr_matrix
        Texts (``kind == "text"``), a float64 array, or for svmlight files a
        float64 CSR matrix; one row per example, in file order.
    y : ndarray of shape (n_rows,) or list of lists
        The labels: int64 when every label is written as a canonical decimal
        integer that fits int64, str otherwise (see ``docs/data.md``). For a
        multi-label file (see ``multilabel`` of :func:`read_file`) a list
        holding one list of labels per example.
    kind : {"text", "numeric"}
    format : str
        The key of :data:`FORMATS` the file was read as.
    format_reason : str
        Why: ``"given"`` when ``format=`` was passed, otherwise the rule of
        :func:`guess_format` that chose it (for logs).
    path : pathlib.Path
        The absolute path of the file.
    sha256 : str
        Hex SHA-256 of the file's bytes.
    n_rows : int
        Number of examples.
    repaired_lines : list of int
        1-based numbers of the lines that were not valid in the given
        encoding and were decoded as cp1252 (text formats).
    feature_names : list of str or None
        Column names of the features (numeric tables and Parquet).
    ignored : dict
        What was read but not used, e.g. ``{"qid": [lines]}`` for svmlight.
    """

    X: object
    y: object
    kind: str
    format: str
    path: pathlib.Path
    sha256: str
    n_rows: int
    format_reason: str = "given"
    repaired_lines: list = field(default_factory=list)
    feature_names: list = None
    ignored: dict = field(default_factory=dict)

    @property
    def n_repaired(self):
        """Number of lines decoded as cp1252."""
        return len(self.repaired_lines)

    def __len__(self):
        return self.n_rows


@dataclass
class _Options:
    text_column: str
    label_column: object
    multilabel: object  # True, False or "auto"
    label_prefix: str
    delimiter: object
    x_key: str
    y_key: str
    zero_based: object
    n_features: object
    encoding: str
    text_column_given: bool

    @property
    def label_name(self):
        """The label column's name, for guessing a format before it is known."""
        return self.label_column if isinstance(self.label_column, str) else "label"


@dataclass
class _Parsed:
    X: object
    y: object
    kind: str
    repaired: list = field(default_factory=list)
    feature_names: list = None
    ignored: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Bytes, lines and decoding
# ---------------------------------------------------------------------------


def _absolute(path):
    """``path`` as an absolute path, resolved against the current directory now."""
    return pathlib.Path(os.fspath(path)).expanduser().absolute()


def _read_bytes(path):
    """Return ``(absolute path, bytes)``; clear errors for missing, directory, empty,
    and for a device or a socket (``/dev/zero`` would be read until memory runs out).
    Regular files and pipes (``<(zcat data.gz)``; opening one waits for its writer)
    are read. The type is checked before opening and again on the open file."""
    path = _absolute(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "data file not found", str(path)) from None
    _check_file_type(mode, path)
    try:
        with open(path, "rb") as fh:
            _check_file_type(os.fstat(fh.fileno()).st_mode, path)
            data = fh.read()
    except FileNotFoundError:  # removed since the check
        raise FileNotFoundError(errno.ENOENT, "data file not found", str(path)) from None
    if not data:
        raise DataFormatError(f"{path} is empty: expected at least one example")
    return path, data


def _check_file_type(mode, path):
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a data file", str(path))
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise DataFormatError(f"{path} is a device or a socket, not a data file (data "
                              "files are regular files or pipes)")


def _decode_line(raw, encoding):
    """Decode one line; return ``(text, repaired)``.

    ``raw`` is decoded with ``encoding``; if that fails, the line is decoded
    as cp1252 and any byte that cp1252 leaves undefined (0x81, 0x8D, 0x8F,
    0x90, 0x9D) as Latin-1, so decoding never fails and is predictable.
    """
    try:
        return raw.decode(encoding), False
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="surrogateescape")
        return text.translate(_SURROGATE_TO_LATIN1), True


def _split_raw_lines(data):
    """Split file bytes into lines at ``\\n``; a final terminator adds no line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _decode_lines(data, encoding):
    """File bytes -> ``(lines, repaired line numbers)``; a UTF-8 BOM is dropped."""
    raw_lines = _split_raw_lines(data)
    if raw_lines and raw_lines[0].startswith(_BOM):
        raw_lines[0] = raw_lines[0][len(_BOM) :]
    lines = []
    repaired = []
    for lineno, raw in enumerate(raw_lines, start=1):
        text, was_repaired = _decode_line(raw, encoding)
        lines.append(text)
        if was_repaired:
            repaired.append(lineno)
    return lines, repaired


def _warn_repairs(path, repaired, encoding, stacklevel):
    if not repaired:
        return
    shown = ", ".join(str(n) for n in repaired[:10])
    more = ", ..." if len(repaired) > 10 else ""
    warnings.warn(
        f"{path}: {len(repaired)} line(s) were not valid {encoding} and were "
        f"decoded as cp1252 (lines {shown}{more})",
        DataWarning,
        stacklevel=stacklevel + 1,
    )


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


def _labels_array(labels):
    """The label rule: int64 only when every label is a canonical integer.

    A label converts when it is written in ASCII as ``0`` or as an optional
    ``-`` followed by digits without a leading zero, and fits int64. Then all
    convert and the labels are exactly their values (``str(value)`` gives
    back what was written). Otherwise every label stays the string it was:
    ``'01'`` and ``'1'``, ``'1_0'`` and ``'10'``, ``'٣'`` and ``'3'`` stay
    distinct, and no label is ever rounded or raises.

    The strings come back as a NumPy str array, or an object array when a
    label ends in a NUL character (a str array would drop it and merge
    ``'a\\x00'`` with ``'a'``).
    """
    if all(_CANONICAL_INT.match(label) for label in labels):
        values = [int(label) for label in labels]
        if all(_INT64_MIN <= v <= _INT64_MAX for v in values):
            return np.array(values, dtype=np.int64)
    if any(label.endswith("\x00") for label in labels):
        array = np.empty(len(labels), dtype=object)
        array[:] = labels
        return array
    return np.array(labels, dtype=str)


def _label_lists(label_lists):
    """The label rule over every label of a multi-label file; lists of int or str."""
    flat = _labels_array([label for labels in label_lists for label in labels])
    convert = int if flat.dtype == np.int64 else str
    return [[convert(label) for label in labels] for labels in label_lists]


def _check_label(label, path, where):
    """``label`` if it is one; an empty or blank label is an error."""
    if not label.strip():
        raise DataFormatError(f"{path}, {where}: empty label")
    return label


def _labels_from_values(values, path, what):
    """Labels from an array or a column: ints, strings or integral floats."""
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.int64)
    if kind in "iu":
        if kind == "u" and values.size and values.max() > _INT64_MAX:
            return _labels_array([str(v) for v in values.tolist()])
        return values.astype(np.int64)
    if kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataFormatError(
                f"{path}: {what} holds {values[i].item()!r} at index {i}; class labels must be "
                "integers or strings"
            )
        if values.size and np.abs(values).max() > 2.0**53:
            raise DataFormatError(
                f"{path}: {what} holds float labels beyond 2**53, which are not exact; "
                "store labels as integers or strings"
            )
        return values.astype(np.int64)
    if kind == "U":
        labels = values.tolist()
        for i, label in enumerate(labels):
            _check_label(label, path, f"{what} index {i}")
        return _labels_array(labels)
    raise DataFormatError(
        f"{path}: {what} has dtype {values.dtype}; class labels must be integers or strings"
    )


def _json_label(value, path, where, key):
    """One label of a JSON object or a Parquet cell: a string or an integer."""
    if isinstance(value, str):
        return _check_label(value, path, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    shown = "null" if value is None else type(value).__name__
    raise DataFormatError(
        f"{path}, {where}: label {key!r} is {shown} ({value!r}); "
        "a label must be a string or an integer"
    )


# ---------------------------------------------------------------------------
# Text formats: LABEL TEXT, fastText, JSON Lines
# ---------------------------------------------------------------------------


def _empty_line_error(path, lineno, line, expected):
    what = "empty line" if not line else "line holds only whitespace"
    return DataFormatError(f"{path}, line {lineno}: {what}; expected {expected}")


def _parse_label_text(lines, path):
    """``LABEL TEXT`` lines -> (texts, labels as str)."""
    texts = []
    labels = []
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        parts = line.split(None, 1)
        if not parts:
            raise _empty_line_error(path, lineno, line, "'LABEL TEXT'")
        labels.append(_check_label(parts[0], path, f"line {lineno}"))
        texts.append(parts[1] if len(parts) == 2 else "")
    return texts, labels


def _read_label_text(path, data, opts):
    lines, repaired = _decode_lines(data, opts.encoding)
    texts, labels = _parse_label_text(lines, path)
    return _Parsed(texts, _labels_array(labels), "text", repaired)


def _parse_fasttext(lines, path, prefix, multilabel):
    """``__label__A [__label__B ...] TEXT`` lines -> (texts, label lists)."""
    texts = []
    label_lists = []
    expected = f"'{prefix}LABEL TEXT'"
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        rest = line
        labels = []
        while True:
            parts = rest.split(None, 1)
            if not parts or not parts[0].startswith(prefix):
                break
            label = parts[0][len(prefix) :]
            if not label:
                raise DataFormatError(
                    f"{path}, line {lineno}: empty label ({prefix!r} with nothing after it)"
                )
            labels.append(_check_label(label, path, f"line {lineno}"))
            rest = parts[1] if len(parts) == 2 else ""
        if not labels:
            if not line.strip():
                raise _empty_line_error(path, lineno, line, expected)
            raise DataFormatError(
                f"{path}, line {lineno}: no label: the line does not start with "
                f"{prefix!r}; expected {expected}"
            )
        text = rest.lstrip()
        late = next((w for w in text.split() if w.startswith(prefix)), None)
        if late is not None:
            raise DataFormatError(
                f"{path}, line {lineno}: label tag {late!r} after the text starts; "
                "write every label at the start of the line"
            )
        if len(labels) > 1 and multilabel is False:
            raise DataFormatError(
                f"{path}, line {lineno}: {len(labels)} labels {labels} on one line, a "
                "multi-label example, but multilabel=False; read it with "
                "multilabel='auto' (the default) or True"
            )
        texts.append(text)
        label_lists.append(labels)
    return texts, label_lists


def _is_multilabel(option, label_lists):
    """Whether a file's labels are read as lists: ``multilabel=True``, or ``"auto"``
    and some example has several labels (a JSON list counts as several)."""
    if isinstance(option, str):  # "auto"
        return any(len(labels) > 1 or isinstance(labels, _JSONList)
                   for labels in label_lists)
    return option


class _JSONList(list):
    """Labels written as a JSON list (multi-label even when it holds one label)."""


def _read_fasttext(path, data, opts):
    lines, repaired = _decode_lines(data, opts.encoding)
    texts, label_lists = _parse_fasttext(lines, path, opts.label_prefix, opts.multilabel)
    if _is_multilabel(opts.multilabel, label_lists):
        y = _label_lists(label_lists)
    else:
        y = _labels_array([labels[0] for labels in label_lists])
    return _Parsed(texts, y, "text", repaired)


def _read_jsonl(path, data, opts):
    lines, repaired = _decode_lines(data, opts.encoding)
    text_key, label_key = opts.text_column, opts.label_column
    texts = []
    labels = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            raise _empty_line_error(path, lineno, line, "one JSON object")
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise DataFormatError(f"{path}, line {lineno}: not valid JSON ({reason})") from None
        if not isinstance(record, dict):
            raise DataFormatError(
                f"{path}, line {lineno}: expected a JSON object, got "
                f"{type(record).__name__}; JSON Lines holds one object per line"
            )
        missing = [k for k in (text_key, label_key) if k not in record]
        if missing:
            raise DataFormatError(
                f"{path}, line {lineno}: no key {' or '.join(map(repr, missing))} "
                f"(keys: {sorted(record)}); set text_column / label_column"
            )
        text = record[text_key]
        if not isinstance(text, str):
            shown = "null" if text is None else type(text).__name__
            raise DataFormatError(
                f"{path}, line {lineno}: text {text_key!r} is {shown}, expected a string"
            )
        label = record[label_key]
        if isinstance(label, list):
            if opts.multilabel is False:
                raise DataFormatError(
                    f"{path}, line {lineno}: label {label_key!r} is a list, a multi-label "
                    "example, but multilabel=False; read it with multilabel='auto' (the "
                    "default) or True"
                )
            if not label:
                raise DataFormatError(f"{path}, line {lineno}: empty list of labels")
            label = _JSONList(_json_label(v, path, f"line {lineno}", label_key)
                              for v in label)
        else:
            label = [_json_label(label, path, f"line {lineno}", label_key)]
        texts.append(text)
        labels.append(label)
    if _is_multilabel(opts.multilabel, labels):
        y = _label_lists(labels)
    else:
        y = _labels_array([label[0] for label in labels])
    return _Parsed(texts, y, "text", repaired)


# ---------------------------------------------------------------------------
# Tables: CSV and TSV, text or numeric
# ---------------------------------------------------------------------------


def _csv_reader(lines, delimiter, quoted):
    # The line terminators go back in so that the csv module sees the file as
    # written (a quoted CSV field may span lines).
    stream = (line + "\n" for line in lines)
    if quoted:
        return csv.reader(stream, delimiter=delimiter, strict=True)
    return csv.reader(stream, delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=True)


def _read_header(reader, path):
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{path} is empty: expected a header row") from None
    except csv.Error as exc:
        raise DataFormatError(f"{path}, line 1: unreadable header row ({exc})") from None
    return [name.strip() for name in header]


def _read_table(lines, path, delimiter, quoted, name):
    """Header and rows of a CSV/TSV; rows carry their first physical line number."""
    reader = _csv_reader(lines, delimiter, quoted)
    header = _read_header(reader, path)
    n_fields = len(header)
    rows = []
    starts = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataFormatError(f"{path}, line {start}: {exc}") from None
        if len(row) != n_fields:
            what = "empty line" if not row else f"{len(row)} field(s)"
            raise DataFormatError(
                f"{path}, line {start}: {what}, expected {n_fields} "
                f"({name} with header {header})"
            )
        rows.append(row)
        starts.append(start)
    if not rows:
        raise DataFormatError(f"{path}: a header row but no examples")
    return header, rows, starts


def _column_index(header, column, path, role, hint):
    count = header.count(column)
    if count == 0:
        raise DataFormatError(
            f"{path}, line 1: header has no column {column!r} (columns: {header}); {hint}"
        )
    if count > 1:
        raise DataFormatError(
            f"{path}, line 1: header names the {role} column {column!r} {count} times"
        )
    return header.index(column)


def _table_delimiter(fmt, opts):
    if opts.delimiter is not None:
        return opts.delimiter
    return "\t" if fmt.endswith("tsv") else ","


def _parse_text_table(lines, path, fmt, delimiter, text_column, label_column):
    """CSV (quoted) or TSV (unquoted) lines with a header -> (texts, labels as str)."""
    header, rows, starts = _read_table(lines, path, delimiter, fmt == "csv", fmt.upper())
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DataFormatError(
            f"{path}, line 1: header has no column {' or '.join(map(repr, missing))} "
            f"(columns: {header}); set text_column / label_column"
        )
    text_at = _column_index(header, text_column, path, "text", "")
    label_at = _column_index(header, label_column, path, "label", "")
    texts = []
    labels = []
    for row, lineno in zip(rows, starts):
        texts.append(row[text_at])
        labels.append(_check_label(row[label_at].strip(), path, f"line {lineno}"))
    return texts, labels


def _text_table(path, data, opts, fmt):
    lines, repaired = _decode_lines(data, opts.encoding)
    texts, labels = _parse_text_table(lines, path, fmt, _table_delimiter(fmt, opts),
                                      opts.text_column, opts.label_column)
    return _Parsed(texts, _labels_array(labels), "text", repaired)


def _read_csv(path, data, opts):
    return _text_table(path, data, opts, "csv")


def _read_tsv(path, data, opts):
    return _text_table(path, data, opts, "tsv")


def _bad_cell(cell, path, where):
    if not cell:
        return DataFormatError(f"{path}, {where}: empty cell (a missing value); features "
                               "must be numbers")
    if cell.lower() in _NON_FINITE_WORDS:
        return DataFormatError(f"{path}, {where}: NaN or infinity ({cell!r}); features must "
                               "be finite numbers")
    return DataFormatError(f"{path}, {where}: {cell!r} is not a number")


def _numeric_table(path, data, opts, fmt):
    lines, repaired = _decode_lines(data, opts.encoding)
    name = fmt.split("_")[1].upper()
    header, rows, starts = _read_table(lines, path, _table_delimiter(fmt, opts), True, name)
    label_at = _column_index(header, opts.label_column, path, "label", "set label_column")
    features = [j for j in range(len(header)) if j != label_at]
    if not features:
        raise DataFormatError(f"{path}, line 1: no feature columns besides {opts.label_column!r}")
    labels = []
    cells = []
    for row, lineno in zip(rows, starts):
        labels.append(_check_label(row[label_at].strip(), path, f"line {lineno}"))
        for j in features:
            cell = row[j].strip()
            if not _NUMBER.match(cell):
                raise _bad_cell(cell, path, f"line {lineno}, column {header[j]!r}")
            cells.append(cell)
    X = np.array(cells, dtype=np.float64).reshape(len(rows), len(features))
    bad = ~np.isfinite(X)
    if bad.any():  # a number too large for float64, e.g. 1e999
        i, j = np.argwhere(bad)[0]
        raise DataFormatError(
            f"{path}, line {starts[i]}, column {header[features[j]]!r}: "
            f"{rows[i][features[j]].strip()!r} overflows float64; features must be finite"
        )
    return _Parsed(X, _labels_array(labels), "numeric", repaired,
                   feature_names=[header[j] for j in features])


def _read_numeric_csv(path, data, opts):
    return _numeric_table(path, data, opts, "numeric_csv")


def _read_numeric_tsv(path, data, opts):
    return _numeric_table(path, data, opts, "numeric_tsv")


# ---------------------------------------------------------------------------
# Arrays: npz, npy, Parquet
# ---------------------------------------------------------------------------


def _feature_matrix(X, path, what):
    """A 2-D numeric array as finite float64, or a DataFormatError naming the cell."""
    if X.ndim != 2:
        raise DataFormatError(f"{path}: {what} must be 2-D, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataFormatError(
            f"{path}: {what} has dtype {X.dtype}; features must be integers, floats or booleans"
        )
    if X.shape[0] == 0:
        raise DataFormatError(f"{path}: {what} has no rows: expected at least one example")
    if X.shape[1] == 0:
        raise DataFormatError(f"{path}: {what} has no feature columns")
    X = np.ascontiguousarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(X[i, j]) else "infinity"
        raise DataFormatError(f"{path}: {what} holds {kind} at row {i}, column {j}; "
                              "features must be finite")
    return X


# NumPy parses a corrupt .npy header with Python's tokenizer and ast, and a
# corrupt archive with zipfile: between them they raise ValueError, OSError,
# EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, MemoryError
# (a header claiming a huge shape) and more. Every one of them means the same
# thing here, so the readers of binary formats catch Exception.


def _load_numpy(path, data, expect):
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable {expect} file ({exc})") from None
    return loaded


def _read_npz(path, data, opts):
    archive = _load_numpy(path, data, ".npz")
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{path}: holds a single array (a .npy file), not a .npz archive")
    with archive:
        names = list(archive.files)
        missing = [k for k in (opts.x_key, opts.y_key) if k not in names]
        if missing:
            raise DataFormatError(
                f"{path}: no array {' or '.join(map(repr, missing))} (arrays: {names}); "
                "set x_key / y_key"
            )
        try:
            X = archive[opts.x_key]
            y = archive[opts.y_key]
        except Exception as exc:  # a corrupt member: see _load_numpy
            raise DataFormatError(f"{path}: cannot read the arrays ({exc})") from None
    X = _feature_matrix(X, path, f"array {opts.x_key!r}")
    if y.ndim != 1 or len(y) != len(X):
        raise DataFormatError(
            f"{path}: array {opts.y_key!r} must be 1-D with one label per row of "
            f"{opts.x_key!r} ({len(X)}), got shape {y.shape}"
        )
    return _Parsed(X, _labels_from_values(y, path, f"array {opts.y_key!r}"), "numeric")


def _read_npy(path, data, opts):
    array = _load_numpy(path, data, ".npy")
    if not isinstance(array, np.ndarray):
        archive_names = list(array.files)
        array.close()
        raise DataFormatError(
            f"{path}: a .npz archive (arrays {archive_names}), not a single array; "
            "use format='npz'"
        )
    if array.ndim != 2 or array.shape[1] < 2:
        raise DataFormatError(
            f"{path}: expected a 2-D array with feature columns and a label column, "
            f"got shape {array.shape}"
        )
    n_columns = array.shape[1]
    label_at = opts.label_column
    if not -n_columns <= label_at < n_columns:
        raise DataFormatError(
            f"{path}: label_column={label_at} is out of range for {n_columns} columns"
        )
    label_at %= n_columns
    features = np.delete(array, label_at, axis=1)
    X = _feature_matrix(features, path, "the feature columns")
    y = _labels_from_values(array[:, label_at], path, f"label column {label_at}")
    return _Parsed(X, y, "numeric")


def _import_parquet():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError(
            "reading Parquet files needs pyarrow; install it with "
            "pip install 'cymlp[parquet]' (the parquet extra)"
        ) from None
    return pyarrow, pyarrow.parquet


def _read_parquet(path, data, opts):
    pa, pq = _import_parquet()
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # pyarrow's errors on corrupt input vary like NumPy's
        raise DataFormatError(f"{path}: not a readable Parquet file ({exc})") from None
    names = list(table.column_names)
    if table.num_rows == 0:
        raise DataFormatError(f"{path}: the table has no rows: expected at least one example")
    label_at = _column_index(names, opts.label_column, path, "label", "set label_column")
    label_column = table.column(label_at)
    kind = label_column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        if label_column.null_count:
            i = int(np.argmax(label_column.is_null().to_numpy(zero_copy_only=False)))
            raise DataFormatError(f"{path}, row {i}: label {opts.label_column!r} is null")
        y = _labels_from_values(label_column.to_numpy(), path,
                                f"label column {opts.label_column!r}")
    else:  # strings (plain or dictionary-encoded); anything else fails per cell
        y = _labels_array([_json_label(v, path, f"row {i}", opts.label_column)
                           for i, v in enumerate(label_column.to_pylist())])
    if opts.text_column_given or opts.text_column in names:
        text_at = _column_index(names, opts.text_column, path, "text", "set text_column")
        texts = table.column(text_at).to_pylist()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                shown = "null" if text is None else type(text).__name__
                raise DataFormatError(f"{path}, row {i}: text {opts.text_column!r} is {shown}, "
                                      "expected a string")
        return _Parsed(texts, y, "text")
    columns = []
    feature_names = []
    for j, name in enumerate(names):
        if j == label_at:
            continue
        column = table.column(j)
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind)):
            raise DataFormatError(
                f"{path}: column {name!r} has type {kind}; features must be integers, "
                f"floats or booleans (a text column must be named {opts.text_column!r} or "
                "given as text_column)"
            )
        if column.null_count:
            i = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))
            raise DataFormatError(f"{path}: column {name!r} is null at row {i}; features "
                                  "must be finite numbers")
        columns.append(column.to_numpy().astype(np.float64))
        feature_names.append(name)
    if not columns:
        raise DataFormatError(f"{path}: no feature columns besides {opts.label_column!r}")
    X = _feature_matrix(np.column_stack(columns), path, "the feature columns")
    return _Parsed(X, y, "numeric", feature_names=feature_names)


# ---------------------------------------------------------------------------
# svmlight / libsvm
# ---------------------------------------------------------------------------


def _read_svmlight(path, data, opts):
    import scipy.sparse

    lines, repaired = _decode_lines(data, opts.encoding)
    labels = []
    row_lines = []
    indptr = [0]
    indices = []
    values = []
    qid_lines = []
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:  # blank or comment-only: not an example
            continue
        label = tokens[0]
        if ":" in label:
            raise DataFormatError(
                f"{path}, line {lineno}: starts with {label!r}; expected 'LABEL INDEX:VALUE ...'"
            )
        if "," in label and opts.multilabel is False:
            raise DataFormatError(
                f"{path}, line {lineno}: label {label!r} lists several labels, a "
                "multi-label example, but multilabel=False; read it with "
                "multilabel='auto' (the default) or True"
            )
        labels.append([_check_label(part, path, f"line {lineno}")
                       for part in label.split(",")])
        row_lines.append(lineno)
        row = {}
        for token in tokens[1:]:
            key, sep, value = token.partition(":")
            if not sep:
                raise DataFormatError(
                    f"{path}, line {lineno}: {token!r} is not INDEX:VALUE"
                )
            if key == "qid":
                if not qid_lines or qid_lines[-1] != lineno:
                    qid_lines.append(lineno)
                continue
            if not _SVMLIGHT_INDEX.match(key) or int(key) > _MAX_SVMLIGHT_INDEX:
                raise DataFormatError(
                    f"{path}, line {lineno}: feature index {key!r} is not an integer in "
                    f"[0, {_MAX_SVMLIGHT_INDEX}]"
                )
            index = int(key)
            if not _NUMBER.match(value):
                raise _bad_cell(value, path, f"line {lineno}, feature {index}")
            number = float(value)
            if number in (float("inf"), float("-inf")):
                raise DataFormatError(f"{path}, line {lineno}, feature {index}: {value!r} "
                                      "overflows float64; features must be finite")
            if index in row:
                raise DataFormatError(f"{path}, line {lineno}: feature index {index} "
                                      "appears twice")
            row[index] = number
        for index in sorted(row):
            indices.append(index)
            values.append(row[index])
        indptr.append(len(indices))
    if not labels:
        raise DataFormatError(f"{path}: no examples (only blank or comment lines)")

    indices = np.array(indices, dtype=np.int64)
    zero_based = opts.zero_based
    if zero_based == "auto":
        zero_based = bool(indices.size) and indices.min() == 0
    if not zero_based:
        if indices.size and indices.min() == 0:
            row = int(np.searchsorted(indptr, int(np.argmin(indices)), side="right")) - 1
            raise DataFormatError(
                f"{path}, line {row_lines[row]}: feature index 0 with zero_based=False "
                "(one-based indices start at 1)"
            )
        indices -= 1
    width = int(indices.max()) + 1 if indices.size else 0
    if opts.n_features is not None:
        if width > opts.n_features:
            raise DataFormatError(
                f"{path}: feature index {width - 1} (zero-based) does not fit "
                f"n_features={opts.n_features}"
            )
        width = opts.n_features
    if max(width, len(indices)) <= np.iinfo(np.int32).max:
        indices = indices.astype(np.int32)
    X = scipy.sparse.csr_matrix(
        (np.array(values, dtype=np.float64), indices, np.array(indptr, dtype=indices.dtype)),
        shape=(len(labels), width),
    )
    ignored = {"qid": qid_lines} if qid_lines else {}
    if _is_multilabel(opts.multilabel, labels):
        y = _label_lists(labels)
    else:
        y = _labels_array([label[0] for label in labels])
    return _Parsed(X, y, "numeric", repaired, ignored=ignored)


#: The formats that can hold several labels per example.
_MULTILABEL_FORMATS = ("fasttext", "jsonl", "svmlight")

_READERS = {
    "label_text": _read_label_text,
    "fasttext": _read_fasttext,
    "csv": _read_csv,
    "tsv": _read_tsv,
    "jsonl": _read_jsonl,
    "numeric_csv": _read_numeric_csv,
    "numeric_tsv": _read_numeric_tsv,
    "npz": _read_npz,
    "npy": _read_npy,
    "parquet": _read_parquet,
    "svmlight": _read_svmlight,
}

# Binary signatures: a file starting with one of these is that format whatever
# its name (or one cymlp does not read).
_MAGIC = (
    (b"\x93NUMPY", "npy"),
    (b"PK\x03\x04", "npz"),
    (b"PAR1", "parquet"),
)
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")
_SNIFF_BYTES = 1 << 16
_SNIFF_LINES = 20


def _format_list():
    return ", ".join(FORMATS) + " (see cymlp.datasets.FORMATS)"


def _unknown_format(path, why):
    return DataFormatError(
        f"cannot tell the format of {path}: {why}; pass format= one of: {_format_list()}"
    )


def _sample_lines(data, encoding, *, skip_blank=True):
    """The first few lines, decoded, to look at (never a line cut short)."""
    lines, _ = _decode_lines(data[:_SNIFF_BYTES], encoding)
    if len(data) > _SNIFF_BYTES and len(lines) > 1:
        lines.pop()
    if skip_blank:
        lines = [line for line in lines if line.strip()]
    return lines[:_SNIFF_LINES]


def _looks_like_svmlight(lines):
    seen_feature = False
    for line in lines:
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if ":" in tokens[0]:
            return False
        for token in tokens[1:]:
            key, sep, value = token.partition(":")
            if not sep or not (key == "qid" or _SVMLIGHT_INDEX.match(key)):
                return False
            if not value:
                return False
            seen_feature = True
    return seen_feature


def _guess_table(path, data, opts, ext, text_name, numeric_name):
    delimiter = opts.delimiter if opts.delimiter is not None else ("\t" if ext != ".csv" else ",")
    lines = _sample_lines(data, opts.encoding, skip_blank=False)
    reader = _csv_reader(lines, delimiter, text_name == "csv")
    label_column = opts.label_name
    try:
        header = [name.strip() for name in next(reader)]
    except (StopIteration, csv.Error):
        header = []
    if opts.text_column_given:
        return text_name, f"extension {ext!r}, text_column given"
    if opts.text_column in header:
        return text_name, f"extension {ext!r}, header names the text column {opts.text_column!r}"
    if label_column not in header:
        raise _unknown_format(
            path, f"extension {ext!r} but the header {header} names neither a text column "
            f"{opts.text_column!r} nor a label column {label_column!r}; set "
            "text_column / label_column"
        )
    try:
        for row in reader:
            for j, cell in enumerate(row):
                if j < len(header) and header[j] == label_column:
                    continue
                cell = cell.strip()
                if not (_NUMBER.match(cell) or cell.lower() in _NON_FINITE_WORDS):
                    raise _unknown_format(
                        path, f"extension {ext!r}, no text column {opts.text_column!r} "
                        f"in the header {header}, and {cell!r} (line {reader.line_num}) is "
                        "not a number; pass text_column= for text, or fix the cell"
                    )
    except csv.Error:
        pass  # the reader reports it, with its line
    return numeric_name, (
        f"extension {ext!r}, no text column {opts.text_column!r}; the other columns "
        "hold numbers"
    )


def _guess(path, data, opts):
    """Choose a format: extension, then binary signature, then content."""
    ext = path.suffix.lower()
    if ext in (".csv", ".tsv", ".tab"):
        if ext == ".csv":
            return _guess_table(path, data, opts, ext, "csv", "numeric_csv")
        return _guess_table(path, data, opts, ext, "tsv", "numeric_tsv")
    for name, info in FORMATS.items():
        if ext and ext in info["extensions"]:
            return name, f"extension {ext!r}"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name, f"content: {name} signature"
    if data.startswith(_COMPRESSED):
        raise _unknown_format(path, "the file is compressed; decompress it first")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise _unknown_format(path, "binary content of no known format")
    lines = _sample_lines(data, opts.encoding)
    if not lines:
        return "label_text", "content: no text to tell by (read as LABEL TEXT)"
    first = lines[0]
    if first.lstrip().startswith("{"):
        return "jsonl", "content: the first line is a JSON object"
    if first.split()[0].startswith(opts.label_prefix):
        return "fasttext", f"content: the first line starts with {opts.label_prefix!r}"
    if _looks_like_svmlight(lines):
        return "svmlight", "content: LABEL INDEX:VALUE lines"
    columns = [c.strip() for c in first.split("\t")]
    if opts.text_column in columns and opts.label_name in columns:
        return "tsv", "content: a tab-separated header naming the text and label columns"
    return "label_text", "content: LABEL TEXT lines"


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def _options(format, text_column, label_column, multilabel, label_prefix, delimiter,
             x_key, y_key, zero_based, n_features, encoding):
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; formats: {_format_list()}")
    for name, value in (("text_column", text_column), ("x_key", x_key), ("y_key", y_key)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    if label_column is not None:
        is_index = isinstance(label_column, int) and not isinstance(label_column, bool)
        if not (is_index or (isinstance(label_column, str) and label_column)):
            raise ValueError(
                f"label_column must be a non-empty str (or an int, for npy), got {label_column!r}"
            )
    if not (isinstance(multilabel, bool) or multilabel == "auto"):
        raise ValueError(f"multilabel must be 'auto', True or False, got {multilabel!r}")
    if not isinstance(label_prefix, str) or not label_prefix or any(
        c.isspace() for c in label_prefix
    ):
        raise ValueError(f"label_prefix must be a non-empty str without spaces, got "
                         f"{label_prefix!r}")
    if delimiter is not None and (
        not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n'
    ):
        raise ValueError(f"delimiter must be one character other than a quote or a line "
                         f"break, got {delimiter!r}")
    if zero_based not in ("auto", True, False):
        raise ValueError(f"zero_based must be 'auto', True or False, got {zero_based!r}")
    if n_features is not None and (
        isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1
    ):
        raise ValueError(f"n_features must be a positive int, got {n_features!r}")
    "".encode(encoding)  # an unknown encoding raises LookupError here, naming it
    return _Options(
        text_column=text_column if text_column is not None else "text",
        label_column=label_column,
        multilabel=multilabel,
        label_prefix=label_prefix,
        delimiter=delimiter,
        x_key=x_key,
        y_key=y_key,
        zero_based=zero_based,
        n_features=n_features,
        encoding=encoding,
        text_column_given=text_column is not None,
    )


def _finish_options(opts, fmt, path):
    """Defaults that depend on the format, and options that do not apply to it."""
    if fmt == "npy":
        if opts.label_column is None:
            opts.label_column = -1
        elif not isinstance(opts.label_column, int):
            raise ValueError(
                f"{path}: an .npy array has no column names; label_column must be an int "
                f"index, got {opts.label_column!r}"
            )
    else:
        if opts.label_column is None:
            opts.label_column = "label"
        elif not isinstance(opts.label_column, str):
            raise ValueError(
                f"{path}: label_column={opts.label_column!r} is a column index, which only "
                f"npy files take; {fmt} columns are named"
            )
    if opts.multilabel is True and fmt not in _MULTILABEL_FORMATS:
        raise ValueError(
            f"{path}: multilabel=True applies to fasttext, jsonl and svmlight files; this "
            f"is {fmt}"
        )


def guess_format(path, *, text_column=None, label_column=None, label_prefix="__label__",
                 delimiter=None, encoding="utf-8"):
    """The format :func:`read_file` would read ``path`` as, and why.

    The rules, in order:

    1. ``.csv``, ``.tsv``, ``.tab``: a table; the header decides between
       text and numbers. ``text_column`` given, or a column named ``"text"``:
       ``csv``/``tsv``; else a label column (``label_column``, default
       ``"label"``) and numbers in every other column of the first rows:
       ``numeric_csv``/``numeric_tsv``; else an error.
    2. another extension listed in :data:`FORMATS` (``.jsonl``, ``.npz``,
       ``.parquet``, ``.svm`` ...): that format.
    3. a binary signature: NumPy ``.npy`` or zip (``npz``), ``PAR1``
       (``parquet``); compressed or other binary content is an error.
    4. text content, from the first non-blank line: a JSON object
       (``jsonl``); a first word starting with ``label_prefix``
       (``fasttext``); ``LABEL INDEX:VALUE`` on each of the first lines
       (``svmlight``); a tab-separated header naming the text and label
       columns (``tsv``); otherwise ``label_text``.

    Parameters
    ----------
    path : str or os.PathLike
    text_column, label_column, label_prefix, delimiter, encoding
        As for :func:`read_file`.

    Returns
    -------
    format : str
        A key of :data:`FORMATS`.
    reason : str
        The rule that chose it, e.g. ``"extension '.jsonl'"``.

    Raises
    ------
    DataFormatError
        If no rule applies (the message lists the formats).
    """
    opts = _options(None, text_column, label_column, False, label_prefix, delimiter,
                    "X", "y", "auto", None, encoding)
    path, data = _read_bytes(path)
    return _guess(path, data, opts)


def read_file(
    path,
    *,
    format=None,
    text_column=None,
    label_column=None,
    multilabel="auto",
    label_prefix="__label__",
    delimiter=None,
    x_key="X",
    y_key="y",
    zero_based="auto",
    n_features=None,
    encoding="utf-8",
):
    """Read the labelled examples of one data file, in any format of :data:`FORMATS`.

    Parameters
    ----------
    path : str or os.PathLike
        The file, resolved against the current directory when called.
    format : str, optional
        A key of :data:`FORMATS`. None guesses it (see :func:`guess_format`;
        the result records the guess and the reason).
    text_column : str, optional
        The column (CSV/TSV, Parquet) or key (JSON Lines) holding the text;
        default ``"text"``. Given for a ``.csv``/``.tsv`` file or a Parquet
        table, it also says the file holds text.
    label_column : str or int, optional
        The column or key holding the label; default ``"label"``. For an
        ``.npy`` array, the column index (default -1, the last).
    multilabel : {"auto", True, False}, default="auto"
        Several labels per example: several ``__label__`` tags (fastText), a
        JSON list (JSON Lines) or ``1,3`` (svmlight). ``"auto"`` reads a file
        holding such an example as multi-label, ``y`` then a list of label
        lists (one list per example, also for the examples with one label),
        and any other file as single-label. ``True`` always gives lists (these
        three formats only); ``False`` makes such an example a
        :class:`DataFormatError`.
    label_prefix : str, default="__label__"
        The tag that marks a label in fastText lines.
    delimiter : str, optional
        Field delimiter of CSV/TSV; default a comma for CSV, a tab for TSV.
    x_key, y_key : str, default="X", "y"
        Array names in an ``.npz`` archive.
    zero_based : {"auto", True, False}, default="auto"
        svmlight feature indices: ``"auto"`` takes them as zero-based when
        some index is 0 and as one-based (libsvm's convention) otherwise.
    n_features : int, optional
        svmlight: the width of the matrix (so that separate files agree);
        default one more than the largest index.
    encoding : str, default="utf-8"
        Encoding tried first for every line of a text format. A line that does
        not decode is decoded as cp1252 (bytes undefined there as Latin-1),
        listed in ``repaired_lines``, and one :class:`DataWarning` names the
        lines.

    Returns
    -------
    DataFile
        ``X``, ``y``, ``kind``, ``format``, ``format_reason``, ``path``,
        ``sha256``, ``n_rows``, ``repaired_lines``, ``feature_names``,
        ``ignored``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` is missing or a directory (the message names it).
    DataFormatError
        If the file is empty or does not follow its format; the message names
        the file and the line (or row and column) at fault.
    ImportError
        For Parquet without pyarrow (install the ``parquet`` extra).
    ValueError
        For an unknown ``format`` (the message lists them) or an option that
        does not apply to the file's format.
    """
    opts = _options(format, text_column, label_column, multilabel, label_prefix, delimiter,
                    x_key, y_key, zero_based, n_features, encoding)
    path, data = _read_bytes(path)
    if format is None:
        fmt, reason = _guess(path, data, opts)
    else:
        fmt, reason = format, "given"
    _finish_options(opts, fmt, path)
    parsed = _READERS[fmt](path, data, opts)
    _warn_repairs(path, parsed.repaired, encoding, stacklevel=2)
    if parsed.ignored.get("qid"):
        lines = parsed.ignored["qid"]
        warnings.warn(
            f"{path}: qid (query id) fields ignored on {len(lines)} line(s), from line "
            f"{lines[0]}; cymlp classifies examples and does not use query groups",
            DataWarning,
            stacklevel=2,
        )
    n_rows = parsed.X.shape[0] if hasattr(parsed.X, "shape") else len(parsed.X)
    return DataFile(
        X=parsed.X,
        y=parsed.y,
        kind=parsed.kind,
        format=fmt,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        n_rows=n_rows,
        format_reason=reason,
        repaired_lines=parsed.repaired,
        feature_names=parsed.feature_names,
        ignored=parsed.ignored,
    )
