"""The compiled text path (cymlp._text) against the Python reference (cymlp.vocab).

Both implementations sit behind one interface: ``Vocabulary`` uses the compiled
counter and index, ``_ReferenceVocabulary`` the pure-Python ones. Every test here
runs the same calls through both and asks for identical tokens, ids, counts, order,
CSR arrays, shares and window ids: on the shared data (MR, SST-2, TREC) for many
settings, and on generated Unicode text.

The data directory is ``$CYMLP_DATA_DIR``, or ``../shared/data`` (relative to the
working directory, where CI runs the tests from).
"""

import json
import os
import pathlib
import subprocess
import sys
import unicodedata
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cymlp import _text, datasets, vocab

Vocabulary = vocab.Vocabulary
Reference = vocab._ReferenceVocabulary

DATA_DIR = pathlib.Path(os.path.abspath(os.environ.get("CYMLP_DATA_DIR") or "../shared/data"))

FILES = {
    "mr": ["rt-polarity.all"],
    "sst2": ["stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"],
    "trec": ["TREC.train.all", "TREC.test.all"],
}


def _read(name):
    """Texts of a ``LABEL TEXT`` file (a line that is not UTF-8 read as cp1252)."""
    path = DATA_DIR / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: set CYMLP_DATA_DIR to the directory holding the "
                    "MR, SST-2 and TREC files (see ../shared/data/README.md)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cp1252 fallback's warning
        return datasets.read_file(path, format="label_text").X


@pytest.fixture(scope="module")
def corpora():
    """dataset -> (texts to fit on, other texts to encode)."""
    out = {}
    for name, files in FILES.items():
        parts = [_read(f) for f in files]
        if name == "mr":  # no split given: fit on 9/10, encode the rest too
            fit, other = parts[0][:9600], parts[0]
        else:
            fit, other = parts[0], [t for p in parts[1:] for t in p]
        out[name] = (fit, other)
    return out


def _pair(texts, **kwargs):
    return Vocabulary(**kwargs).fit(texts), Reference(**kwargs).fit(texts)


def _assert_same_tables(fast, ref):
    assert fast.id_to_token == ref.id_to_token
    np.testing.assert_array_equal(fast.counts, ref.counts)
    assert fast.counts.dtype == ref.counts.dtype == np.int64
    assert (fast.n_unigrams, fast.char_offset) == (ref.n_unigrams, ref.char_offset)
    assert fast.token_to_id == ref.token_to_id
    assert fast.to_dict() == ref.to_dict()


def _assert_same_encodings(fast, ref, texts, window=7):
    for a, b in zip(fast.encode_bag(texts, return_shares=True),
                    ref.encode_bag(texts, return_shares=True)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    a, b = fast.encode_window(texts, window), ref.encode_window(texts, window)
    assert a.dtype == b.dtype == np.int32
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ real data
SETTINGS = [
    {},
    {"ngram_range": (1, 2)},
    {"ngram_range": (1, 3), "min_count": 2},
    {"ngram_range": (2, 3)},
    {"ngram_range": (1, 2), "lowercase": True, "max_size": 5000},
    {"ngram_range": (1, 2), "max_size": 30000},     # cuts into the bigrams
    {"char_ngram_range": (3, 5)},
    {"char_ngram_range": (2, 4), "ngram_range": (1, 2), "min_count": 3, "lowercase": True},
    {"ngram_range": (1, 2), "n_buckets": 1000},
    {"ngram_range": (1, 3), "char_ngram_range": (3, 5), "n_buckets": 4096, "min_count": 2},
]


@pytest.mark.parametrize("dataset", list(FILES))
@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())
                         or "default")
def test_same_vocabulary_and_encodings_on_the_shared_data(corpora, dataset, kwargs):
    fit, other = corpora[dataset]
    fast, ref = _pair(fit, **kwargs)
    _assert_same_tables(fast, ref)
    _assert_same_encodings(fast, ref, other)
    for word in ["the", "movie", "unseenword", "what", fast.id_to_token[-1]]:
        np.testing.assert_array_equal(fast.subword_ids(word), ref.subword_ids(word))
    one = other[len(other) // 2]
    np.testing.assert_array_equal(fast.encode(one), ref.encode(one))
    np.testing.assert_array_equal(fast.encode(one.split()), ref.encode(one.split()))


def test_loaded_vocabularies_encode_alike(corpora):
    """Tables built from a dict (not from counts) give the same encodings."""
    fit, other = corpora["mr"]
    for kwargs in ({"ngram_range": (1, 2), "char_ngram_range": (3, 4)},
                   {"ngram_range": (1, 2), "char_ngram_range": (3, 4), "n_buckets": 500}):
        d = json.loads(json.dumps(Reference(**kwargs).fit(fit).to_dict()))
        fast, ref = Vocabulary.from_dict(d), Reference.from_dict(d)
        _assert_same_tables(fast, ref)
        _assert_same_encodings(fast, ref, other[:2000])


def test_compiled_tokenizer_splits_the_data_like_str_split(corpora):
    texts = [t for fit, other in corpora.values() for t in fit + other]
    for lowercase in (False, True):
        prepare = Vocabulary(lowercase=lowercase)._prepare
        assert _text.split_texts(texts, lowercase, prepare) == [
            vocab.tokenize(t, lowercase=lowercase) for t in texts]


# -------------------------------------------------------------- generated text
# characters that make tokenising and normalising interesting: ASCII, every
# character str.isspace() accepts, combining marks, precomposed letters, NUL and
# other controls, non-BMP letters, and a few letters whose lower case is special
_SPACES = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_ALPHABET = (
    "abcAB<>. " + _SPACES + "\x00\x01\x7f"
    + "\u0301\u0308\u0327\u0345"          # combining acute, diaeresis, cedilla, ypogegrammeni
    + "\u00e9\u00c9\u00e7\u00f1\u1e9e\u0130\u03a3\u0391"  # é É ç ñ ẞ İ Σ Α
    + "\u4e2d\U0001f600\U00010400"         # CJK, emoji, Deseret capital
)
_words = st.text(alphabet=st.sampled_from(_ALPHABET), max_size=12)
_texts = st.lists(st.one_of(_words, st.text(max_size=8)), max_size=12)


def _no_surrogates(texts):
    return [t.encode("utf-8", "replace").decode("utf-8") for t in texts]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=_texts, extra=_texts, lowercase=st.booleans(),
       kwargs=st.sampled_from([{}, {"ngram_range": (1, 3)}, {"char_ngram_range": (1, 3)},
                               {"ngram_range": (1, 2), "char_ngram_range": (2, 4),
                                "n_buckets": 11}, {"ngram_range": (2, 2), "n_buckets": 5}]))
def test_same_results_on_generated_unicode(texts, extra, lowercase, kwargs):
    texts, extra = _no_surrogates(texts), _no_surrogates(extra)
    prepare = Vocabulary(lowercase=lowercase)._prepare
    assert _text.split_texts(texts + extra, lowercase, prepare) == [
        vocab.tokenize(t, lowercase=lowercase) for t in texts + extra]
    if not any(vocab.tokenize(t) for t in texts):
        for cls in (Vocabulary, Reference):
            with pytest.raises(ValueError, match="empty corpus"):
                cls(lowercase=lowercase, **kwargs).fit(texts)
        return
    fast, ref = _pair(texts, lowercase=lowercase, **kwargs)
    _assert_same_tables(fast, ref)
    # texts, and token lists whose tokens hold spaces or are empty (allowed when encoding)
    token_lists = [t.split(" ") for t in extra] + [[t] for t in extra]
    _assert_same_encodings(fast, ref, texts + extra + token_lists, window=3)
    for word in extra:
        np.testing.assert_array_equal(fast.subword_ids(word), ref.subword_ids(word))


@given(st.lists(st.text(alphabet="ae\u0301\u0308 ", max_size=10), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_nfc_and_nfd_spellings_get_the_same_ids(texts):
    for cls in (Vocabulary, Reference):
        nfc = [unicodedata.normalize("NFC", t) for t in texts]
        nfd = [unicodedata.normalize("NFD", t) for t in texts]
        if not any(t.split() for t in nfc):
            continue
        a, b = cls(ngram_range=(1, 2)).fit(nfc), cls(ngram_range=(1, 2)).fit(nfd)
        assert a.id_to_token == b.id_to_token
        assert all(unicodedata.is_normalized("NFC", t) for t in a.id_to_token)
        for x, y in zip(a.encode_bag(nfd), a.encode_bag(nfc)):
            np.testing.assert_array_equal(x, y)


@given(texts=st.lists(st.text(max_size=6), min_size=1, max_size=6), where=st.integers(0, 5),
       at=st.integers(0, 6), surrogate=st.integers(0xD800, 0xDFFF))
@settings(max_examples=60, deadline=None)
def test_lone_surrogates_are_refused_naming_the_text(texts, where, at, surrogate):
    texts = _no_surrogates(texts) + ["fine"]
    where = min(where, len(texts) - 1)
    text = texts[where]
    at = min(at, len(text))
    texts[where] = text[:at] + chr(surrogate) + text[at:]
    messages = set()
    for cls in (Vocabulary, Reference):
        ok = cls().fit(["fine"])
        for call, args in ((cls().fit, ()), (ok.encode_bag, ()), (ok.encode_window, (2,))):
            with pytest.raises(ValueError, match=rf"texts\[{where}\] holds a lone surrogate "
                                                 rf"U\+{surrogate:04X} at character \d+") as err:
                call(texts, *args)
            messages.add(str(err.value))
    assert len(messages) == 1  # both paths, all three calls: one message
    ok = Vocabulary().fit(["fine"])
    with pytest.raises(ValueError, match=r"texts\[0\]\[1\] holds a lone surrogate"):
        Vocabulary().fit([["a", "b\udcff"]])
    with pytest.raises(ValueError, match=r"^text holds a lone surrogate"):
        ok.encode("a\udcff")
    with pytest.raises(ValueError, match=r"^word holds a lone surrogate"):
        Vocabulary(char_ngram_range=(2, 3)).fit(["ab"]).subword_ids("\ud800")
    with pytest.raises(ValueError, match="lone surrogate"):
        vocab.tokenize("\udcff")


def test_very_long_tokens_and_texts():
    long_ascii = "x" * 1_000_003
    long_text = " ".join(["y" * 70_000, "z\u00e9" * 40_000, "\U0001f600" * 30_000] * 3)
    texts = [long_ascii, long_text, "a " * 50_000, "", long_ascii + " a"]
    fast, ref = _pair(texts, ngram_range=(1, 3))
    _assert_same_tables(fast, ref)
    _assert_same_encodings(fast, ref, texts, window=4)
    assert fast.encode(long_ascii).tolist() == [fast.token_to_id[long_ascii]]
    # character n-grams of a long word (kept short enough for the reference)
    word = "\u00e9ab" * 2_000
    fast, ref = _pair([word, word + " q"], char_ngram_range=(3, 5))
    _assert_same_tables(fast, ref)
    _assert_same_encodings(fast, ref, [word, word + "c", "q" * 5000])


# --------------------------------------------------------------------- threads
@pytest.mark.parametrize("n_jobs", [2, 3, -1])
def test_threads_give_bitwise_the_same_arrays(corpora, n_jobs):
    fit, other = corpora["mr"]
    texts = other + [t.split() for t in other[:500]]
    for kwargs in ({"ngram_range": (1, 2)}, {"char_ngram_range": (3, 5), "ngram_range": (1, 2)},
                   {"ngram_range": (1, 3), "char_ngram_range": (2, 3), "n_buckets": 300}):
        one = Vocabulary(**kwargs).fit(fit)
        many = Vocabulary(**kwargs).fit(fit, n_jobs=n_jobs)
        _assert_same_tables(one, many)
        for a, b in zip(one.encode_bag(texts, return_shares=True),
                        one.encode_bag(texts, return_shares=True, n_jobs=n_jobs)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
        a, b = one.encode_window(texts, 9), one.encode_window(texts, 9, n_jobs=n_jobs)
        assert a.tobytes() == b.tobytes()
    # fewer texts than threads, and none
    vocab_ = Vocabulary().fit(["a b", "c"], n_jobs=n_jobs)
    assert vocab_.id_to_token == Vocabulary().fit(["a b", "c"]).id_to_token
    for texts in (["a"], []):
        np.testing.assert_array_equal(vocab_.encode_bag(texts, n_jobs=n_jobs)[0],
                                      vocab_.encode_bag(texts)[0])
        assert vocab_.encode_window(texts, 2, n_jobs=n_jobs).shape == (len(texts), 2)


def test_a_failing_text_fails_the_same_way_in_threads(corpora):
    texts = list(corpora["trec"][0])
    texts[4000] = b"bytes"
    texts[3000] = ["ok", 7]
    vocab_ = Vocabulary().fit(corpora["trec"][0][:100])
    for n_jobs in (1, 2, 4):
        with pytest.raises(TypeError, match=r"tokens must be str, got int \(texts\[3000\]\[1\]\)"):
            vocab_.encode_bag(texts, n_jobs=n_jobs)


# ------------------------------------------------------------- hashed n-grams
def _fnv1a_32(data):
    """32-bit FNV-1a, written out once more for the test."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) % 2**32
    return h


def test_bucket_hash_is_32_bit_fnv1a_of_the_utf8_bytes():
    # published test vectors of FNV-1a (32 bit)
    vectors = {b"": 0x811C9DC5, b"a": 0xE40C292C, b"foobar": 0xBF9CF968}
    for data, want in vectors.items():
        assert _fnv1a_32(data) == vocab._fnv1a_32(data) == _text._fnv1a_32(data) == want
    for data in ["caf\u00e9 noir".encode(), b"\x00\xff" * 9, "\U0001f600".encode()]:
        assert vocab._fnv1a_32(data) == _text._fnv1a_32(data) == _fnv1a_32(data)
    texts = ["the caf\u00e9 noir", "the cat"]
    for cls in (Vocabulary, Reference):
        v = cls(ngram_range=(1, 2), char_ngram_range=(3, 3), n_buckets=97).fit(texts)

        def bucket(gram, v=v):
            return v.n_unigrams + _fnv1a_32(gram.encode()) % 97

        ids = v.encode("caf\u00e9 noir").tolist()
        assert ids[:5] == [v.token_to_id["caf\u00e9"]] + [
            bucket(g) for g in ("<ca", "caf", "af\u00e9", "f\u00e9>")]
        assert ids[-1] == bucket("caf\u00e9 noir")
        # words never seen: their character n-grams still have buckets
        assert v.encode("zz top").tolist() == [
            bucket(g) for g in ("<zz", "zz>", "<to", "top", "op>", "zz top")]
        plain = cls(ngram_range=(1, 2), n_buckets=97).fit(texts)
        assert plain.encode("zz top").tolist() == [1, 1, plain.n_unigrams
                                                   + _fnv1a_32(b"zz top") % 97]


_HASH_CHILD = """
import json, sys
from cymlp import vocab
texts = ["der Ka\u0308se ist gu\u0308n", "caf\u00e9 au lait", "\U0001f600 smile \U0001f600", "a b c d"]
out = {}
for name, cls in (("compiled", vocab.Vocabulary), ("reference", vocab._ReferenceVocabulary)):
    v = cls(ngram_range=(1, 3), char_ngram_range=(2, 4), n_buckets=1009).fit(texts)
    indptr, ids, shares = v.encode_bag(texts + ["unseen words here"], return_shares=True)
    out[name] = [ids.tolist(), v.counts.tolist(), v.subword_ids("k\u00e4se").tolist(),
                 v.to_dict()]
print(json.dumps(out))
"""


def test_hashed_ids_are_the_same_in_every_process():
    results = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", _HASH_CHILD], capture_output=True,
                              text=True, env=env, timeout=300, check=True)
        results.append(json.loads(proc.stdout))
    assert results[0] == results[1]
    assert results[0]["compiled"] == results[0]["reference"]
    texts = ["der Ka\u0308se ist gu\u0308n", "caf\u00e9 au lait"]
    here = Vocabulary(ngram_range=(1, 3), char_ngram_range=(2, 4), n_buckets=1009).fit(
        texts + ["\U0001f600 smile \U0001f600", "a b c d"])
    assert here.to_dict() == results[0]["compiled"][3]


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [Vocabulary, Reference])
def test_bad_input_is_refused_alike(cls):
    with pytest.raises(TypeError, match="got bytes"):
        cls().fit(["a", b"b"])
    with pytest.raises(TypeError, match="a text must be a str or a list of str tokens, got int"):
        cls().fit(["a", 3])
    with pytest.raises(TypeError, match=r"tokens must be str, got NoneType \(texts\[1\]\[0\]\)"):
        cls().fit(["a", [None]])
    with pytest.raises(ValueError, match=r"hold no whitespace, got 'new\\u2028york'"):
        cls().fit([["new\u2028york"]])
    with pytest.raises(ValueError, match=r"non-empty and hold no whitespace, got '' \(texts\[0\]\[1\]\)"):
        cls().fit([["a", ""]])
    with pytest.raises(ValueError, match="empty corpus"):
        cls().fit(["\u2029 \x1c\x85", [], ""])
    with pytest.raises(TypeError, match="single str"):
        cls().fit("one text")
    fitted = cls().fit(["a b"])
    for bad in (0, -2, 1.5, True, "2", None):
        for call, args in ((fitted.encode_bag, (["a"],)), (fitted.encode_window, (["a"], 2)),
                           (cls().fit, (["a"],))):
            with pytest.raises(ValueError, match=r"n_jobs must be an int >= 1, or -1"):
                call(*args, n_jobs=bad)
    for bad in (0, -1, 2.0, True, "7", 2**31):
        with pytest.raises(ValueError, match="n_buckets must be None or an int in"):
            cls(n_buckets=bad).fit(["a"])
    with pytest.raises(ValueError, match="at least n_buckets \\+ 2"):
        cls(n_buckets=10, max_size=11).fit(["a"])
    # a list token with whitespace is fine when encoding: it is just unknown
    assert fitted.encode([" a", "a b", ""]).tolist() == [1, 1, 1]


# ------------------------------------------------------------------- ranking
@pytest.mark.parametrize("depth", [-1, -2, 0, 2, 64])
def test_every_sort_path_ranks_like_python(depth):
    """The ranking of fit (depth -1: radix sort of compact items), its path for
    counts beyond 32 bits (-2: wide records), heapsort (0), shallow and deep
    quicksort: keys sharing long prefixes, keys that begin other keys, bytes below the space, non-ASCII."""
    rng = np.random.default_rng(7)
    pieces = [b"a", b"b", b" ", b"\x00", b"\x01", "\u00e9".encode(), "\U0001f600".encode(),
              b"prefix-of-sixteen", b"z"]
    keys = set()
    while len(keys) < 4000:
        keys.add(b"".join(pieces[i] for i in rng.integers(0, len(pieces), rng.integers(0, 6))))
    keys = sorted(keys)
    rng.shuffle(keys)
    counts = rng.integers(1, 4, len(keys)).astype(np.int64)
    want = [k for k, _ in sorted(zip(keys, counts), key=lambda kc: (-kc[1], kc[0]))]
    assert _text._rank_keys(keys, counts, depth) == want
    assert _text._rank_keys([], np.zeros(0, np.int64), depth) == []


def test_memory_is_given_back_after_use_and_after_errors(corpora):
    """The C tables come from PyMem_RawMalloc, so tracemalloc sees them: after a
    vocabulary is dropped, or a call fails halfway through the texts, nothing of
    the compiled path's memory is left."""
    import gc
    import tracemalloc

    fit, other = corpora["sst2"]
    bad = other + [b"bytes at the end"]

    def work():
        v = Vocabulary(ngram_range=(1, 2), char_ngram_range=(3, 4)).fit(fit, n_jobs=2)
        v.encode_bag(other, return_shares=True, n_jobs=2)
        v.encode_window(other, 5)
        Vocabulary.from_dict(v.to_dict()).encode(other[0])
        for call in (lambda: v.encode_bag(bad), lambda: Vocabulary().fit(bad)):
            with pytest.raises(TypeError):
                call()

    work()  # warm up: imports, caches
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            work()
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - before
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak > 2**20          # the work was traced
    assert left < 64 * 2**10, f"{left} bytes still held"
