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
