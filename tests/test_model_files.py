"""Damaged, inconsistent and malicious model files, and atomic saving, for fitted models.

``tests/test_io.py`` covers the bundle container (:mod:`cymlp.io`); this module covers
what :func:`cymlp.load` makes of files that hold a real model's metadata and arrays
with one thing changed. Every such file must give :class:`cymlp.io.ModelFileError`
(or ``FileNotFoundError``) with a message that says what is wrong, never a model that
computes garbage, never a crash, and never run code that the file carries.
"""

import io as stdio
import json
import pathlib
import re
import warnings
import zipfile

import numpy as np
import pytest

import cymlp
from cymlp import MLPClassifier, TextClassifier
from cymlp import io as cio
from cymlp.datasets import make_negation_text


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mlp():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = np.arange(60) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    return model, X


@pytest.fixture(scope="module")
def text():
    texts, y = make_negation_text(200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TextClassifier((8,), embed_dim=8, token_weights="idf", max_iter=2,
                               early_stopping=False, random_state=0).fit(texts, y)
    return model, texts[:20]


@pytest.fixture(params=["mlp", "text"])
def saved(request, tmp_path):
    """(path of a saved fitted model, the model, inputs to predict)."""
    model, X = request.getfixturevalue(request.param)
    path = tmp_path / "model.cymlp"
    model.save(path)
    return path, model, X


def _temp_leftovers(directory):
    return sorted(p.name for p in pathlib.Path(directory).iterdir()
                  if p.name.endswith(".tmp"))


def _rewrite(src, dst, meta_edit=None, arrays_edit=None):
    """Copy the model file src to dst through load_bundle/save_bundle, editing it."""
    meta, arrays = cio.load_bundle(src)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    if meta_edit is not None:
        meta_edit(meta)
    if arrays_edit is not None:
        arrays_edit(arrays)
    cio.save_bundle(dst, meta, arrays)
    return dst


def _fitted(meta):
    """The fitted state inside a model file's metadata."""
    return meta["fitted"]


def _replace_member(src, dst, name, data):
    """Copy the zip src to dst with member ``name`` replaced by raw bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename != name:
                zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr(name, data)
    return dst


def _npy_bytes(array, allow_pickle=False):
    buf = stdio.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


class WritesMarker:
    """Unpickling an instance creates the file ``path`` (a stand-in for any code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path(self.path).touch, ())


# ---------------------------------------------------------------------- control
def test_an_unedited_rewrite_loads_and_predicts_the_same(saved, tmp_path):
    """The editing helper itself changes nothing: the failures below are the edits'."""
    path, model, X = saved
    copy = _rewrite(path, tmp_path / "copy.cymlp")
    loaded = cymlp.load(copy)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


# ---------------------------------------------------------------------- damaged files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found.*absent.cymlp"):
        cymlp.load(tmp_path / "absent.cymlp")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file(saved, fraction):
    path, _, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[:max(1, int(len(data) * fraction))])
    with pytest.raises(cio.ModelFileError, match="truncated|damaged"):
        cymlp.load(path)


def test_empty_file(saved):
    path, _, _ = saved
    path.write_bytes(b"")
    with pytest.raises(cio.ModelFileError, match="not a cymlp model file"):
        cymlp.load(path)


# ---------------------------------------------------------------------- inconsistent files
def _drop_last(name):
    def edit(arrays):
        arrays[name] = arrays[name].ravel()[:-1]
    return edit


def _as_2d(name):
    def edit(arrays):
        arrays[name] = arrays[name].reshape(1, -1)
    return edit


def _as_float64(name):
    def edit(arrays):
        arrays[name] = arrays[name].astype(np.float64)
    return edit


@pytest.mark.parametrize("edit, match", [
    (_drop_last("params"), "'params' has shape"),
    (_as_2d("params"), "'params' has shape"),
    (_as_float64("params"), "'params' has dtype float64, expected float32"),
    (lambda a: a.pop("params"), "no 'params' array"),
    (lambda a: a.update(params=np.zeros(3, np.float32)), "'params' has shape"),
])
def test_parameter_array_of_the_wrong_shape_or_dtype(saved, tmp_path, edit, match):
    path, _, _ = saved
    bad = _rewrite(path, tmp_path / "bad.cymlp", arrays_edit=edit)
    with pytest.raises(cio.ModelFileError, match=match):
        cymlp.load(bad)


@pytest.mark.parametrize("edit, match", [
    (lambda a: a.update(E=a["E"][:, :-1]), "'E' must be float32 of shape"),
    (lambda a: a.update(E=a["E"][:-1]), "'E' must be float32 of shape"),
    (lambda a: a.pop("E"), "'E' must be"),
    (lambda a: a.update({"encoder.idf": a["encoder.idf"][:-1]}), "idf has shape"),
])
def test_text_model_arrays_of_the_wrong_shape(text, tmp_path, edit, match):
    model, _ = text
    path = model.save(tmp_path / "text.cymlp")
    bad = _rewrite(path, tmp_path / "bad.cymlp", arrays_edit=edit)
    with pytest.raises(cio.ModelFileError, match=match):
        cymlp.load(bad)


def _set_vocab(key, value):
    def edit(meta):
        _fitted(meta)["encoder"]["vocabulary"][key] = value
    return edit


@pytest.mark.parametrize("edit, match", [
    (_set_vocab("char_offset", 10**9), "bad vocabulary: .*char_offset"),
    (_set_vocab("char_offset", 1), "bad vocabulary: .*char_offset"),
    (_set_vocab("char_ngram_range", None), "bad vocabulary: .*char_offset"),
    (_set_vocab("char_ngram_range", [0, 3]), "bad vocabulary: char_ngram_range"),
    (_set_vocab("char_ngram_range", "3-5"), "bad vocabulary: .*null or a list"),
    (_set_vocab("char_ngram_range", [2, 5]), "char_ngram_range of the parameters and of"),
    (lambda m: _fitted(m)["encoder"]["settings"].update(char_ngram_range=None),
     "char_ngram_range of the parameters and of"),
])
def test_subword_vocabulary_tampering(tmp_path, edit, match):
    texts, y = make_negation_text(100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TextClassifier((4,), embed_dim=4, char_ngram_range=(3, 5), max_iter=1,
                               early_stopping=False, random_state=0).fit(texts, y)
    path = model.save(tmp_path / "sub.cymlp")
    np.testing.assert_array_equal(cymlp.load(path).predict_proba(texts),
                                  model.predict_proba(texts))
    bad = _rewrite(path, tmp_path / "bad.cymlp", meta_edit=edit)
    with pytest.raises(cio.ModelFileError, match=match):
        cymlp.load(bad)


def _set_param(key, value):
    def edit(meta):
        meta["params"][key] = value
    return edit


def _set_network(key, value):
    def edit(meta):
        _fitted(meta)["network"][key] = value
    return edit


def _one_class_more(meta):
    """A further class (and a network output for it) without the parameters of it."""
    fitted = _fitted(meta)
    if fitted["classes"]["kind"] == "array":
        fitted["classes"] = {"kind": "int", "values": list(range(fitted["network"]
                                                                  ["n_outputs"] + 1))}
    else:
        fitted["classes"]["values"].append("zz")
    fitted["network"]["n_outputs"] += 1


def _one_class(meta):
    _fitted(meta)["classes"] = {"kind": "str", "values": ["a"]}


@pytest.mark.parametrize("edit, match", [
    (_set_network("hidden", [9]), "'params' has shape"),
    (_one_class_more, "'params' has shape"),
    (_one_class, "at least 2 labels"),
    (_set_network("dtype", "float64"), "dtype does not match"),
    (_set_param("dtype", "float16"), "invalid parameters: dtype must be"),
    (_set_param("alpha", -1.0), "invalid parameters: alpha must be"),
    (_set_param("no_such_parameter", 1), "unknown parameters"),
    (lambda m: m.pop("params"), "'params' missing"),
])
def test_metadata_inconsistent_with_the_arrays(saved, tmp_path, edit, match):
    path, _, _ = saved
    bad = _rewrite(path, tmp_path / "bad.cymlp", meta_edit=edit)
    with pytest.raises(cio.ModelFileError, match=match):
        cymlp.load(bad)


def test_metadata_describing_a_huge_network_is_a_model_file_error(mlp, tmp_path):
    """A file whose hyper-parameters describe a network far larger than its
    'params' array is inconsistent: ModelFileError, found by comparing sizes before
    the network is built, not a MemoryError from trying to build it."""
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")

    def edit(meta):
        _fitted(meta)["network"]["hidden"] = [10**7]
        _fitted(meta)["network"]["n_features"] = 1000
        _fitted(meta)["encoder"]["n_features_in"] = 1000

    bad = _rewrite(path, tmp_path / "bad.cymlp", meta_edit=edit)
    with pytest.raises(cio.ModelFileError, match="'params' has shape"):
        cymlp.load(bad)


@pytest.mark.parametrize("where", ["params", "E"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters(text, mlp, tmp_path, where, value):
    model, _ = text if where == "E" else mlp
    path = model.save(tmp_path / "m.cymlp")

    def edit(arrays):
        arrays[where] = arrays[where].copy()
        arrays[where].flat[3] = value

    bad = _rewrite(path, tmp_path / "bad.cymlp", arrays_edit=edit)
    with pytest.raises(cio.ModelFileError, match=f"'{where}' contains NaN or infinity"):
        cymlp.load(bad)


def test_newer_format_version(saved, tmp_path, monkeypatch):
    path, _, _ = saved
    meta, arrays = cio.load_bundle(path)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    monkeypatch.setattr(cio, "FORMAT_VERSION", 2)  # written by a future cymlp
    cio.save_bundle(tmp_path / "new.cymlp", meta, arrays)
    monkeypatch.undo()
    with pytest.raises(cio.ModelFileError,
                       match=r"written by a newer cymlp \(format 2\).*upgrade cymlp"):
        cymlp.load(tmp_path / "new.cymlp")


@pytest.mark.parametrize("name", ["MLPRegressor", "", None, 3, "mlpclassifier"])
def test_unknown_estimator_name(saved, tmp_path, name):
    path, _, _ = saved
    bad = _rewrite(path, tmp_path / "bad.cymlp",
                   meta_edit=lambda m: m.update(estimator=name))
    with pytest.raises(cio.ModelFileError, match=f"unknown estimator {name!r}; expected"):
        cymlp.load(bad)


def test_estimator_of_the_other_kind(mlp, text, tmp_path):
    """An MLP file relabelled as a text model (and back) is rejected, not misread."""
    for (model, _), other in ((mlp, "TextClassifier"), (text, "MLPClassifier")):
        path = model.save(tmp_path / "m.cymlp")
        bad = _rewrite(path, tmp_path / "bad.cymlp",
                       meta_edit=lambda m, other=other: m.update(estimator=other))
        with pytest.raises(cio.ModelFileError):
            cymlp.load(bad)


# ---------------------------------------------------------------------- code on load
def test_pickle_payload_in_place_of_the_parameters_is_never_run(saved, tmp_path):
    path, _, _ = saved
    # control: this payload does run when unpickled
    control = tmp_path / "control_marker"
    payload = np.empty(1, dtype=object)
    payload[0] = WritesMarker(control)
    np.lib.format.read_array(stdio.BytesIO(_npy_bytes(payload, allow_pickle=True)),
                             allow_pickle=True)
    assert control.exists()

    marker = tmp_path / "marker"
    payload[0] = WritesMarker(marker)
    bad = _replace_member(path, tmp_path / "evil.cymlp", "params.npy",
                          _npy_bytes(payload, allow_pickle=True))
    with pytest.raises(cio.ModelFileError, match="Python objects.*refusing"):
        cymlp.load(bad)
    assert not marker.exists()


def test_python_expression_in_an_npy_header_is_not_evaluated(saved, tmp_path):
    path, _, _ = saved
    marker = tmp_path / "marker"
    header = (f"{{'descr': __import__('pathlib').Path({str(marker)!r}).touch() or '<f4', "
              "'fortran_order': False, 'shape': (3,), }")
    header = header.ljust(118) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() \
        + np.zeros(3, np.float32).tobytes()
    bad = _replace_member(path, tmp_path / "evil.cymlp", "params.npy", data)
    with pytest.raises(cio.ModelFileError, match="damaged"):
        cymlp.load(bad)
    assert not marker.exists()


def _code(marker):
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


@pytest.mark.parametrize("field", [
    "estimator", "activation", "solver", "hidden_layer_sizes", "dtype", "random_state",
    "classes_kind", "meta_dtype", "n_features_in",
])
def test_python_looking_strings_in_meta_json_are_never_run(mlp, tmp_path, field):
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")
    marker = tmp_path / "marker"
    code = _code(marker)

    def edit(meta):
        if field in meta["params"]:
            meta["params"][field] = code
        elif field == "meta_dtype":
            _fitted(meta)["network"]["dtype"] = code
        elif field == "classes_kind":
            _fitted(meta)["classes"]["kind"] = code
        elif field == "n_features_in":
            _fitted(meta)["encoder"]["n_features_in"] = code
        else:
            meta[field] = code

    bad = _rewrite(path, tmp_path / "evil.cymlp", meta_edit=edit)
    with pytest.raises(cio.ModelFileError):
        cymlp.load(bad)
    assert not marker.exists()


def test_python_looking_class_labels_are_plain_strings(mlp, tmp_path):
    """Labels are data: a label that looks like code loads as that string, unrun."""
    model, X = mlp
    path = model.save(tmp_path / "m.cymlp")
    marker = tmp_path / "marker"
    labels = [_code(marker), "{{7*7}}", "${jndi:x}"]
    bad = _rewrite(path, tmp_path / "evil.cymlp",
                   meta_edit=lambda m: _fitted(m).update(classes={"kind": "str",
                                                                  "values": labels}))
    loaded = cymlp.load(bad)
    assert set(loaded.predict(X)) <= set(labels)
    assert list(loaded.classes_) == labels
    assert not marker.exists()


def test_meta_json_with_a_pickle_like_object_is_rejected(mlp, tmp_path):
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")
    marker = tmp_path / "marker"
    trick = {"__reduce__": ["os.system", [f"touch {marker}"]], "py/object": "os.system"}
    bad = _rewrite(path, tmp_path / "evil.cymlp",
                   meta_edit=lambda m: m["params"].update(random_state=trick))
    with pytest.raises(cio.ModelFileError, match="random_state"):
        cymlp.load(bad)
    assert not marker.exists()


def test_meta_json_that_is_not_json(saved, tmp_path):
    path, _, _ = saved
    bad = _replace_member(path, tmp_path / "bad.cymlp", "meta.json",
                          b"{'estimator': 'MLPClassifier'}  # a Python dict, not JSON")
    with pytest.raises(cio.ModelFileError, match="not valid UTF-8 JSON"):
        cymlp.load(bad)


# ---------------------------------------------------------------------- atomic save
def test_failed_save_keeps_the_previous_model_and_leaves_no_temp_file(text, mlp, tmp_path,
                                                                    monkeypatch):
    old_model, old_X = mlp
    path = tmp_path / "model.cymlp"
    old_model.save(path)
    before = path.read_bytes()

    new_model, _ = text  # two arrays or more (params, E, idf): fail at the second
    real_write_array = np.lib.format.write_array
    calls = []

    def failing(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 2:
            fp.write(b"half an array")
            raise OSError(28, "No space left on device")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(OSError, match="No space left"):
        new_model.save(path)
    monkeypatch.undo()

    assert len(calls) == 2
    assert path.read_bytes() == before
    assert _temp_leftovers(tmp_path) == []
    np.testing.assert_array_equal(cymlp.load(path).predict_proba(old_X),
                                  old_model.predict_proba(old_X))


@pytest.mark.parametrize("exc", [OSError("rename failed"), KeyboardInterrupt()])
def test_interrupted_replace_keeps_the_previous_model(mlp, tmp_path, monkeypatch, exc):
    model, _ = mlp
    path = tmp_path / "model.cymlp"
    path.write_bytes(b"previous content")

    def failing_replace(src, dst):
        raise exc

    monkeypatch.setattr(cio.os, "replace", failing_replace)
    with pytest.raises(type(exc)):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == b"previous content"
    assert _temp_leftovers(tmp_path) == []


def test_save_over_an_existing_model(mlp, text, tmp_path):
    path = tmp_path / "model.cymlp"
    (first, X1), (second, X2) = mlp, text
    first.save(path)
    assert isinstance(cymlp.load(path), MLPClassifier)
    second.save(path)
    loaded = cymlp.load(path)
    assert isinstance(loaded, TextClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X2), second.predict_proba(X2))
    first.save(str(path))  # and back, given as str
    np.testing.assert_array_equal(cymlp.load(path).predict_proba(X1),
                                  first.predict_proba(X1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.cymlp"]


def test_saved_file_is_json_and_npy_only(saved):
    """No member of a saved model can carry a pickle: JSON text and plain .npy."""
    path, _, _ = saved
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert "meta.json" in names
        json.loads(zf.read("meta.json").decode("utf-8"))
        for name in names:
            if name != "meta.json":
                assert name.endswith(".npy")
                arr = np.lib.format.read_array(stdio.BytesIO(zf.read(name)),
                                               allow_pickle=False)
                assert not arr.dtype.hasobject


def test_infinite_second_moments_of_a_fit_save_and_load(tmp_path):
    """A float64 fit on a value near 1e300 overflows Adam's second moment v = g*g to
    infinity for some parameters (their step is then 0, the parameters stay finite):
    that is a state the fit produces, so a model file holding it loads, and training
    continues from it exactly. (NaN there is still refused: test_non_finite_state.)"""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    X[1, 1] = 1e300
    y = np.arange(40) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier((4,), dtype="float64", max_iter=2, random_state=0).fit(X, y)
    assert np.isinf(model._engine.state2).any()  # the case this test is about
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    loaded.partial_fit(X, y)
    model.partial_fit(X, y)
    np.testing.assert_array_equal(loaded._engine.params, model._engine.params)


@pytest.mark.parametrize("name", ["state1", "state2"])
def test_non_finite_state(mlp, tmp_path, name):
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")

    def edit(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name][3] = np.nan

    bad = _rewrite(path, tmp_path / "bad.cymlp", arrays_edit=edit)
    with pytest.raises(cio.ModelFileError, match=f"'{name}' contains NaN"):
        cymlp.load(bad)


# ---------------------------------------------------------------------- any str
def test_labels_and_feature_names_holding_lone_surrogates_round_trip(tmp_path):
    """Labels and feature names are any str, lone surrogates ('\\udcff', which a
    failed decoding leaves) included: meta.json stores ASCII escapes, which UTF-8
    text could not."""
    import pandas as pd
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((20, 3)),
                     columns=pd.Index(["caf\udce9", "\ud800", "ok"], dtype=object))
    y = np.array(["\udcff", "plain", "\U0001f600"])[np.arange(20) % 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    path = model.save(tmp_path / "m.cymlp")
    with zipfile.ZipFile(path) as zf:
        zf.read("meta.json").decode("ascii")  # plain ASCII
    loaded = cymlp.load(path)
    assert loaded.classes_.tolist() == sorted(["\udcff", "plain", "\U0001f600"])
    assert loaded.feature_names_in_.tolist() == ["caf\udce9", "\ud800", "ok"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# ---------------------------------------------------------------------- what is read
def _with_members(src, dst, members):
    """Copy the zip src to dst and append deflated members {name: bytes or (header,
    number of zero bytes)}."""
    if pathlib.Path(src) != pathlib.Path(dst):
        dst.write_bytes(pathlib.Path(src).read_bytes())
    with zipfile.ZipFile(dst, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members.items():
            with zf.open(name, "w", force_zip64=True) as member:
                if isinstance(data, bytes):
                    member.write(data)
                else:
                    header, n_zeros = data
                    member.write(header)
                    chunk = b"\0" * min(n_zeros, 2**24)
                    for _ in range(n_zeros // len(chunk)):
                        member.write(chunk)
    return dst


def _npy_header(dtype, shape):
    buf = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
              "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_only_the_arrays_the_fitted_state_names_are_read(saved, tmp_path, monkeypatch):
    path, model, X = saved
    extra = _with_members(path, tmp_path / "extra.cymlp",
                          {"unused.npy": _npy_bytes(np.zeros(10)),
                           "notes.npy": _npy_bytes(np.arange(3))})
    read = []
    real = cio._read_array
    monkeypatch.setattr(cio, "_read_array",
                        lambda zf, info, p: read.append(info.filename) or real(zf, info, p))
    loaded = cymlp.load(extra)
    assert "unused.npy" not in read and "notes.npy" not in read
    assert "params.npy" in read
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def _run_child(code, limit_gb=2.0):
    """``code`` in a fresh interpreter under an address-space limit; its stdout."""
    import os
    import subprocess
    import sys
    import textwrap
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("an address-space limit cannot be combined with AddressSanitizer")
    limit = int(limit_gb * 2**30)
    prelude = textwrap.dedent(f"""
        import resource, warnings
        resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
        warnings.simplefilter("ignore")
        def peak_mb():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_unused_members_declaring_hundreds_of_megabytes_are_never_decompressed(mlp,
                                                                             tmp_path):
    """Three members of 128 MiB of zeros each (1.7 MB compressed) beside a real model:
    loading reads the model's own arrays only, so the peak memory stays that of the
    interpreter. (With every member read, three of 512 MiB took it from 148 MB to
    1.7 GB.)"""
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")
    junk = (_npy_header(np.float32, (2**25,)), 2**27)
    bomb = _with_members(path, tmp_path / "bomb.cymlp",
                         {f"junk{i}.npy": junk for i in range(3)})
    assert bomb.stat().st_size < 3 * 2**20
    out = _run_child(f"""
        import cymlp
        base = peak_mb()
        model = cymlp.load({str(bomb)!r})
        print(type(model).__name__, peak_mb() - base)
    """)
    name, grown = out.split()
    assert name == "MLPClassifier"
    assert float(grown) < 100, f"loading grew the peak memory by {grown} MB"


def test_a_member_declaring_more_than_the_network_holds_is_refused_before_reading(
        mlp, tmp_path, monkeypatch):
    """'params.npy' replaced by 4 MiB of zeros (deflated to 20 kB) whose header matches
    its size: the declared size is compared with what the network described needs (a
    few hundred bytes) before anything is decompressed."""
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")
    n = 2**20
    bad = tmp_path / "bad.cymlp"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != "params.npy":
                zout.writestr(info.filename, zin.read(info.filename))
    _with_members(bad, bad, {"params.npy": (_npy_header(np.float32, (n,)), 4 * n)})
    monkeypatch.setattr(cio, "_read_array", _must_not_read)
    with pytest.raises(cio.ModelFileError,
                       match=r"entry 'params.npy' declares \d+ bytes, but the model the "
                             r"file describes holds at most \d+ bytes of data there"):
        cymlp.load(bad)


def _must_not_read(zf, info, path):
    raise AssertionError(f"{info.filename} was read")


def test_the_bound_on_the_arrays_read(saved, tmp_path, monkeypatch):
    """max_bytes bounds the total declared size of the arrays read, checked before
    any is read; by default the bound is what the network described needs, and at
    most the memory available."""
    path, model, X = saved
    with zipfile.ZipFile(path) as zf:
        total = sum(i.file_size for i in zf.infolist() if i.filename != "meta.json")
    np.testing.assert_array_equal(cymlp.load(path, max_bytes=total).predict_proba(X),
                                  model.predict_proba(X))
    monkeypatch.setattr(cio, "_read_array", _must_not_read)
    with pytest.raises(cio.ModelFileError, match=rf"the arrays to read declare {total} bytes "
                                                 rf"in all, more than max_bytes \({total - 1} "
                                                 r"bytes\)"):
        cymlp.load(path, max_bytes=total - 1)
    monkeypatch.setattr(cio, "available_memory", lambda: 1000)
    with pytest.raises(cio.ModelFileError, match=r"more than the memory available \(1000 "
                                                 r"bytes\)"):
        cymlp.load(path)


# ---------------------------------------------------------------------- the path
def test_a_device_or_a_fifo_is_not_read(tmp_path):
    """/dev/zero would be read until memory runs out, a FIFO would block: both are
    refused from the file type, through a descriptor opened without blocking."""
    import os
    import threading
    with pytest.raises(cio.ModelFileError, match="/dev/zero is a character device, not a "
                                                 "model file"):
        cymlp.load("/dev/zero")
    fifo = tmp_path / "pipe.cymlp"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            cymlp.load(fifo)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert isinstance(outcome[0], cio.ModelFileError), outcome
    assert re.search(r"pipe.cymlp is a FIFO, not a model file", str(outcome[0]))


def test_a_directory_a_link_loop_and_a_dangling_link(tmp_path):
    import errno
    import os
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a model file"):
        cymlp.load(tmp_path)
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with pytest.raises(OSError, match=r"cannot read the model file .*a: its symbolic links "
                                      r"form a loop") as info:
        cymlp.load(tmp_path / "a")
    assert info.value.errno == errno.ELOOP
    os.symlink(tmp_path / "gone.cymlp", tmp_path / "link.cymlp")
    with pytest.raises(FileNotFoundError, match=r"model file not found: .*link.cymlp \(a "
                                                r"symbolic link to a missing file\)"):
        cymlp.load(tmp_path / "link.cymlp")


# ---------------------------------------------------------------------- tampered fields
def _set_record(key, value):
    def edit(meta):
        _fitted(meta)["record"][key] = value
    return edit


def _set_classes(values, kind="int"):
    def edit(meta):
        _fitted(meta)["classes"] = {"kind": kind, "values": values}
    return edit


def _set_encoder(key, value):
    def edit(meta):
        _fitted(meta)["encoder"][key] = value
    return edit


@pytest.mark.parametrize("edit, match", [
    (_set_record("n_iter", "3"), (r"training record: n_iter must be an int in \[0, 2\*\*63\), "
                                  "got '3'")),
    (_set_record("n_iter", float("inf")), "n_iter must be an int .*got inf"),
    (_set_record("n_iter", [3]), r"n_iter must be an int .*got \[3\]"),
    (_set_record("n_iter", None), "n_iter must be an int .*got None"),
    (_set_record("n_iter", 2**64), "n_iter must be an int in"),
    (_set_record("loss_curve", 0.5), "loss_curve must be a list of numbers, got 0.5"),
    (_set_record("loss_curve", [10**400]), "loss_curve must be a finite number, got 1000"),
    (_set_record("lr", 10**400), "lr must be a finite number"),
    (_set_record("history", [{"deep": [[1]]}]), ("history must be a list of objects of "
                                                 "numbers")),
    (_set_classes([[1], [2], [3]]), "classes must be a list of int"),
    (_set_classes([float("nan"), 1, 2], "mixed"), ("classes must be a list of strings, "
                                                   "numbers and booleans")),
    (_set_classes([0, 0, 1]), "classes must be distinct"),
    (_set_encoder("feature_names_in", 5), "feature_names_in must be a list of 5 strings"),
    (_set_encoder("n_features_in", 2**64), ("n_features_in must be the network's input "
                                            "width 5")),
    (lambda m: _fitted(m)["optimizer"].update(step=2**63),
     r"step in \[0, 2\*\*63\)"),
    (lambda m: _fitted(m)["network"].update(leaky_slope=10**400),
     "bad network description: leaky_slope must be a finite number"),
    (lambda m: m["fitted"].update(rng={"bit_generator": "PCG64", "state": {"state": 2**200}}),
     "rng: not a valid PCG64 generator state"),
    (_set_param("max_iter", 10**20),
     "invalid parameters: max_iter must fit in a 64-bit integer"),
    (_set_param("alpha", 10**400),
     "invalid parameters: alpha must be finite, got an integer of about 401 digits"),
    (lambda m: m.update(fitted=None), r"holds no fitted model \('fitted' is None\)"),
    (lambda m: m.update(fitted=[]), "the fitted state must be an object"),
])
def test_tampered_fields_of_the_state(mlp, tmp_path, edit, match):
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")
    bad = _rewrite(path, tmp_path / "bad.cymlp", meta_edit=edit)
    with pytest.raises(cio.ModelFileError, match=match):
        cymlp.load(bad)


def _replace_meta_text(src, dst, edit_text):
    with zipfile.ZipFile(src) as zf:
        text = zf.read("meta.json").decode("ascii")
    return _replace_member(src, dst, "meta.json", edit_text(text).encode("ascii"))


@pytest.mark.parametrize("edit_text, match", [
    # nesting 100,000 levels deep: Python's JSON parser would raise RecursionError
    (lambda t: t.replace('"history": [', '"history": [' + "[" * 100_000 + "]" * 100_000
                         + ", ", 1),
     "meta.json is nested too deeply to be a model's metadata"),
    # an integer of 5000 digits: more than Python converts from text
    (lambda t: t.replace('"n_iter": 3', '"n_iter": 1' + "0" * 5000, 1),
     r"meta.json holds a value that cannot be read \(Exceeds the limit"),
])
def test_meta_json_that_json_cannot_hold_in_python(mlp, tmp_path, edit_text, match):
    model, _ = mlp
    path = model.save(tmp_path / "m.cymlp")
    bad = _replace_meta_text(path, tmp_path / "bad.cymlp", edit_text)
    with pytest.raises(cio.ModelFileError, match=match):
        cymlp.load(bad)


#: values that no field of a model file's metadata may turn into a crash
_HOSTILE = ["\udcff", float("nan"), -1, 2**64, 1.5, None, {}, [[1]]]


def _field_paths(obj, path=()):
    """Paths of every value in a JSON tree (lists: their first item)."""
    if path:
        yield path
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _field_paths(value, path + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:1]):
            yield from _field_paths(value, path + (i,))


def _set_path(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


@pytest.mark.parametrize("kind", ["mlp", "text"])
def test_every_field_of_the_metadata_tampered(request, tmp_path, kind):
    """Every field of a real model file's meta.json (parameters, network, encoder and
    vocabulary, classes, record, optimiser, generator) set in turn to each of a few
    hostile values: load gives a ModelFileError, or a model whose probabilities are
    finite; never another exception."""
    model, X = request.getfixturevalue(kind)
    path = model.save(tmp_path / "m.cymlp")
    meta, arrays = cio.load_bundle(path)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    bad = tmp_path / "bad.cymlp"
    outcomes = {"refused": 0, "loaded": 0}
    for field in _field_paths(meta):
        for value in _HOSTILE:
            edited = json.loads(json.dumps(meta))
            _set_path(edited, field, value)
            cio.save_bundle(bad, edited, arrays)
            try:
                loaded = cymlp.load(bad)
            except cio.ModelFileError:
                outcomes["refused"] += 1
                continue
            outcomes["loaded"] += 1
            try:
                proba = loaded.predict_proba(X[:5])
            except FloatingPointError:
                continue
            assert np.isfinite(proba).all(), (field, value)
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


def test_a_model_changed_in_place_to_nan_is_not_saved(mlp, tmp_path):
    """coefs_ are live views: a NaN written into one is refused at save (the file
    would not load), and nothing is written."""
    import copy
    model = copy.deepcopy(mlp[0])
    model.coefs_[1][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"coefs_\[1\] holds NaN or infinity: a model file "
                                         r"\(or a pickle\) of it could not be loaded"):
        model.save(tmp_path / "m.cymlp")
    assert list(tmp_path.iterdir()) == []
