"""The three selection methods of the MegaScience mixture (SPEC-pipeline §16), as plain functions.

- random: the reference shuffles with no seed and takes the first K; here the order is a seeded
  hash of each row's id, so the subset is reproducible and independent of row order or sharding.
- length: the response's token count under the Qwen tokenizer; rows over 10,000 tokens are
  dropped, then the K longest kept (ties: lower id first).
- difficulty: the mean of the valid 0–10 grades of a row's sampled student answers (0 when none
  is valid, as the reference does); keep ``low < mean < high`` — questions neither trivial for
  the student model nor hopeless. The reference keeps every row in range; an optional ``k`` here
  caps the count with a seeded random subset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def random_keys(ids: Sequence[str], seed: int) -> np.ndarray:
    """A seeded pseudo-random uint64 per id; sorting by it is a reproducible shuffle."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest(), "big") for i in ids],
        dtype=np.uint64,
    )


def select_random(ids: Sequence[str], k: int | None, seed: int) -> list[int]:
    """Positions of the ``k`` rows a seeded shuffle puts first (all rows when ``k`` is None)."""
    order = np.argsort(random_keys(ids, seed), kind="stable")
    return sorted(order[: len(ids) if k is None else k].tolist())


def select_by_length(ids: Sequence[str], lengths: Sequence[int], k: int | None, max_tokens: int) -> list[int]:
    """Positions of the ``k`` longest responses with at most ``max_tokens`` tokens."""
    eligible = [i for i, n in enumerate(lengths) if n <= max_tokens]
    eligible.sort(key=lambda i: (-lengths[i], ids[i]))
    return sorted(eligible[: len(eligible) if k is None else k])


def mean_valid_score(scores: Sequence[int]) -> float:
    """Mean of the grades in 0..10 (-1 marks an unparseable grade); 0 when none is valid."""
    valid = [s for s in scores if 0 <= s <= 10]
    return float(sum(valid) / len(valid)) if valid else 0.0


def select_by_difficulty(
    ids: Sequence[str], means: Sequence[float], low: float, high: float, k: int | None = None, seed: int = 0
) -> list[int]:
    """Positions of rows with ``low < mean < high`` (a seeded random ``k`` of them when capped)."""
    inside = [i for i, m in enumerate(means) if low < m < high]
    if k is None or len(inside) <= k:
        return inside
    keep = select_random([ids[i] for i in inside], k, seed)
    return [inside[j] for j in keep]
