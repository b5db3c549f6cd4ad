"""Property-based fuzzing of model files: the bytes of the zip, its members, and the
values and structure of ``meta.json``.

Each example starts from a real model file (an MLP trained with Adam, one with SGD,
momentum, string labels and early stopping, a bag text model with idf weights, a
window text model) and changes it. Whatever the file then holds, :func:`cymlp.load`

* returns a model whose probabilities are finite (or raise ``FloatingPointError``,
  the documented answer to logits that overflow), or raises ``ModelFileError``;
  no other exception comes out;
* keeps the growth of the process's peak memory under :data:`MEMORY_MB` (the whole
  module runs under an address-space limit as well, so a runaway allocation fails
  here rather than exhausting the machine);
* writes nothing: the folder holding the file is unchanged after.

The number of examples is fixed and the examples are derived from the test's name
(``derandomize``), so the time CI spends here is bounded and the same on every run;
``CYMLP_FUZZ_EXAMPLES`` multiplies the counts for a longer local run.
"""

import io as stdio
import json
import os
import pathlib
import warnings
import zipfile

import numpy as np
import pytest
from _shared import AddressSpaceLimit, PeakMemory, edit_bytes, folder_state
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import cymlp
from cymlp import MLPClassifier, TextClassifier
from cymlp.datasets import make_negation_text
from cymlp.io import ModelFileError

#: most growth of the peak resident memory while loading one fuzzed file (MB); the
#: models here hold a few kB of arrays
MEMORY_MB = 150

_SCALE = float(os.environ.get("CYMLP_FUZZ_EXAMPLES", "1"))


def _settings(n):
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------------- the originals
class _Originals(dict):
    """{kind: (bytes of the saved model file, inputs to predict)}, shown briefly in
    the report of a failing example."""

    def __repr__(self):
        return f"<model files {sorted(self)}>"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """{kind: (bytes of the saved model file, inputs to predict)}."""
    folder = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = np.arange(40) % 3
    texts, ty = make_negation_text(80, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "mlp_adam": (MLPClassifier((5,), max_iter=2, random_state=0).fit(X, y), X[:6]),
            "mlp_sgd": (MLPClassifier((4, 3), solver="sgd", momentum=0.9, early_stopping=True,
                                      max_iter=3, random_state=0)
                        .fit(X, np.array(["a", "b", "c"])[y]), X[:6]),
            "text_bag": (TextClassifier((4,), embed_dim=4, token_weights="idf", max_iter=2,
                                        early_stopping=False, random_state=0)
                         .fit(texts, ty), texts[:6]),
            "text_window": (TextClassifier((3,), encoder="window", window=4, embed_dim=3,
                                           max_iter=2, random_state=0)
                            .fit(texts, ty), texts[:6]),
        }
    return _Originals({kind: (model.save(folder / f"{kind}.cymlp").read_bytes(), inputs)
                       for kind, (model, inputs) in models.items()})


@pytest.fixture(scope="module", autouse=True)
def _address_space_limit():
    with AddressSpaceLimit(extra_gb=2.0):
        yield


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


KINDS = ("mlp_adam", "mlp_sgd", "text_bag", "text_window")


def _event(outcome):
    """Count the outcomes in Hypothesis's statistics (--hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(outcome)


def _load_checked(path, inputs):
    """Load ``path`` under the three rules of the module docstring; the model or None."""
    before = folder_state(path.parent)
    model = None
    with warnings.catch_warnings(), PeakMemory() as peak:
        warnings.simplefilter("ignore")
        try:
            model = cymlp.load(path)
        except ModelFileError:
            _event("ModelFileError")
        else:
            _event("loaded")
        if model is not None:
            try:
                proba = model.predict_proba(inputs)
            except FloatingPointError:
                pass
            else:
                assert np.isfinite(proba).all(), "a loaded model gave non-finite probabilities"
    assert peak.grown_mb < MEMORY_MB, f"loading grew the peak memory by {peak.grown_mb} MB"
    assert folder_state(path.parent) == before, "loading wrote to the folder"
    return model


# ---------------------------------------------------------------------- bytes of the zip
def _hot_offsets(raw):
    """Offsets of the zip's structure: each local header and the central directory."""
    with zipfile.ZipFile(stdio.BytesIO(raw)) as zf:
        starts = [info.header_offset for info in zf.infolist()]
        central = zf.start_dir
    return sorted({s + k for s in starts for k in range(64) if s + k < len(raw)}
                  | set(range(central, len(raw))))


_EDITS = st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
                   st.booleans(), st.integers(0, 2**31), st.binary(min_size=1, max_size=8))


@_settings(1000)
@given(kind=st.sampled_from(KINDS), edits=st.lists(_EDITS, min_size=1, max_size=4))
def test_fuzzed_bytes_of_a_model_file(originals, workdir, kind, edits):
    raw = bytearray(originals[kind][0])
    hot = _hot_offsets(bytes(raw))
    for op, structural, where, data in edits:
        if not raw:
            break
        pos = hot[where % len(hot)] if structural and hot else where % len(raw)
        pos = min(pos, len(raw) - 1)
        edit_bytes(raw, op, pos, data)
    path = workdir / "bytes.cymlp"
    path.write_bytes(bytes(raw))
    _load_checked(path, originals[kind][1])


# ---------------------------------------------------------------------- members
def _members(raw):
    with zipfile.ZipFile(stdio.BytesIO(raw)) as zf:
        return [(info.filename, zf.read(info.filename)) for info in zf.infolist()]


_DESCRS = ["<f4", "<f8", ">f4", "|b1", "<i8", "<u8", "<U3", "|O", "|V8", "<c8", "<f2", "|u1"]
_SHAPES = st.one_of(
    st.tuples(), st.tuples(st.integers(0, 50)),
    st.tuples(st.integers(0, 2**45)), st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.integers(-3, 3)))


@st.composite
def _npy_member(draw):
    """Bytes of a .npy member: a crafted header (any dtype and shape, declared sizes that
    may lie) and a payload of some size."""
    header = {"descr": draw(st.sampled_from(_DESCRS)), "fortran_order": draw(st.booleans()),
              "shape": draw(_SHAPES)}
    buf = stdio.BytesIO()
    writer = draw(st.sampled_from([np.lib.format.write_array_header_1_0,
                                   np.lib.format.write_array_header_2_0]))
    writer(buf, header)
    return buf.getvalue() + draw(st.binary(max_size=200))


_NAMES = st.one_of(
    st.sampled_from(["params.npy", "E.npy", "state1.npy", "classes.npy", "encoder.idf.npy",
                     "extra.npy", "meta.json", "../x.npy", "a/b.npy", ".npy", "x.txt", "Params.npy",
                     "meta.json/", "E_state1.npy"]),
    st.text(min_size=1, max_size=12))


@_settings(800)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_fuzzed_members_of_a_model_file(originals, workdir, kind, data):
    members = _members(originals[kind][0])
    every = list(range(len(members)))
    kept = data.draw(st.one_of(  # all of them (then added to or damaged), or any choice
        st.just(every), st.lists(st.sampled_from(every), max_size=len(members) + 2)))
    out = [members[i] for i in kept]
    for _ in range(data.draw(st.integers(0, 3))):
        name = data.draw(_NAMES)
        payload = data.draw(st.one_of(_npy_member(), st.binary(max_size=300)))
        out.insert(data.draw(st.integers(0, len(out))), (name, payload))
    if out and data.draw(st.booleans()):  # damage a kept member's bytes
        i = data.draw(st.integers(0, len(out) - 1))
        name, payload = out[i]
        cut = data.draw(st.integers(0, len(payload)))
        out[i] = (name, payload[:cut] + data.draw(st.binary(max_size=16)))
    compression = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    path = workdir / "members.cymlp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, payload in out:
                zf.writestr(zipfile.ZipInfo(name), payload, compress_type=compression)
    _load_checked(path, originals[kind][1])


# ---------------------------------------------------------------------- meta.json
_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["\udcff", "float32", "float64", "bag", "window", "adam", "relu", "int",
                     "str", "array", "mixed", "PCG64", "MLPClassifier", "TextClassifier"]))
_JSON = st.recursive(_JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)


def _paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, path + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:3]):
            yield from _paths(value, path + (i,))


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


_NEST = "@@nest@@"


@st.composite
def _meta_edit(draw, meta):
    """Change ``meta`` in place: replace, delete, add or move one of its values."""
    paths = list(_paths(meta))
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["replace", "replace", "delete", "add", "move", "nest"]))
    if not path:
        if op == "add":
            meta[draw(st.text(max_size=8))] = draw(_JSON)
        return
    parent, key = _get(meta, path[:-1]), path[-1]
    if op == "replace":
        parent[key] = draw(_JSON)
    elif op == "delete":
        del parent[key]
    elif op == "add":
        target = _get(meta, path)
        if isinstance(target, dict):
            target[draw(st.text(max_size=8))] = draw(_JSON)
        elif isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(_JSON))
    elif op == "move":
        source = draw(st.sampled_from(paths))
        if path[:len(source)] != source:  # not into itself
            parent[key] = json.loads(json.dumps(_get(meta, source)))
    else:
        parent[key] = _NEST  # replaced by deep nesting in the text


@_settings(1500)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_fuzzed_metadata_of_a_model_file(originals, workdir, kind, data):
    members = _members(originals[kind][0])
    meta = json.loads(dict(members)["meta.json"])
    for _ in range(data.draw(st.integers(1, 3))):
        data.draw(_meta_edit(meta))
    text = json.dumps(meta, ensure_ascii=True)
    if _NEST in text:
        depth = data.draw(st.sampled_from([10, 500, 5000, 100_000]))
        text = text.replace(json.dumps(_NEST), "[" * depth + "]" * depth)
    path = workdir / "meta.cymlp"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", text.encode("ascii"))
        for name, payload in members:
            if name != "meta.json":
                zf.writestr(name, payload)
    _load_checked(path, originals[kind][1])


# ---------------------------------------------------------------------- the guards
def test_the_guards_catch_what_they_are_for(originals, workdir, monkeypatch):
    """The checks of _load_checked fail on a load that writes a file or allocates
    much, and on an exception other than ModelFileError: the fuzzers can fail."""
    path = workdir / "control.cymlp"
    path.write_bytes(originals["mlp_adam"][0])
    inputs = originals["mlp_adam"][1]
    real_load = cymlp.load

    def writes(p, **kw):
        pathlib.Path(p).with_suffix(".tmp").write_bytes(b"x")
        return real_load(p, **kw)

    def allocates(p, **kw):
        block = np.ones(2 * MEMORY_MB * 2**20, np.uint8)
        return real_load(p, **kw) if block.sum() else None

    def raises(p, **kw):
        raise KeyError("a raw error")

    for fake, error in ((writes, "wrote to the folder"), (allocates, "peak memory"),
                        (raises, "a raw error")):
        monkeypatch.setattr(cymlp, "load", fake)
        with pytest.raises((AssertionError, KeyError), match=error):
            _load_checked(path, inputs)
        for leftover in workdir.glob("*.tmp"):
            leftover.unlink()
    monkeypatch.undo()
    assert _load_checked(path, inputs) is not None
