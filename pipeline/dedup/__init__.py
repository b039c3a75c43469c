"""Question de-duplication with MinHash LSH (SPEC-pipeline §5).

- :mod:`pipeline.dedup.config`: :class:`DedupConfig` (reference parameters by default).
- :mod:`pipeline.dedup.minhash`: the hashing itself, vectorised over Arrow/NumPy batches, bit-for-bit
  compatible with the reference's ``text-dedup`` script.
- :mod:`pipeline.dedup.ray_minhash`: the distributed plan on Ray Data (signatures in
  ``map_batches``, LSH buckets with ``groupby``, connected components by min-label propagation).
"""
