"""Tests of cymlp.io: model files without pickle."""

import json
import os
import pathlib
import re
import zipfile

import numpy as np
import pytest
from _shared import import_cymlp_module

cio = import_cymlp_module("io")


def _temp_leftovers(directory):
    return [p.name for p in pathlib.Path(directory).iterdir() if p.name.endswith(".tmp")]


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_bytes(array, allow_pickle=False):
    import io as stdio

    buf = stdio.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _meta(**extra):
    return json.dumps({"format": "cymlp", "format_version": 1, **extra}).encode()


class PickleMarker:
    """Unpickling an instance of this creates the file ``self.path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_round_trip_preserves_values_dtype_and_layout(tmp_path, dtype):
    rng = np.random.default_rng(0)
    arrays = {
        "coefs_0": (rng.normal(size=(5, 3)) * 10).astype(dtype),
        "intercepts_0": np.arange(3, dtype=dtype),
        "fortran": np.asfortranarray((rng.normal(size=(4, 2)) * 10).astype(dtype)),
        "empty": np.zeros((0, 7), dtype=dtype),
        "scalar": np.array(3, dtype=dtype),
    }
    meta = {"classes": ["neg", "pos"], "alpha": 1e-4, "hidden": [8, 4], "name": "modèle"}
    path = tmp_path / "model.cymlp"
    assert cio.save_bundle(path, meta, arrays) == path

    got_meta, got = cio.load_bundle(path)
    assert got_meta["format"] == "cymlp" and got_meta["format_version"] == 1
    assert {k: v for k, v in got_meta.items() if k not in ("format", "format_version")} == meta
    assert list(got) == list(arrays)
    for name, array in arrays.items():
        assert got[name].dtype == array.dtype
        assert got[name].shape == array.shape
        np.testing.assert_array_equal(got[name], array)
    assert got["fortran"].flags.f_contiguous
    got["coefs_0"][0, 0] = 0  # loaded arrays are ordinary writable arrays


def test_compressed_round_trip_and_numpy_meta_values(tmp_path):
    path = tmp_path / "m.cymlp"
    array = np.tile(np.arange(10, dtype=np.float64), 100)
    cio.save_bundle(
        path,
        {"n_iter": np.int64(7), "lr": np.float32(0.5), "v": np.arange(3)},
        {"a": array},
        compress=True,
    )
    meta, arrays = cio.load_bundle(path)
    assert meta["n_iter"] == 7 and meta["lr"] == 0.5 and meta["v"] == [0, 1, 2]
    np.testing.assert_array_equal(arrays["a"], array)
    assert path.stat().st_size < array.nbytes


def test_file_is_a_zip_with_json_meta_and_npy_members(tmp_path):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {"k": 1}, {"W": np.ones((2, 2), np.float32)})
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["W.npy", "meta.json"]
        assert json.loads(zf.read("meta.json").decode("utf-8")) == {
            "format": "cymlp",
            "format_version": 1,
            "k": 1,
        }
        assert zf.read("W.npy").startswith(b"\x93NUMPY")


def test_save_rejects_object_arrays_reserved_keys_and_bad_names(tmp_path):
    path = tmp_path / "m.cymlp"
    with pytest.raises(ValueError, match="Python objects"):
        cio.save_bundle(path, {}, {"a": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        cio.save_bundle(path, {"format_version": 2}, {})
    for bad in ("../evil", "a/b", ".hidden", "", "a..b"):
        with pytest.raises(ValueError, match="not allowed"):
            cio.save_bundle(path, {}, {bad: np.zeros(1)})
    with pytest.raises(TypeError, match="JSON"):
        cio.save_bundle(path, {"x": object()}, {})
    assert not path.exists()
    assert _temp_leftovers(tmp_path) == []


def test_truncated_file_raises_model_file_error(tmp_path):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {"k": 1}, {"W": np.ones((50, 50))})
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 3):
        path.write_bytes(data[:cut])
        with pytest.raises(cio.ModelFileError, match="truncated"):
            cio.load_bundle(path)


def test_not_a_zip_raises_model_file_error(tmp_path):
    path = tmp_path / "m.cymlp"
    path.write_bytes(b"this is just text\n")
    with pytest.raises(cio.ModelFileError, match="not a cymlp model file"):
        cio.load_bundle(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cymlp"):
        cio.load_bundle(tmp_path / "nope.cymlp")


def test_damaged_array_data_is_detected(tmp_path):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {}, {"W": np.zeros(1000)})
    data = bytearray(path.read_bytes())
    start = data.index(b"\x93NUMPY") + 200
    data[start : start + 8] = b"\xff" * 8  # flip array bytes: CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(cio.ModelFileError, match="damaged|CRC"):
        cio.load_bundle(path)


def test_wrong_format_and_missing_meta(tmp_path):
    npz = tmp_path / "plain.npz"
    np.savez(npz, W=np.ones(3))  # an ordinary npz file is not a bundle
    with pytest.raises(cio.ModelFileError, match="no meta.json"):
        cio.load_bundle(npz)

    path = tmp_path / "m.cymlp"

    _write_zip(path, {"meta.json": json.dumps({"format": "other", "format_version": 1})})
    with pytest.raises(cio.ModelFileError, match="format 'other'"):
        cio.load_bundle(path)

    _write_zip(path, {"meta.json": b"{not json"})
    with pytest.raises(cio.ModelFileError, match="not valid UTF-8 JSON"):
        cio.load_bundle(path)

    _write_zip(path, {"meta.json": b"[1, 2]"})
    with pytest.raises(cio.ModelFileError, match="JSON object"):
        cio.load_bundle(path)

    _write_zip(path, {"meta.json": _meta(), "notes.txt": b"hello"})
    with pytest.raises(cio.ModelFileError, match="unexpected entry"):
        cio.load_bundle(path)


def test_newer_format_version_asks_to_upgrade(tmp_path):
    path = tmp_path / "m.cymlp"
    _write_zip(path, {"meta.json": json.dumps({"format": "cymlp", "format_version": 2})})
    with pytest.raises(
        cio.ModelFileError,
        match=r"written by a newer cymlp \(format 2\), this version reads up to 1: upgrade cymlp",
    ):
        cio.load_bundle(path)
    _write_zip(path, {"meta.json": json.dumps({"format": "cymlp", "format_version": "1"})})
    with pytest.raises(cio.ModelFileError, match="invalid format_version"):
        cio.load_bundle(path)


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path):
    payload = np.empty(1, dtype=object)
    marker = tmp_path / "marker_control"
    payload[0] = PickleMarker(marker)
    data = _npy_bytes(payload, allow_pickle=True)

    # Control: the payload does create the marker when unpickled, so the
    # assertion below that it was not created is meaningful.
    import io as stdio

    unpickled = np.lib.format.read_array(stdio.BytesIO(data), allow_pickle=True)
    unpickled[0].close()
    assert marker.exists()

    marker = tmp_path / "marker"
    payload[0] = PickleMarker(marker)
    path = tmp_path / "evil.cymlp"
    _write_zip(path, {"meta.json": _meta(), "W.npy": _npy_bytes(payload, allow_pickle=True)})
    with pytest.raises(cio.ModelFileError, match="Python objects"):
        cio.load_bundle(path)
    assert not marker.exists()


def test_member_that_is_not_npy_or_lies_about_its_size(tmp_path):
    path = tmp_path / "m.cymlp"
    _write_zip(path, {"meta.json": _meta(), "W.npy": b"not an npy file at all"})
    with pytest.raises(cio.ModelFileError, match="damaged"):
        cio.load_bundle(path)

    # A header that declares far more data than the entry holds is refused
    # before any memory is allocated for it.
    import io as stdio

    buf = stdio.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(buf, header)
    _write_zip(path, {"meta.json": _meta(), "W.npy": buf.getvalue() + b"\0" * 32})
    with pytest.raises(cio.ModelFileError, match="header declares 8000000000000 bytes"):
        cio.load_bundle(path)


@pytest.mark.parametrize("name", ["../W.npy", "sub/W.npy", "..W.npy"])
def test_path_names_are_refused(tmp_path, name):
    path = tmp_path / "m.cymlp"
    _write_zip(path, {"meta.json": _meta(), name: _npy_bytes(np.zeros(2))})
    with pytest.raises(cio.ModelFileError, match="path names are not allowed"):
        cio.load_bundle(path)


def test_member_declaring_an_oversized_length_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {}, {"W": np.zeros(1000)})
    monkeypatch.setattr(cio, "MAX_MEMBER_SIZE", 4000)
    with pytest.raises(cio.ModelFileError, match="declares 8128 bytes, more than the 4000"):
        cio.load_bundle(path)


def test_failed_save_keeps_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {"version": "old"}, {"W": np.ones(3)})
    before = path.read_bytes()

    real_write_array = np.lib.format.write_array
    calls = []

    def failing_write_array(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 2:
            fp.write(b"partial")
            raise OSError("disk full")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        cio.save_bundle(path, {"version": "new"}, {"a": np.zeros(5), "b": np.zeros(6)})
    monkeypatch.undo()

    assert len(calls) == 2  # the failure happened after one array was written
    assert path.read_bytes() == before
    assert cio.load_bundle(path)[0]["version"] == "old"
    assert _temp_leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cymlp"]


def test_unserialisable_array_keeps_old_file(tmp_path):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {"version": "old"}, {"W": np.ones(3)})
    before = path.read_bytes()
    with pytest.raises(ValueError):
        cio.save_bundle(path, {"version": "new"}, {"ok": np.ones(2), "bad": np.array([None, 1])})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cymlp"]


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {"v": 1}, {"W": np.ones(3)})
    cio.save_bundle(str(path), {"v": 2}, {"W": np.zeros(2)})
    meta, arrays = cio.load_bundle(str(path))
    assert meta["v"] == 2
    np.testing.assert_array_equal(arrays["W"], np.zeros(2))
    assert _temp_leftovers(tmp_path) == []


# ---------------------------------------------------------------------- atomic_write
def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_saving_into_a_missing_folder_names_the_target_not_the_temporary_file(tmp_path):
    target = tmp_path / "absent" / "m.cymlp"
    with pytest.raises(FileNotFoundError) as info:
        cio.save_bundle(target, {}, {"W": np.ones(2)})
    message = str(info.value)
    assert re.search(r"cannot write .*absent/m\.cymlp: No such file or directory \(the folder "
                     r".*absent does not exist\)", message), message
    assert ".tmp" not in message and ".cymlp-" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_name_near_the_length_limit_can_be_saved(tmp_path):
    """A 240-character name is valid (the limit is 255 bytes); the temporary file
    beside it has a short name of its own, so it fits too."""
    target = tmp_path / ("m" * 234 + ".cymlp")
    assert len(target.name) == 240
    cio.save_bundle(target, {"k": 1}, {"W": np.ones(2)})
    assert cio.load_bundle(target)[0]["k"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_saving_over_a_symbolic_link_replaces_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "models" / "real.cymlp"
    real.parent.mkdir()
    cio.save_bundle(real, {"v": 1}, {"W": np.ones(2)})
    link = tmp_path / "latest.cymlp"
    link.symlink_to(real)
    cio.save_bundle(link, {"v": 2}, {"W": np.ones(2)})
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert cio.load_bundle(real)[0]["v"] == 2
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.cymlp"]
    # a link to a file that does not exist yet: the file is made where it points
    dangling = tmp_path / "next.cymlp"
    dangling.symlink_to(tmp_path / "models" / "new.cymlp")
    cio.save_bundle(dangling, {"v": 3}, {"W": np.ones(2)})
    assert dangling.is_symlink() and cio.load_bundle(real.parent / "new.cymlp")[0]["v"] == 3


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_models_and_run_records_get_the_permissions_of_an_ordinary_new_file(tmp_path,
                                                                           umask):
    """0o666 less the umask, for binary (model files) and text (run records) alike,
    also when replacing a file that had other permissions (not the 0o600 of a
    temporary file)."""
    old = os.umask(umask)
    try:
        model = tmp_path / "m.cymlp"
        cio.save_bundle(model, {}, {"W": np.ones(2)})
        record = tmp_path / "run.json"
        record.write_text("{}")
        os.chmod(record, 0o600)
        with cio.atomic_write(record, "w", encoding="utf-8") as fh:
            fh.write('{"accuracy": 1.0}')
    finally:
        os.umask(old)
    assert _mode(model) == 0o666 & ~umask
    assert _mode(record) == 0o666 & ~umask
    assert json.loads(record.read_text()) == {"accuracy": 1.0}


def test_an_npy_header_that_numpy_cannot_tokenize_is_a_damaged_file(tmp_path):
    """NUL bytes and an open brace in a .npy header: NumPy's fallback parser raises
    tokenize.TokenError, which is not a ValueError (found by the members fuzzer)."""
    header = b"\x00\x00\x00{"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    path = tmp_path / "m.cymlp"
    _write_zip(path, {"meta.json": _meta(), "W.npy": data})
    with pytest.raises(cio.ModelFileError, match="damaged model file"):
        cio.load_bundle(path)


def test_an_archive_whose_offsets_point_before_its_start_is_damaged(tmp_path):
    """A bundle without its first byte: its offsets then point before the start, and
    zipfile's seek raises OSError (EINVAL), found by the bytes fuzzer."""
    path = tmp_path / "m.cymlp"
    cio.save_bundle(path, {"k": 1}, {"W": np.ones(3)})
    path.write_bytes(path.read_bytes()[1:])
    with pytest.raises(cio.ModelFileError, match=r"damaged model file \(\[Errno 22\]"):
        cio.load_bundle(path)


def test_stale_temporaries_of_dead_writers_are_removed_and_no_other_file(tmp_path):
    """What a killed atomic_write leaves (its process gone) is removed; the files of
    live writers, of other machines and of any other name stay."""
    import subprocess
    import sys

    from cymlp import io

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = io._host()
    dead = f".cymlp-{host}-{proc.pid}-{'ab' * 6}.tmp"
    keep = [f".cymlp-{host}-{os.getpid()}-{'cd' * 6}.tmp",   # this live process
            f".cymlp-elsewhere-{proc.pid}-{'ef' * 6}.tmp",    # another machine
            "notes.tmp", "run.json", f".cymlp-{proc.pid}-{'ab' * 6}.tmp"]
    for name in [dead, *keep]:
        (tmp_path / name).write_bytes(b"x")
    removed = io.remove_stale_temporaries(tmp_path)
    assert [os.path.basename(p) for p in removed] == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert io.remove_stale_temporaries(tmp_path / "absent") == []
