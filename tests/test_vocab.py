"""Tests of cymlp.vocab: tokenising and the token-id vocabulary."""

import json

import numpy as np
import pytest
from _shared import import_cymlp_module

vocab_mod = import_cymlp_module("vocab")
Vocabulary = vocab_mod.Vocabulary
tokenize = vocab_mod.tokenize

CORPUS = ["the cat sat", "the dog sat", "a cat ran", "the cat"]
# counts: the 3, cat 3, sat 2, a 1, dog 1, ran 1


def test_tokenize_splits_on_any_whitespace():
    assert tokenize("  a  b\tc\nd ") == ["a", "b", "c", "d"]
    assert tokenize("") == []
    assert tokenize("The CAT", lowercase=True) == ["the", "cat"]
    assert tokenize("The CAT") == ["The", "CAT"]
    with pytest.raises(TypeError, match="str"):
        tokenize(["a"])


def test_ids_pad_unk_then_descending_count_ties_alphabetical():
    vocab = Vocabulary().fit(CORPUS)
    assert vocab.id_to_token == ["<pad>", "<unk>", "cat", "the", "sat", "a", "dog", "ran"]
    assert vocab.token_to_id == {t: i for i, t in enumerate(vocab.id_to_token) if i >= 2}
    assert vocab.counts.tolist() == [0, 0, 3, 3, 2, 1, 1, 1]
    assert vocab.counts.dtype == np.int64
    assert len(vocab) == 8
    assert vocab.PAD == 0 and vocab.UNK == 1
    assert "cat" in vocab and "<pad>" not in vocab and "zebra" not in vocab


def test_ids_do_not_depend_on_corpus_order():
    a = Vocabulary(ngram_range=(1, 2)).fit(CORPUS)
    b = Vocabulary(ngram_range=(1, 2)).fit(CORPUS[::-1])
    assert a.id_to_token == b.id_to_token


def test_encode_maps_unknown_words_to_unk():
    vocab = Vocabulary().fit(CORPUS)
    ids = vocab.encode("the zebra sat")
    assert ids.dtype == np.int32
    assert ids.tolist() == [3, 1, 4]
    assert vocab.encode(["cat", "dog"]).tolist() == [2, 6]
    assert vocab.encode("").tolist() == []


def test_min_count_and_max_size():
    vocab = Vocabulary(min_count=2).fit(CORPUS)
    assert vocab.id_to_token == ["<pad>", "<unk>", "cat", "the", "sat"]
    assert vocab.counts[1] == 3  # a, dog, ran left out
    assert vocab.encode("a dog").tolist() == [1, 1]

    vocab = Vocabulary(max_size=4).fit(CORPUS)
    assert vocab.id_to_token == ["<pad>", "<unk>", "cat", "the"]
    assert vocab.counts[1] == 5


def test_ngrams_get_ids_after_unigrams():
    vocab = Vocabulary(ngram_range=(1, 2)).fit(CORPUS)
    unigrams = ["<pad>", "<unk>", "cat", "the", "sat", "a", "dog", "ran"]
    # bigrams: the cat 2, cat sat 1, the dog 1, dog sat 1, a cat 1, cat ran 1
    bigrams = ["the cat", "a cat", "cat ran", "cat sat", "dog sat", "the dog"]
    assert vocab.id_to_token == unigrams + bigrams
    assert vocab.n_unigrams == 8
    assert vocab.encode("the cat sat").tolist() == [3, 2, 4, 8, 11]
    # unknown n-grams are dropped; unknown unigrams are UNK
    assert vocab.encode("sat the zebra").tolist() == [4, 3, 1]


def test_ngram_min_count_and_max_size_cap_total_ids():
    vocab = Vocabulary(ngram_range=(1, 3), min_count=2).fit(CORPUS)
    assert vocab.id_to_token == ["<pad>", "<unk>", "cat", "the", "sat", "the cat"]

    vocab = Vocabulary(ngram_range=(1, 2), max_size=10).fit(CORPUS)
    assert len(vocab) == 10
    assert vocab.id_to_token[8:] == ["the cat", "a cat"]

    vocab = Vocabulary(ngram_range=(1, 2), max_size=5).fit(CORPUS)
    assert vocab.id_to_token == ["<pad>", "<unk>", "cat", "the", "sat"]


def test_ngram_range_starting_above_one_emits_only_ngrams():
    vocab = Vocabulary(ngram_range=(2, 2)).fit(CORPUS)
    assert vocab.encode("the cat").tolist() == [vocab.token_to_id["the cat"]]
    # the window encoder still works on unigrams
    assert vocab.encode_window(["the cat"], 3).tolist() == [[3, 2, 0]]


def test_lowercase_applies_to_texts_and_token_lists():
    vocab = Vocabulary(lowercase=True).fit(["The Cat", "the cat"])
    assert vocab.id_to_token == ["<pad>", "<unk>", "cat", "the"]
    assert vocab.encode(["THE", "CAT"]).tolist() == [3, 2]
    assert Vocabulary().fit(["The the"]).id_to_token == ["<pad>", "<unk>", "The", "the"]


def test_encode_window_pads_and_truncates():
    vocab = Vocabulary().fit(CORPUS)
    out = vocab.encode_window(["the cat sat", "zebra", "", "a cat ran the dog"], 4)
    assert out.dtype == np.int32 and out.shape == (4, 4)
    assert out.tolist() == [[3, 2, 4, 0], [1, 0, 0, 0], [0, 0, 0, 0], [5, 2, 7, 3]]
    assert vocab.encode_window([], 3).shape == (0, 3)
    with pytest.raises(ValueError, match="window length"):
        vocab.encode_window(["a"], 0)
    with pytest.raises(TypeError, match="single str"):
        vocab.encode_window("the cat", 2)


def test_encode_bag_is_csr_of_encode():
    vocab = Vocabulary(ngram_range=(1, 2)).fit(CORPUS)
    texts = ["the cat sat", "", "zebra", ["a", "cat"]]
    indptr, indices = vocab.encode_bag(texts)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert indptr.tolist() == [0, 5, 5, 6, 9]
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(indices[indptr[i] : indptr[i + 1]], vocab.encode(text))
    assert 0 not in indices.tolist()


def test_reserved_token_spellings_in_the_corpus_become_unk():
    vocab = Vocabulary().fit(["<pad> x <unk>"])
    assert vocab.id_to_token == ["<pad>", "<unk>", "x"]
    assert vocab.counts[1] == 2
    assert vocab.encode("<pad> <unk> x").tolist() == [1, 1, 2]


def test_to_dict_from_dict_round_trip_through_json():
    vocab = Vocabulary(min_count=1, max_size=12, ngram_range=(1, 2), lowercase=True).fit(CORPUS)
    d = json.loads(json.dumps(vocab.to_dict()))
    clone = Vocabulary.from_dict(d)
    assert clone.id_to_token == vocab.id_to_token
    assert clone.token_to_id == vocab.token_to_id
    np.testing.assert_array_equal(clone.counts, vocab.counts)
    assert (clone.min_count, clone.max_size, tuple(clone.ngram_range), clone.lowercase) == (
        1,
        12,
        (1, 2),
        True,
    )
    texts = ["The cat sat", "a zebra ran"]
    np.testing.assert_array_equal(clone.encode_bag(texts)[1], vocab.encode_bag(texts)[1])


def test_from_dict_rejects_inconsistent_tables():
    d = Vocabulary().fit(CORPUS).to_dict()
    with pytest.raises(ValueError, match="missing keys"):
        Vocabulary.from_dict({k: v for k, v in d.items() if k != "counts"})
    with pytest.raises(ValueError, match="'<pad>', '<unk>'"):
        Vocabulary.from_dict({**d, "id_to_token": ["cat"] + d["id_to_token"][1:]})
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary.from_dict({**d, "id_to_token": d["id_to_token"][:-1] + ["cat"]})
    with pytest.raises(ValueError, match="as long as"):
        Vocabulary.from_dict({**d, "counts": d["counts"][:-1]})


def test_parameter_and_corpus_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        Vocabulary().fit([])
    with pytest.raises(ValueError, match="empty corpus"):
        Vocabulary().fit(["", "   "])
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary(min_count=0).fit(CORPUS)
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary(max_size=1).fit(CORPUS)
    for bad in [(0, 1), (2, 1), (1,), "12", (1.0, 2.0), None]:
        with pytest.raises(ValueError, match="ngram_range"):
            Vocabulary(ngram_range=bad).fit(CORPUS)
    with pytest.raises(TypeError, match="single str"):
        Vocabulary().fit("the cat")
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary().fit([["new york", "city"]])
    with pytest.raises(ValueError, match="not fitted"):
        Vocabulary().encode("a")


# -- character n-grams (subwords) ----------------------------------------------

def test_char_ngrams_get_ids_after_the_words_by_count_then_alphabetically():
    vocab = Vocabulary(char_ngram_range=(2, 3)).fit(["ab ab", "b"])
    # words: ab 2, b 1; "<ab>" -> <a ab b> (n=2), <ab ab> (n=3); "<b>" -> <b b> (n=2)
    assert vocab.char_offset == 4
    assert vocab.id_to_token[:4] == ["<pad>", "<unk>", "ab", "b"]
    chars = vocab.id_to_token[4:]
    counts = dict(zip(chars, vocab.counts[4:].tolist()))
    assert counts == {"<a": 2, "ab": 2, "b>": 3, "<ab": 2, "ab>": 2, "<b": 1}
    assert chars == ["b>", "<a", "<ab", "ab", "ab>", "<b"]
    # "ab" is both a word and a character n-gram, with different ids
    assert vocab.token_to_id["ab"] == 2 and "<ab" not in vocab
    assert len(vocab) == 10


def test_encode_lists_each_word_then_its_char_ngrams_with_shares():
    vocab = Vocabulary(char_ngram_range=(2, 3), ngram_range=(1, 2)).fit(["ab b"])
    cid = {t: i for i, t in enumerate(vocab.id_to_token) if i >= vocab.char_offset}
    wid = vocab.token_to_id
    indptr, ids, shares = vocab.encode_bag(["ab b", "xb", "zz", ""], return_shares=True)
    assert indptr.tolist() == [0, 10, 11, 12, 12]
    assert ids.tolist() == (
        [wid["ab"], cid["<a"], cid["ab"], cid["b>"], cid["<ab"], cid["ab>"]]
        + [wid["b"], cid["<b"], cid["b>"]]
        + [wid["ab b"]]
        + [cid["b>"]]   # unseen word: its known n-grams alone
        + [vocab.UNK]   # unseen word without any known n-gram
    )
    np.testing.assert_allclose(shares, [1 / 6] * 6 + [1 / 3] * 3 + [1, 1, 1])
    # shares of a text sum to its words plus its known word n-grams
    sums = np.add.reduceat(shares, indptr[:-2])
    np.testing.assert_allclose(sums, [3, 1, 1])
    np.testing.assert_array_equal(vocab.encode("ab b"), ids[:10])
    np.testing.assert_array_equal(vocab.subword_ids("xab"),
                                  [cid["ab"], cid["b>"], cid["ab>"]])
    assert vocab.encode_bag(["ab"])[1].tolist() == ids[:6].tolist()
    # without subwords every share is 1
    plain = Vocabulary().fit(["ab b"])
    assert plain.encode_bag(["ab b zz"], return_shares=True)[2].tolist() == [1.0] * 3
    assert plain.subword_ids("ab").tolist() == []


def test_char_ngram_min_count_and_max_size():
    vocab = Vocabulary(char_ngram_range=(2, 2), min_count=2).fit(["ab ac", "ab"])
    # words kept: ab (2); n-grams: <a 3, b> 2 kept; ab 2 kept; ac 1, c> 1 dropped
    assert sorted(vocab.id_to_token[vocab.char_offset:]) == ["<a", "ab", "b>"]
    capped = Vocabulary(char_ngram_range=(2, 2), max_size=5).fit(["ab ac", "ab"])
    assert len(capped) == 5 and capped.id_to_token[2:4] == ["ab", "ac"]
    assert capped.id_to_token[4:] == ["<a"]


def test_char_ngram_vocabulary_round_trip_and_older_dicts():
    vocab = Vocabulary(char_ngram_range=(2, 4), ngram_range=(1, 2),
                       lowercase=True).fit(CORPUS)
    d = json.loads(json.dumps(vocab.to_dict()))
    assert d["char_ngram_range"] == [2, 4] and d["char_offset"] == vocab.char_offset
    clone = Vocabulary.from_dict(d)
    texts = ["The cat sat", "a zebra ran", "cats"]
    for a, b in zip(clone.encode_bag(texts, return_shares=True),
                    vocab.encode_bag(texts, return_shares=True)):
        np.testing.assert_array_equal(a, b)
    assert "char_ngram_range=(2, 4)" in repr(clone)
    # a dict written before subwords existed has neither key
    old = Vocabulary().fit(CORPUS).to_dict()
    del old["char_ngram_range"], old["char_offset"]
    assert Vocabulary.from_dict(old).char_offset == len(old["id_to_token"])
    with pytest.raises(ValueError, match="char_offset"):
        Vocabulary.from_dict({**d, "char_offset": len(d["id_to_token"]) + 1})
    with pytest.raises(ValueError, match="char_offset"):
        Vocabulary.from_dict({**d, "char_ngram_range": None})
    with pytest.raises(ValueError, match="char_ngram_range must be null or a list"):
        Vocabulary.from_dict({**d, "char_ngram_range": "2-4"})
    dup = d["id_to_token"][:-1] + [d["id_to_token"][-2]]
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary.from_dict({**d, "id_to_token": dup})


def test_char_ngram_range_errors():
    for bad in [(0, 1), (3, 2), (2,), "23", (2.0, 3.0)]:
        with pytest.raises(ValueError, match="char_ngram_range"):
            Vocabulary(char_ngram_range=bad).fit(CORPUS)
    with pytest.raises(ValueError, match="must start at 1"):
        Vocabulary(char_ngram_range=(2, 3), ngram_range=(2, 2)).fit(CORPUS)
    with pytest.raises(TypeError, match="word must be a str"):
        Vocabulary(char_ngram_range=(2, 3)).fit(CORPUS).subword_ids(3)


# -- both implementations: Unicode normalisation, hashed n-grams -----------------

BOTH = pytest.mark.parametrize(
    "cls", [Vocabulary, vocab_mod._ReferenceVocabulary], ids=["compiled", "reference"])


@BOTH
def test_texts_and_list_tokens_are_put_in_nfc(cls):
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    vocab = cls(ngram_range=(1, 2)).fit([f"{nfc} {nfd}", [nfd, "noir"]])
    assert vocab.id_to_token[2:3] == [nfc] and vocab.counts[2] == 3
    assert nfd not in vocab and f"{nfc} noir" in vocab
    assert vocab.encode(nfd).tolist() == vocab.encode(nfc).tolist() == [2]
    assert vocab.encode([nfd, "noir"]).tolist() == vocab.encode(f"{nfc} noir").tolist()
    assert tokenize(f"{nfd}\u2028A\u0308", lowercase=True) == [nfc, "\u00e4"]
    # lower-casing after NFC, and NFC again: U+0130 lower-cases to "i" + U+0307
    lower = cls(lowercase=True).fit(["\u0130 I\u0307"])
    assert lower.id_to_token[2:] == ["i\u0307"] and lower.counts[2] == 2


@BOTH
def test_lone_surrogates_are_refused(cls):
    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate U\+DCFF at character 2"):
        cls().fit(["ok", "ab\udcff"])
    vocab = cls().fit(["ok"])
    with pytest.raises(ValueError, match=r"texts\[0\]\[1\] holds a lone surrogate U\+D800"):
        vocab.encode_bag([["ok", "\ud800"]])
    with pytest.raises(ValueError, match="lone surrogate"):
        tokenize("\udcff")


@BOTH
def test_hashed_ngrams_share_buckets_after_the_unigrams(cls):
    vocab = cls(ngram_range=(1, 2), n_buckets=8).fit(CORPUS)
    words = ["<pad>", "<unk>", "cat", "the", "sat", "a", "dog", "ran"]
    assert vocab.n_unigrams == vocab.char_offset == 8 and len(vocab) == 16
    assert vocab.id_to_token == words + [f"<bucket {b}>" for b in range(8)]
    assert vocab.token_to_id == {t: i for i, t in enumerate(words) if i >= 2}
    assert "the cat" not in vocab and "<bucket 0>" not in vocab
    # the 7 bigram occurrences, all in the buckets
    assert vocab.counts[:8].tolist() == [0, 0, 3, 3, 2, 1, 1, 1]
    assert vocab.counts[8:].sum() == 7
    ids = vocab.encode("the cat zebra").tolist()
    assert ids[:3] == [3, 2, 1] and all(8 <= i < 16 for i in ids[3:]) and len(ids) == 5
    # an unseen bigram has a bucket too; the same bigram, the same bucket
    assert vocab.encode("zebra cat").tolist()[2] == vocab.encode(["zebra", "cat"]).tolist()[2]
    assert vocab.encode("the cat").tolist()[2] == ids[3]
    # min_count keeps unigrams only; buckets stay
    assert len(cls(min_count=2, ngram_range=(1, 2), n_buckets=8).fit(CORPUS)) == 5 + 8
    # max_size counts the buckets: unigrams get the rest
    capped = cls(ngram_range=(1, 2), n_buckets=8, max_size=12).fit(CORPUS)
    assert capped.id_to_token[:4] == ["<pad>", "<unk>", "cat", "the"] and len(capped) == 12
    assert capped.counts[1] == 5


@BOTH
def test_hashed_char_ngrams_and_round_trip(cls):
    vocab = cls(char_ngram_range=(2, 3), n_buckets=16, lowercase=True).fit(["Ab ab", "b"])
    assert vocab.id_to_token[:4] == ["<pad>", "<unk>", "ab", "b"] and len(vocab) == 4 + 16
    # "<ab>": <a ab b> (n=2), <ab ab> (n=3), twice each; "<b>": <b b> once
    assert vocab.counts[4:].sum() == 2 * 5 + 2
    sub = vocab.subword_ids("AB")
    assert len(sub) == 5 and all(4 <= i < 20 for i in sub)
    assert len(vocab.subword_ids("zz")) == 5  # unseen: each of its 5 n-grams has a bucket
    _, ids, shares = vocab.encode_bag(["ab zz", "q"], return_shares=True)
    assert ids[:6].tolist() == [2, *sub]
    np.testing.assert_allclose(shares, [1 / 6] * 6 + [1 / 5] * 5 + [1 / 2] * 2)
    d = json.loads(json.dumps(vocab.to_dict()))
    assert d["n_buckets"] == 16 and d["id_to_token"] == ["<pad>", "<unk>", "ab", "b"]
    assert len(d["counts"]) == 20
    clone = cls.from_dict(d)
    assert clone.id_to_token == vocab.id_to_token and "n_buckets=16" in repr(clone)
    for a, b in zip(clone.encode_bag(["ab zz b"], return_shares=True),
                    vocab.encode_bag(["ab zz b"], return_shares=True)):
        np.testing.assert_array_equal(a, b)
    # a dict written before n_buckets existed has no such key: no buckets
    old = cls().fit(CORPUS).to_dict()
    del old["n_buckets"]
    assert cls.from_dict(old).n_buckets is None
    with pytest.raises(ValueError, match="n_unigrams entries"):
        cls.from_dict({**d, "id_to_token": d["id_to_token"] + ["<bucket 0>"]})
    with pytest.raises(ValueError, match="as long as id_to_token plus n_buckets"):
        cls.from_dict({**d, "counts": d["counts"][:-1]})
    with pytest.raises(ValueError, match="n_buckets must be None or an int"):
        cls.from_dict({**d, "n_buckets": 0})


@BOTH
def test_n_jobs_is_checked_and_changes_nothing(cls):
    vocab = cls(ngram_range=(1, 2)).fit(CORPUS, n_jobs=2)
    assert vocab.id_to_token == cls(ngram_range=(1, 2)).fit(CORPUS).id_to_token
    texts = CORPUS * 3 + ["", "zebra"]
    for a, b in zip(vocab.encode_bag(texts, n_jobs=3), vocab.encode_bag(texts)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(vocab.encode_window(texts, 2, n_jobs=-1),
                                  vocab.encode_window(texts, 2))
    for bad in (0, -3, 2.5, False):
        with pytest.raises(ValueError, match="n_jobs must be an int >= 1, or -1 for every core"):
            vocab.encode_bag(texts, n_jobs=bad)
