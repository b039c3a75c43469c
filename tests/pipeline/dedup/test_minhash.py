"""Pure MinHash functions: bit-compatibility with the reference, parameter derivation."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch.lsh import _optimal_param

from pipeline.config import ConfigError, from_dict
from pipeline.dedup import minhash as mh
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.synthetic import generate_questions
from tests.pipeline.dedup.reference_impl import reference_dedup


def test_tokenize_counts_empty_strings_like_the_reference():
    # "x?" splits into ["x", ""]: 4 words + "?" → 5 tokens, kept; 3 words + "." → 4, dropped.
    assert mh.tokenize("What is the x?") == ["what", "is", "the", "x", ""]
    assert not mh.is_too_short("What is the x?", 5)
    assert mh.is_too_short("Define the entropy.", 5)
    assert mh.is_too_short("", 5)
    assert mh.is_too_short(None, 5)


def test_signature_of_a_short_text_is_invalid_and_all_max():
    perms = mh.permutations(250, 42, used=10)
    sig, valid = mh.signatures(["Prove it.", None, "What is the entropy of mixing two ideal gases?"], perms,
                               ngram=3, min_length=5)  # fmt: skip
    assert valid.tolist() == [False, False, True]
    assert (sig[0] == mh.MAX_HASH).all() and (sig[1] == mh.MAX_HASH).all()
    assert (sig[2] < mh.MAX_HASH).all()


def test_permutations_truncate_after_drawing_all():
    full = mh.permutations(250, 42)
    used = mh.permutations(250, 42, used=10)
    np.testing.assert_array_equal(full.a[:10], used.a)
    np.testing.assert_array_equal(full.b[:10], used.b)
    # drawing only 10 would give other b's: the draws of b follow all 250 of a
    assert not np.array_equal(mh.permutations(10, 42).b, used.b)
    with pytest.raises(ValueError, match="only num_perm=250"):
        mh.permutations(250, 42, used=251)


def test_band_keys_are_the_reference_bytes():
    questions = [r["question"] for r in generate_questions(300, seed=3)]
    perms = mh.permutations(250, 42)
    sig, valid = mh.signatures(questions, perms, ngram=3, min_length=5)
    keys = mh.band_keys(sig, 1, 10)[0]
    import hashlib
    import struct

    rng = np.random.RandomState(42)
    prime, max_hash = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)
    a = rng.randint(1, prime, size=(250,), dtype=np.uint64)
    b = rng.randint(0, prime, size=(250,), dtype=np.uint64)
    checked = 0
    for i, q in enumerate(questions):
        tokens = mh.NON_WORD.split(q.lower())
        if len(tokens) < 5:
            assert not valid[i]
            continue
        grams = {" ".join(tokens[j : j + 3]).encode() for j in range(len(tokens) - 2)}
        hv = np.array([struct.unpack("<I", hashlib.sha1(g).digest()[:4])[0] for g in grams], dtype=np.uint64)
        with np.errstate(over="ignore"):
            hv = ((hv[:, None] * a + b) % prime & max_hash).min(axis=0)
        np.testing.assert_array_equal(sig[i], hv)
        assert keys[i] == bytes(hv[0:10].byteswap().data)
        checked += 1
    assert checked > 250


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [128, 250])
def test_optimal_param_matches_datasketch(threshold, num_perm):
    assert mh.optimal_param(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_single_process_grouping_reproduces_the_reference_kept_count():
    """The plain-Python reference and our vectorised signatures + grouping agree row by row."""
    records = list(generate_questions(4000, seed=11, duplicate_rate=0.3))
    questions = [r["question"] for r in records]
    kept_ref, sizes_ref = reference_dedup(questions)
    sig, valid = mh.signatures(questions, mh.permutations(250, 42, used=10), ngram=3, min_length=5)
    groups: dict[bytes, list[int]] = {}
    for i, key in zip(np.flatnonzero(valid), mh.band_keys(sig[valid], 1, 10)[0]):
        groups.setdefault(key, []).append(int(i))
    assert sorted(min(g) for g in groups.values()) == kept_ref
    assert {i: len(g) for g in groups.values() for i in g} == sizes_ref
    planted = {r["planted"] for i, r in enumerate(records) if sizes_ref.get(i, 1) > 1}
    assert {"exact", "case"} <= planted  # the planted copies are really found
    assert len(kept_ref) < len(questions) * 0.85


def test_config_validation():
    assert DedupConfig().lsh_params() == (1, 10)
    assert DedupConfig().tag == "minhash_3gram_b1_r10"
    assert from_dict(DedupConfig, {"bands": None, "rows": None, "threshold": 0.8}).lsh_params() == (16, 15)
    with pytest.raises(ConfigError, match="set both bands and rows"):
        from_dict(DedupConfig, {"bands": None})
    with pytest.raises(ConfigError, match="exceeds num_perm"):
        from_dict(DedupConfig, {"bands": 30, "rows": 10})
