"""Configuration of the MinHash question de-duplication stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import check


@dataclass(frozen=True)
class DedupConfig:
    """MinHash LSH de-duplication of QA pairs on their question text.

    The defaults are the reference's (``text-dedup`` run with ``--ngram 3 --b 1 --r 10``): one band
    of 10 min-hash rows, which makes two questions duplicates only when all 10 minima agree
    (P = J^10: 0.006 at Jaccard 0.6, 0.35 at 0.9), i.e. a strict near-exact dedup whose kept count
    this stage reproduces. For real near-duplicate removal set ``bands: null, rows: null`` and a
    ``threshold``: bands x rows are then chosen to minimise the false positive + false negative
    area around it (the ``datasketch`` rule) and clusters are connected components across bands.

    Args:
        input_stage: stage whose output rows are de-duplicated (QA records with ``id_column``
            and ``column``).
        column: text field compared.
        id_column: unique row id; the lowest id of a cluster is the row kept (deterministic).
        ngram: word n-gram size of the shingles.
        num_perm: permutations drawn (the random draws depend on it even when fewer are used).
        bands: LSH bands; ``null`` with ``rows: null`` derives both from ``threshold``.
        rows: min-hash rows per band.
        threshold: Jaccard similarity targeted when bands/rows are derived.
        min_length: questions with fewer ``\\W``-split tokens are dropped (reference: 5).
        seed: seed of the permutation draws (reference: 42).
        batch_size: rows per hashing batch.
        num_partitions: shuffle partitions of the LSH groupby (``null``: Ray Data's default).
        max_iterations: cap on label-propagation rounds for connected components.
        shuffle: Ray Data shuffle behind the groupbys. ``sort`` (pull-based, plain tasks) is ~3x
            faster than ``hash`` (aggregator actors) on small clusters; ``hash`` scales to data
            larger than memory with disk-based shuffle.
    """

    input_stage: str = "extract_qa"
    column: str = "question"
    id_column: str = "qa_id"
    ngram: int = 3
    num_perm: int = 250
    bands: int | None = 1
    rows: int | None = 10
    threshold: float = 0.6
    min_length: int = 5
    seed: int = 42
    batch_size: int = 4096
    num_partitions: int | None = None
    max_iterations: int = 32
    shuffle: Literal["sort", "hash"] = "sort"

    def __post_init__(self) -> None:
        check(self.ngram >= 1, "dedup.ngram", "must be >= 1")
        check(self.num_perm >= 2, "dedup.num_perm", "must be >= 2")
        check(
            (self.bands is None) == (self.rows is None),
            "dedup.bands",
            "set both bands and rows, or neither (then they are derived from threshold)",
        )
        if self.bands is not None and self.rows is not None:
            check(self.bands >= 1 and self.rows >= 1, "dedup.bands", "bands and rows must be >= 1")
            check(
                self.bands * self.rows <= self.num_perm,
                "dedup.bands",
                f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}",
            )
        check(0.0 < self.threshold < 1.0, "dedup.threshold", "must be in (0, 1)")
        check(self.min_length >= 0, "dedup.min_length", "must be >= 0")
        check(self.batch_size >= 1, "dedup.batch_size", "must be >= 1")
        check(self.num_partitions is None or self.num_partitions >= 1, "dedup.num_partitions", "must be >= 1")
        check(self.max_iterations >= 1, "dedup.max_iterations", "must be >= 1")

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): as configured, or derived from ``threshold``."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        from pipeline.dedup.minhash import optimal_param

        return optimal_param(self.threshold, self.num_perm)

    @property
    def tag(self) -> str:
        """Short parameter tag for docs and stats (the reference's column suffix style)."""
        bands, rows = self.lsh_params()
        return f"minhash_{self.ngram}gram_b{bands}_r{rows}"
