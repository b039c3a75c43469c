"""MinHash signatures and LSH band keys, vectorised over batches of texts.

Bit-compatible with the reference's ``text-dedup`` ``minhash_dedup.py`` (SPEC-pipeline §5):

1. tokens = ``re.split(r"\\W", text.lower())`` — every single non-word character splits, so empty
   strings are tokens; a text with fewer than ``min_length`` tokens is dropped outright;
2. shingles = the *set* of space-joined word ``ngram``-grams, UTF-8 encoded (a text shorter than
   ``ngram`` tokens is one shingle);
3. base hash = SHA-1 of the shingle, first 4 bytes as a little-endian uint32, held as uint64;
4. permutation ``i``: ``((h * a[i] + b[i]) mod (2**61 - 1)) & (2**32 - 1)`` in NumPy uint64, with the
   same silent wrap-around mod 2**64 of ``h * a[i]`` as the reference; ``a`` and ``b`` are the first
   and second ``RandomState(seed).randint`` draws of ``num_perm`` values each;
5. signature = column-wise minimum; band key = the big-endian bytes of the band's ``rows`` minima.

Why it is fast: the reference (and ``datasketch``) computes all ``num_perm`` = 250 permutations
per shingle, one shingle at a time. Only ``bands x rows`` of them are ever used (10 with the
reference parameters), so only those are computed, and for a whole batch at once: one NumPy
expression over an (all shingles of the batch) x (permutations used) matrix, then
``np.minimum.reduceat`` per text. SHA-1 itself stays a per-shingle ``hashlib`` call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

NON_WORD = re.compile(r"\W")
MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)

# Shingles hashed per NumPy step: bounds the (shingles x permutations) matrix to a few tens of MB.
_SHINGLES_PER_STEP = 200_000


def tokenize(text: str) -> list[str]:
    """The reference's tokens: lower-cased text split on every single non-word character."""
    return NON_WORD.split(text.lower())


def is_too_short(text: str | None, min_length: int) -> bool:
    """True when the reference's length filter removes ``text`` (fewer than ``min_length`` tokens)."""
    return text is None or len(tokenize(text)) < min_length


def shingles(tokens: Sequence[str], ngram: int) -> set[bytes]:
    """The set of space-joined word n-grams (the whole token list if shorter than ``ngram``)."""
    if len(tokens) < ngram:
        return {" ".join(tokens).encode("utf-8")}
    return {" ".join(tokens[i : i + ngram]).encode("utf-8") for i in range(len(tokens) - ngram + 1)}


def sha1_hash32(data: bytes) -> int:
    """First 4 bytes of SHA-1 as a little-endian uint32 (``datasketch.hashfunc.sha1_hash32``)."""
    return int.from_bytes(hashlib.sha1(data).digest()[:4], "little")


@dataclass(frozen=True)
class Permutations:
    """The ``a`` and ``b`` coefficients of the universal hash family, ``used`` of them."""

    a: np.ndarray
    b: np.ndarray

    @property
    def used(self) -> int:
        return len(self.a)


def permutations(num_perm: int, seed: int, used: int | None = None) -> Permutations:
    """The reference's coefficients: ``a`` then ``b``, ``num_perm`` draws each, first ``used`` kept.

    All ``num_perm`` values are drawn even when fewer are used, because the draws of ``b`` come after
    all of ``a`` in the random stream: truncating the draw itself would change every ``b``.
    """
    rng = np.random.RandomState(seed)
    a = rng.randint(1, MERSENNE_PRIME, size=(num_perm,), dtype=np.uint64)
    b = rng.randint(0, MERSENNE_PRIME, size=(num_perm,), dtype=np.uint64)
    used = num_perm if used is None else used
    if not 1 <= used <= num_perm:
        raise ValueError(f"used={used} permutations requested, but only num_perm={num_perm} are drawn")
    return Permutations(a=a[:used].copy(), b=b[:used].copy())


def signatures(
    texts: Iterable[str | None], perms: Permutations, *, ngram: int, min_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Min-hash signatures of a batch of texts.

    Returns ``(sig, valid)``: ``sig`` is an ``(n, perms.used)`` uint64 matrix, ``valid`` a boolean
    vector that is False for texts the length filter removes (their rows hold ``MAX_HASH``).
    """
    digests: list[bytes] = []
    counts: list[int] = []
    for text in texts:
        if text is None:
            counts.append(0)
            continue
        tokens = tokenize(text)
        if len(tokens) < min_length:
            counts.append(0)
            continue
        grams = shingles(tokens, ngram)
        digests.extend(hashlib.sha1(g).digest()[:4] for g in grams)
        counts.append(len(grams))
    n = len(counts)
    sig = np.full((n, perms.used), MAX_HASH, dtype=np.uint64)
    count_arr = np.asarray(counts, dtype=np.int64)
    valid = count_arr > 0
    if not digests:
        return sig, valid
    # Little-endian uint32 of each digest's first 4 bytes, all at once.
    base = np.frombuffer(b"".join(digests), dtype="<u4").astype(np.uint64)
    row_of_shingle = np.repeat(np.arange(n), count_arr)
    a = perms.a[None, :]
    b = perms.b[None, :]
    with np.errstate(over="ignore"):  # the wrap-around mod 2**64 is part of the reference's hash
        for start in range(0, len(base), _SHINGLES_PER_STEP):
            stop = min(start + _SHINGLES_PER_STEP, len(base))
            values = (base[start:stop, None] * a + b) % MERSENNE_PRIME & MAX_HASH
            rows = row_of_shingle[start:stop]
            # Shingles of one text are contiguous: reduce each run of equal row ids.
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            minima = np.minimum.reduceat(values, starts, axis=0)
            target = rows[starts]
            sig[target] = np.minimum(sig[target], minima)
    return sig, valid


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[list[bytes]]:
    """Per band, the key of every row: big-endian bytes of its ``rows`` minima (the reference's key)."""
    if sig.shape[1] < bands * rows:
        raise ValueError(f"signature has {sig.shape[1]} permutations, bands x rows needs {bands * rows}")
    big_endian = sig.astype(">u8")
    out = []
    for band in range(bands):
        block = np.ascontiguousarray(big_endian[:, band * rows : (band + 1) * rows])
        width = rows * 8
        raw = block.tobytes()
        out.append([raw[i * width : (i + 1) * width] for i in range(sig.shape[0])])
    return out


def _integrate(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return np.trapezoid(values, grid, axis=-1)


def optimal_param(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive + false negative areas (datasketch's rule).

    The false-positive area integrates P(candidate | J=s) = 1 - (1 - s^r)^b over [0, threshold], the
    false-negative area 1 - P over [threshold, 1]; every b x r <= num_perm is tried.
    """
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    bands = np.array([p[0] for p in pairs], dtype=np.float64)[:, None]
    rows = np.array([p[1] for p in pairs], dtype=np.float64)[:, None]
    low = np.linspace(0.0, threshold, 4001)[None, :]
    high = np.linspace(threshold, 1.0, 4001)[None, :]
    false_pos = _integrate(1.0 - (1.0 - low**rows) ** bands, low[0])
    false_neg = _integrate((1.0 - high**rows) ** bands, high[0])
    error = false_positive_weight * false_pos + false_negative_weight * false_neg
    best = int(np.argmin(error))  # first minimum, in datasketch's (b, r) iteration order
    return pairs[best]
