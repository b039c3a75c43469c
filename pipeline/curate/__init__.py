"""Curation stages after extraction (SPEC-pipeline §6–§11): refinement, CoT judge and
distillation, quality filter, reference answers, finalize — plus their shared parsers.

- :mod:`pipeline.curate.verdict`: the one YES/NO verdict parser (robust + reference-compatible).
- :mod:`pipeline.curate.parsers`: refinement, reference-answer and difficulty-score parsers.
- :mod:`pipeline.curate.tasks`: the LLM tasks (prompt builder + parser) of each stage.
- :mod:`pipeline.curate.config`: their frozen configs.
- :mod:`pipeline.curate.finalize`: the release table and its dataset card.
"""
