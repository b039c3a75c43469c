"""The MegaScience mixture (SPEC-pipeline §16): TextbookReasoning plus other science datasets,
each source de-duplicated and decontaminated like TextbookReasoning, then subset by one of three
selection methods — random (seeded), response length, or difficulty (an LLM grades sampled student
answers 0–10 against the reference; keep 1 < mean < 9).

- :mod:`pipeline.mixture.config`: :class:`MixtureConfig`, :class:`MixtureSource`, and the two
  LLM stage configs of difficulty grading.
- :mod:`pipeline.mixture.sources`: loading a source (local Parquet/JSONL, HF name, or a stage of
  this run) into the common record shape.
- :mod:`pipeline.mixture.select`: the selection rules as plain functions.
- :mod:`pipeline.mixture.difficulty`: student-answer and grading LLM tasks.
"""
