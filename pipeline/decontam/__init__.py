"""Benchmark decontamination (SPEC-pipeline §9): embeddings → exact top-k → LLM same-question judge.

- :mod:`pipeline.decontam.config`: ``decontam_retrieve`` and ``decontaminate`` sections.
- :mod:`pipeline.decontam.embed`: sentence-transformers embeddings (bge-large-en-v1.5 by default).
- :mod:`pipeline.decontam.search`: exact top-k cosine search in batches.
- :mod:`pipeline.decontam.retrieve`: the benchmark index and the per-shard retrieval worker.
- :mod:`pipeline.decontam.judge`: the LLM task judging each (training row, candidate) pair.
- :mod:`pipeline.decontam.report`: the per-benchmark contamination report.

The benchmark questions come from the one registry, :func:`pipeline.benchmarks.decontamination_pool`.
"""
