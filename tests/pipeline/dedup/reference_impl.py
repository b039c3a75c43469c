"""An exact, deliberately plain re-implementation of the reference's question dedup.

It follows SPEC-pipeline §5 ("Exact algorithm") line by line, the way ``text-dedup``'s
``minhash_dedup.py`` does it — per row, all 250 permutations, union-find over band groups — and
shares no code with ``pipeline.dedup``, so the tests compare two independent implementations.
"""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np

NON_ALPHA = re.compile(r"\W")
MODULO_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)


def _ngrams(sequence: list[str], n: int, min_length: int) -> list[tuple[str, ...]]:
    if len(sequence) < min_length:
        return []
    if len(sequence) < n:
        return [tuple(sequence)]
    return list(zip(*[sequence[i:] for i in range(n)]))


def _sha1_hash32(data: bytes) -> int:
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.rank: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        self.rank.setdefault(x, 0)
        if self.parent[x] != x:
            self.parent[x] = self.find(self.parent[x])
        return self.parent[x]

    def union(self, x: int, y: int) -> None:
        px, py = self.find(x), self.find(y)
        if px == py:
            return
        if self.rank[px] == self.rank[py]:
            self.parent[px] = py
            self.rank[py] += 1
        elif self.rank[px] > self.rank[py]:
            self.parent[py] = px
        else:
            self.parent[px] = py


def reference_dedup(
    questions: list[str],
    *,
    num_perm: int = 250,
    ngram: int = 3,
    bands: int = 1,
    rows: int = 10,
    min_length: int = 5,
    seed: int = 42,
) -> tuple[list[int], dict[int, int]]:
    """Indices kept (one per cluster, in input order) and every kept-or-not row's cluster size."""
    rng = np.random.RandomState(seed)
    a = rng.randint(1, MODULO_PRIME, size=(num_perm,), dtype=np.uint64)
    b = rng.randint(0, MODULO_PRIME, size=(num_perm,), dtype=np.uint64)
    hash_ranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
    # 2. length filter: short rows are removed, not kept
    index = [i for i, q in enumerate(questions) if len(NON_ALPHA.split(q.lower())) >= min_length]
    tables: list[dict[bytes, set[int]]] = [{} for _ in range(bands)]
    for i in index:
        tokens = {
            bytes(" ".join(t).lower(), "utf-8")
            for t in _ngrams(NON_ALPHA.split(questions[i].lower()), ngram, min_length)
        }
        hv = np.array([_sha1_hash32(t) for t in tokens], dtype=np.uint64).reshape(len(tokens), 1)
        with np.errstate(over="ignore"):
            hv = (hv * a + b) % MODULO_PRIME & MAX_HASH
        hv = np.vstack([hv, np.full(num_perm, MAX_HASH, dtype=np.uint64)]).min(axis=0)
        for band, (start, end) in enumerate(hash_ranges):
            tables[band].setdefault(bytes(hv[start:end].byteswap().data), set()).add(i)
    uf = _UnionFind()
    for table in tables:
        for cluster in table.values():
            if len(cluster) <= 1:
                continue
            idx = min(cluster)
            for x in cluster:
                uf.union(x, idx)
    roots = {i: uf.find(i) for i in index}
    sizes: dict[int, int] = {}
    for root in roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    cluster_size = {i: sizes[roots[i]] for i in index}
    # keep one row per cluster: the lowest index (the reference keeps an arbitrary member)
    first: dict[int, int] = {}
    for i in index:
        first.setdefault(roots[i], i)
    return sorted(first.values()), cluster_size
